"""Parsing the routes file's model_groups and param_policies (routing/config/route_sections.py; no database)."""

import pytest

from routing.config.route_sections import parse_groups, parse_policies
from routing.config.routes_validation import RoutesFileError


def test_policies_come_after_the_policies_they_extend():
    doc = {"param_policies": [{"name": "c", "extends": "b"}, {"name": "x"}, {"name": "b", "extends": "a"},
                              {"name": "a", "extends": "azure-responses"}]}
    assert [p.name for p in parse_policies(doc)] == ["a", "b", "c", "x"]


def test_a_loop_of_extends_is_refused():
    doc = {"param_policies": [{"name": "a", "extends": "b"}, {"name": "b", "extends": "c"},
                              {"name": "c", "extends": "a"}]}
    with pytest.raises(RoutesFileError, match="extend each other in a loop"):
        parse_policies(doc)


def test_rules_are_complete_with_defaults_and_positions_by_index():
    [policy] = parse_policies({"param_policies": [{"name": "p", "rules": [
        {"action": "drop", "path": "a"}, {"action": "set", "path": "b", "value": [1], "position": 7}]}]})
    assert policy.rules == (
        {"position": 0, "action": "drop", "path": "a", "value": None, "target": "", "endpoint": "any",
         "stream": "any", "message": "", "enabled": True},
        {"position": 7, "action": "set", "path": "b", "value": [1], "target": "", "endpoint": "any",
         "stream": "any", "message": "", "enabled": True})


def test_a_group_entry_is_complete_and_fallbacks_get_their_index():
    [group] = parse_groups({"model_groups": [{"name": " g ", "strategy": "priority",
                                              "fallbacks": ["a", {"group": "b", "position": 9}, "c"]}]})
    assert group.name == "g" and dict(group.settings)["strategy"] == "priority"
    assert dict(group.settings)["max_attempts"] == 3  # not in the entry: the model default
    assert group.fallbacks == (("a", 0), ("b", 9), ("c", 2))


@pytest.mark.parametrize(("doc", "message"), [
    ({"model_groups": [{"name": "g", "fallbacks": [3]}]}, "fallbacks[0] must be a group name"),
    ({"model_groups": [{"name": "g", "fallbacks": [{"position": 1}]}]}, "missing 'group'"),
    ({"model_groups": [{"name": "g", "max_attempts": 2.5}]}, "'max_attempts' must be a whole number"),
    ({"model_groups": [{"name": 7}]}, "'name' must be a string"),
    ({"param_policies": [{"name": "p"}, {"name": "p"}]}, "the same policy as param_policies[0] (p)"),
    ({"param_policies": [{"name": "p", "extends": 5}]}, "'extends' must be a string or null"),
])
def test_bad_entries_name_where_they_are(doc, message):
    with pytest.raises(RoutesFileError) as excinfo:
        parse_groups(doc) or parse_policies(doc)
    assert message in str(excinfo.value)
