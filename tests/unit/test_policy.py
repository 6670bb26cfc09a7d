"""Tests for routing.policy (pure: no Django, no database)."""
from __future__ import annotations

import copy
import json

import pytest

from routing.policy import PolicyRejected, PolicyResult, Rule, apply_policy, compile_rule


def run(body, *rules, endpoint="responses", stream=False):
    return apply_policy(body, list(rules), endpoint=endpoint, stream=stream)


# --------------------------------------------------------------------------- compile_rule


def test_compile_rule_parses_dotted_path_and_keeps_metadata():
    rule = compile_rule("set", "a.b.c", value={"x": 1}, endpoint="chat", stream="stream", source="p1")
    assert rule == Rule("set", ("a", "b", "c"), {"x": 1}, (), "chat", "stream", "", "p1")


def test_compile_rule_rename_parses_target():
    rule = compile_rule("rename", "max_tokens", target="max_output_tokens.value")
    assert rule.path == ("max_tokens",)
    assert rule.target == ("max_output_tokens", "value")


def test_compile_rule_allow_only_splits_comma_list_and_strips():
    rule = compile_rule("allow_only", " model, input ,tools ")
    assert rule.path == ("model", "input", "tools")


def test_compile_rule_reject_keeps_message():
    rule = compile_rule("reject", "temperature", message="nope")
    assert (rule.action, rule.path, rule.message) == ("reject", ("temperature",), "nope")


def test_compile_rule_copies_value():
    value = {"a": [1]}
    rule = compile_rule("set", "x", value=value)
    value["a"].append(2)
    assert rule.value == {"a": [1]}


@pytest.mark.parametrize(
    "args, kwargs",
    [
        (("explode", "a"), {}),
        (("drop", "a"), {"endpoint": "embeddings"}),
        (("drop", "a"), {"stream": "sometimes"}),
        (("drop", ""), {}),
        (("drop", "   "), {}),
        (("drop", "a..b"), {}),
        (("drop", ".a"), {}),
        (("drop", "a."), {}),
        (("allow_only", ""), {}),
        (("allow_only", "model,,input"), {}),
        (("rename", "a"), {}),
        (("rename", "a"), {"target": "  "}),
        (("rename", "a"), {"target": "b..c"}),
    ],
)
def test_compile_rule_rejects_invalid_input(args, kwargs):
    with pytest.raises(ValueError):
        compile_rule(*args, **kwargs)


# --------------------------------------------------------------------------- reject


def test_reject_raises_with_param_and_default_message():
    with pytest.raises(PolicyRejected) as info:
        run({"model": "m", "reasoning": {"effort": "high"}}, compile_rule("reject", "reasoning.effort"))
    assert info.value.param == "reasoning.effort"
    assert info.value.message == "Parameter 'reasoning.effort' is not allowed on this route."


def test_reject_uses_custom_message():
    with pytest.raises(PolicyRejected) as info:
        run({"temperature": 0}, compile_rule("reject", "temperature", message="No sampling knobs."))
    assert (info.value.param, info.value.message) == ("temperature", "No sampling knobs.")


def test_reject_fires_on_falsy_values_too():
    with pytest.raises(PolicyRejected):
        run({"user": None}, compile_rule("reject", "user"))


def test_reject_absent_path_passes_through():
    body = {"reasoning": {"summary": "auto"}, "tools": [{"x": 1}]}
    for path in ("reasoning.effort", "temperature", "tools.x", "reasoning.summary.x"):
        result = run(body, compile_rule("reject", path))
        assert result.body is body and result.changes == []


def test_reject_runs_before_other_phases():
    # drop is listed first but reject still sees the original body.
    rules = [compile_rule("drop", "user"), compile_rule("reject", "user")]
    with pytest.raises(PolicyRejected):
        run({"user": "u"}, *rules)


# --------------------------------------------------------------------------- allow_only


def test_allow_only_drops_unlisted_keys_and_keeps_model_and_stream():
    body = {"model": "m", "stream": True, "input": "hi", "temperature": 1, "user": "u"}
    result = run(body, compile_rule("allow_only", "input", source="strict"))
    assert result.body == {"model": "m", "stream": True, "input": "hi"}
    assert result.changes == [
        {"action": "drop", "path": "temperature", "policy": "strict", "rule": "allow_only"},
        {"action": "drop", "path": "user", "policy": "strict", "rule": "allow_only"},
    ]


def test_allow_only_no_change_when_everything_allowed():
    body = {"model": "m", "input": "hi"}
    result = run(body, compile_rule("allow_only", "input, tools"))
    assert result.body is body and result.changes == []


# --------------------------------------------------------------------------- drop


def test_drop_top_level_key():
    body = {"model": "m", "user": "u"}
    result = run(body, compile_rule("drop", "user", source="p"))
    assert result.body == {"model": "m"}
    assert result.changes == [{"action": "drop", "path": "user", "policy": "p"}]


