"""routing/admin/policies.py: rules as rows, loops refused, built-in presets read-only, effective rules."""

import pytest

from routing.models import ParamPolicy
from routing.services import AZURE_RESPONSES_PRESET
from tests.integration.admin.support import (  # noqa: F401  (fixtures)
    deployment,
    group,
    policy_post,
    url,
)


def test_policy_rules_are_added_as_rows(admin_client, db):
    rules = [{"action": "drop", "path": "stream_options.include_usage", "endpoint": "responses"},
             {"action": "rename", "path": "max_tokens", "target": "max_output_tokens", "position": 1},
             {"action": "set", "path": "store", "value": "false", "position": 2}]
    preset = ParamPolicy.objects.get(name=AZURE_RESPONSES_PRESET)
    response = admin_client.post(url(ParamPolicy, "add"), policy_post(rules, extends=preset.pk))
    assert response.status_code == 302, response.content
    policy = ParamPolicy.objects.get(name="strict")
    assert policy.extends == preset
    assert list(policy.rules.values_list("action", "path", "target", "value")) == [
        ("drop", "stream_options.include_usage", "", None), ("rename", "max_tokens", "max_output_tokens", None),
        ("set", "store", "", False)]


@pytest.mark.parametrize(("rule", "message"), [
    ({"action": "rename", "path": "max_tokens"}, "Rename needs a target path."),
    ({"action": "drop", "path": ""}, "A path is required."),
    ({"action": "explode", "path": "x"}, "Select a valid choice."),
    ({"action": "drop", "path": "a..b"}, "Empty segment in dotted path."),
    ({"action": "rename", "path": "a", "target": "b..c"}, "Empty segment in target path"),
    ({"action": "allow_only", "path": "model,,input"}, "Empty segment in key list"),
])
def test_invalid_policy_rules_show_errors_and_save_nothing(admin_client, db, rule, message):
    response = admin_client.post(url(ParamPolicy, "add"), policy_post([rule]))
    assert response.status_code == 200
    html = response.content.decode().replace("&#x27;", "'")
    assert message in html
    assert html.count(message) == 1  # reported once, not by both the form and the model
    assert not ParamPolicy.objects.filter(name="strict").exists()


def test_policies_cannot_extend_each_other_in_a_loop(admin_client, db):
    base = ParamPolicy.objects.create(name="base")
    child = ParamPolicy.objects.create(name="child", extends=base)
    response = admin_client.post(url(ParamPolicy, "change", base.pk), policy_post([], name="base", extends=child.pk))
    assert "in a loop" in response.content.decode()
    base.refresh_from_db()
    assert base.extends is None


def test_builtin_preset_shows_a_note_and_usage(admin_client, deployment):
    preset = ParamPolicy.objects.get(name=AZURE_RESPONSES_PRESET)
    deployment.policy = preset
    deployment.save()
    html = admin_client.get(url(ParamPolicy, "change", preset.pk)).content.decode()
    assert "Built-in preset" in html and "1 deployment" in html
    assert "stream_options" in html  # its rule is an editable row
    assert "1 deployment" in admin_client.get(url(ParamPolicy, "changelist")).content.decode()
    custom = ParamPolicy.objects.create(name="custom")
    assert "Built-in preset" not in admin_client.get(url(ParamPolicy, "change", custom.pk)).content.decode()