def test_drop_nested_leaf_removes_parent_left_empty():
    body = {"stream_options": {"include_usage": True}}
    result = run(body, compile_rule("drop", "stream_options.include_usage", source="p"))
    assert result.body == {}
    assert result.changes == [
        {"action": "drop", "path": "stream_options.include_usage", "policy": "p"},
        {"action": "drop", "path": "stream_options", "policy": "p", "reason": "empty_parent"},
    ]


def test_drop_nested_leaf_keeps_non_empty_parent():
    body = {"stream_options": {"include_usage": True, "include_obfuscation": False}}
    result = run(body, compile_rule("drop", "stream_options.include_usage", source="p"))
    assert result.body == {"stream_options": {"include_obfuscation": False}}
    assert result.changes == [{"action": "drop", "path": "stream_options.include_usage", "policy": "p"}]


def test_drop_removes_chain_of_empty_parents_up_to_first_non_empty():
    body = {"a": {"b": {"c": 1}, "keep": 2}}
    result = run(body, compile_rule("drop", "a.b.c"))
    assert result.body == {"a": {"keep": 2}}
    assert [c["path"] for c in result.changes] == ["a.b.c", "a.b"]
    assert result.changes[1]["reason"] == "empty_parent"


def test_drop_removes_all_levels_when_everything_empties():
    result = run({"a": {"b": {"c": 1}}}, compile_rule("drop", "a.b.c"))
    assert result.body == {}
    assert [c["path"] for c in result.changes] == ["a.b.c", "a.b", "a"]


def test_drop_value_that_is_an_empty_dict_is_still_a_drop():
    result = run({"a": {}, "b": 1}, compile_rule("drop", "a"))
    assert result.body == {"b": 1}
    assert result.changes == [{"action": "drop", "path": "a", "policy": ""}]


@pytest.mark.parametrize(
    "body, path",
    [
        ({"a": 1}, "b"),
        ({"a": {"b": 1}}, "a.c"),
        ({"a": 5}, "a.b"),  # non-dict intermediate
        ({"a": "text"}, "a.b"),
        ({"a": [{"b": 1}]}, "a.b"),  # paths don't go through lists
        ({"a": [{"b": 1}]}, "a.0.b"),
        ({"a": None}, "a.b"),
    ],
)
def test_drop_missing_path_is_a_no_op(body, path):
    result = run(body, compile_rule("drop", path))
    assert result.body is body and result.changes == []


def test_drop_shares_untouched_subtrees_and_copies_modified_ones():
    body = {"a": {"x": 1, "y": 2}, "untouched": {"deep": [1, 2]}}
    result = run(body, compile_rule("drop", "a.x"))
    assert result.body == {"a": {"y": 2}, "untouched": {"deep": [1, 2]}}
    assert result.body is not body and result.body["a"] is not body["a"]
    assert result.body["untouched"] is body["untouched"]
    assert body == {"a": {"x": 1, "y": 2}, "untouched": {"deep": [1, 2]}}


def test_azure_stream_options_case():
    body = {"model": "x", "input": "hi", "stream": True, "stream_options": {"include_usage": True}}
    original = copy.deepcopy(body)
    rule = compile_rule("drop", "stream_options", endpoint="responses", source="azure")
    result = run(body, rule, endpoint="responses", stream=True)
    assert result.body == {"model": "x", "input": "hi", "stream": True}
    assert result.changes == [{"action": "drop", "path": "stream_options", "policy": "azure"}]
    assert body == original
    # The same rule doesn't touch chat requests.
    assert run(body, rule, endpoint="chat", stream=True).body is body


# --------------------------------------------------------------------------- rename


def test_rename_top_level():
    body = {"max_tokens": 10, "model": "m"}
    result = run(body, compile_rule("rename", "max_tokens", target="max_completion_tokens", source="p"))
    assert result.body == {"max_completion_tokens": 10, "model": "m"}
    assert result.changes == [{"action": "rename", "path": "max_tokens", "to": "max_completion_tokens", "policy": "p"}]


def test_rename_into_new_nested_parents():
    body = {"effort": "high", "model": "m"}
    result = run(body, compile_rule("rename", "effort", target="reasoning.effort"))
    assert result.body == {"reasoning": {"effort": "high"}, "model": "m"}


def test_rename_into_existing_parent_keeps_siblings():
    body = {"effort": "high", "reasoning": {"summary": "auto"}}
    result = run(body, compile_rule("rename", "effort", target="reasoning.effort"))
    assert result.body == {"reasoning": {"summary": "auto", "effort": "high"}}
    assert body == {"effort": "high", "reasoning": {"summary": "auto"}}


def test_rename_out_of_nested_removes_emptied_parent():
    body = {"reasoning": {"effort": "low"}, "model": "m"}
    result = run(body, compile_rule("rename", "reasoning.effort", target="reasoning_effort", source="p"))
    assert result.body == {"reasoning_effort": "low", "model": "m"}
    assert result.changes == [
        {"action": "rename", "path": "reasoning.effort", "to": "reasoning_effort", "policy": "p"},
        {"action": "drop", "path": "reasoning", "policy": "p", "reason": "empty_parent"},
    ]


def test_rename_within_same_parent_keeps_the_parent():
    result = run({"x": {"a": 1}}, compile_rule("rename", "x.a", target="x.b"))
    assert result.body == {"x": {"b": 1}}
    assert len(result.changes) == 1


def test_rename_overwrites_existing_target():
    result = run({"a": 1, "b": 2}, compile_rule("rename", "a", target="b"))
    assert result.body == {"b": 1}
    assert result.changes == [{"action": "rename", "path": "a", "to": "b", "policy": ""}]


def test_rename_moves_whole_subtree():
    body = {"a": {"b": {"c": [1]}}}
    result = run(body, compile_rule("rename", "a", target="z"))
    assert result.body == {"z": {"b": {"c": [1]}}}


def test_rename_into_own_child_and_parent():
    assert run({"a": 5}, compile_rule("rename", "a", target="a.b")).body == {"a": {"b": 5}}
    assert run({"a": {"b": 5, "c": 6}}, compile_rule("rename", "a.b", target="a")).body == {"a": 5}


def test_rename_to_itself_is_a_no_op():
    body = {"a": 1}
    result = run(body, Rule("rename", ("a",), target=("a",)))
    assert result.body is body and result.changes == []


@pytest.mark.parametrize(
    "body, source, target",
    [
        ({"b": 1}, "a", "c"),  # missing source
        ({"a": [{"b": 1}]}, "a.b", "c"),  # source through a list
        ({"a": 1, "c": 5}, "a", "c.d"),  # target intermediate is not a dict
        ({"a": 1, "c": {"d": [1]}}, "a", "c.d.e"),
    ],
)
def test_rename_no_op_cases(body, source, target):
    result = run(body, compile_rule("rename", source, target=target))
    assert result.body is body and result.changes == []


# --------------------------------------------------------------------------- set


def test_set_top_level_and_nested_creating_parents():
    body = {"model": "m"}
    result = run(body, compile_rule("set", "store", value=False, source="p"),
                 compile_rule("set", "reasoning.summary", value="auto", source="p"))
    assert result.body == {"model": "m", "store": False, "reasoning": {"summary": "auto"}}
    assert result.changes == [
        {"action": "set", "path": "store", "value": False, "policy": "p"},
        {"action": "set", "path": "reasoning.summary", "value": "auto", "policy": "p"},
    ]


def test_set_overwrites_different_value():
    result = run({"store": True}, compile_rule("set", "store", value=False))
    assert result.body == {"store": False}


def test_set_equal_value_is_no_change():
    body = {"store": False, "opts": {"a": [1, {"b": None}]}}
    result = run(body, compile_rule("set", "store", value=False), compile_rule("set", "opts", value={"a": [1, {"b": None}]}))
    assert result.body is body and result.changes == []


@pytest.mark.parametrize("existing, value", [(1, True), (True, 1), (0, False), (1, 1.0), ([1], [True]), ({"a": 1}, {"a": True})])
def test_set_equal_but_different_type_is_a_change(existing, value):
    result = run({"x": existing}, compile_rule("set", "x", value=value))
    assert result.changes == [{"action": "set", "path": "x", "value": value, "policy": ""}]
    assert type(result.body["x"]) is type(value)
    assert json.dumps(result.body["x"]) == json.dumps(value)


@pytest.mark.parametrize("body", [{"a": 5}, {"a": [1]}, {"a": {"b": "s"}}])
def test_set_skips_when_intermediate_is_not_a_dict(body):
    result = run(body, compile_rule("set", "a.b.c", value=1))
    assert result.body is body and result.changes == []


def test_set_value_is_deep_copied_into_body():
    rule = compile_rule("set", "meta", value={"tags": ["x"]})
    result = run({}, rule)
    result.body["meta"]["tags"].append("mutated")
    result.changes[0]["value"]["tags"].append("mutated")
    assert rule.value == {"tags": ["x"]}
    # And applying again yields a fresh copy.
    assert run({}, rule).body == {"meta": {"tags": ["x"]}}


# --------------------------------------------------------------------------- default


def test_default_sets_absent_path_creating_parents():
    result = run({"model": "m"}, compile_rule("default", "text.verbosity", value="low", source="p"))
    assert result.body == {"model": "m", "text": {"verbosity": "low"}}
    assert result.changes == [{"action": "default", "path": "text.verbosity", "value": "low", "policy": "p"}]


@pytest.mark.parametrize("existing", ["high", None, False, 0, {}])
def test_default_present_path_is_no_change(existing):
    body = {"text": {"verbosity": existing}}
    result = run(body, compile_rule("default", "text.verbosity", value="low"))
    assert result.body is body and result.changes == []


def test_default_skips_when_intermediate_is_not_a_dict():
    body = {"text": "plain"}
    result = run(body, compile_rule("default", "text.verbosity", value="low"))
    assert result.body is body and result.changes == []


def test_default_into_empty_existing_parent():
    body = {"text": {}}
    result = run(body, compile_rule("default", "text.verbosity", value="low"))
    assert result.body == {"text": {"verbosity": "low"}}
    assert body == {"text": {}}


# --------------------------------------------------------------------------- conditions


@pytest.mark.parametrize(
    "rule_endpoint, endpoint, fires",
    [("any", "chat", True), ("chat", "chat", True), ("chat", "responses", False),
     ("responses", "compact", False), ("compact", "compact", True)],
)
def test_endpoint_condition(rule_endpoint, endpoint, fires):
    body = {"user": "u"}
    result = run(body, compile_rule("drop", "user", endpoint=rule_endpoint), endpoint=endpoint)
    assert (result.body is not body) is fires
    assert bool(result.changes) is fires


@pytest.mark.parametrize(
    "rule_stream, stream, fires",
    [("any", True, True), ("any", False, True), ("stream", True, True), ("stream", False, False),
     ("non_stream", False, True), ("non_stream", True, False)],
)
def test_stream_condition(rule_stream, stream, fires):
    body = {"user": "u"}
    result = run(body, compile_rule("drop", "user", stream=rule_stream), stream=stream)
    assert bool(result.changes) is fires


def test_reject_respects_conditions():
    body = {"user": "u"}
    assert run(body, compile_rule("reject", "user", endpoint="chat"), endpoint="responses").body is body
    assert run(body, compile_rule("reject", "user", stream="stream"), stream=False).body is body
    with pytest.raises(PolicyRejected):
        run(body, compile_rule("reject", "user", stream="stream"), stream=True)


# --------------------------------------------------------------------------- phase ordering


def test_drop_runs_before_rename_regardless_of_list_order():
    result = run({"a": 1}, compile_rule("rename", "a", target="b"), compile_rule("drop", "a"))
    assert result.body == {}
    assert [c["action"] for c in result.changes] == ["drop"]


def test_set_runs_after_rename_regardless_of_list_order():
    result = run({"a": 1}, compile_rule("set", "b", value=2), compile_rule("rename", "a", target="b"))
    assert result.body == {"b": 2}
    assert [c["action"] for c in result.changes] == ["rename", "set"]


def test_default_runs_after_set_regardless_of_list_order():
    result = run({}, compile_rule("default", "x", value="d"), compile_rule("set", "x", value="s"))
    assert result.body == {"x": "s"}
    assert [c["action"] for c in result.changes] == ["set"]


def test_allow_only_runs_before_default():
    result = run({"model": "m", "junk": 1}, compile_rule("default", "extra", value=1),
                 compile_rule("allow_only", "input"))
    assert result.body == {"model": "m", "extra": 1}


def test_list_order_within_a_phase():
    result = run({}, compile_rule("set", "x", value=1, source="first"), compile_rule("set", "x", value=2, source="second"))
    assert result.body == {"x": 2}
    assert [c["policy"] for c in result.changes] == ["first", "second"]


# --------------------------------------------------------------------------- immutability and identity


def test_no_rules_returns_same_object():
    body = {"a": 1}
    result = apply_policy(body, [], endpoint="chat", stream=False)
    assert isinstance(result, PolicyResult)
    assert result.body is body and result.changes == []


def test_only_non_matching_rules_returns_same_object():
    body = {"a": 1}
    result = run(body, compile_rule("drop", "a", endpoint="chat"), compile_rule("set", "b", value=1, stream="stream"))
    assert result.body is body


def test_input_never_mutated_by_a_mix_of_rules():
    body = {"model": "m", "a": {"b": {"c": 1}, "d": [1, {"e": 2}]}, "f": {"g": 1}, "junk": 0}
    original = copy.deepcopy(body)
    rules = [compile_rule("allow_only", "a, f"), compile_rule("drop", "a.b.c"), compile_rule("rename", "f.g", target="a.x.y"),
             compile_rule("set", "a.d", value=[]), compile_rule("default", "f.h", value={"i": 1})]
    result = run(body, *rules)
    assert body == original
    assert result.body == {"model": "m", "a": {"d": [], "x": {"y": 1}}, "f": {"h": {"i": 1}}}
