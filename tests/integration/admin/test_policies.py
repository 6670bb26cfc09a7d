"""routing/admin/policies.py: rules as rows, loops refused, built-in presets read-only, effective rules."""

import re

import pytest
from django.urls import reverse

from routing.models import Deployment, ParamPolicy, PolicyRule
from routing.services import AZURE_RESPONSES_PRESET
from tests.integration.admin.support import (  # noqa: F401  (fixtures)
    SECRET,
    deployment,
    deployment_post,
    formset,
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
    # PostgreSQL's jsonb refuses \u0000 (a 500 before the validator); values are bounded
    ({"action": "set", "path": "user", "value": '{"a": ["x\\u0000y"]}'}, "may not contain NUL"),
    ({"action": "set", "path": "user", "value": '{"k\\u0000": 1}'}, "may not contain NUL"),
    ({"action": "set", "path": "user", "value": '"' + "x" * 70_000 + '"'}, "larger than 65536 bytes"),
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




# --- presets read-only, copy, effective rules, history ------------------------------------------------------------

def test_builtin_preset_is_read_only_and_can_be_copied(admin_client, db):
    preset = ParamPolicy.objects.get(name=AZURE_RESPONSES_PRESET)
    page = admin_client.get(url(ParamPolicy, "change", preset.pk)).content.decode()
    assert "View param policy" in page and 'name="rules-0-path"' not in page and "Copy to edit" in page
    response = admin_client.post(url(ParamPolicy, "change", preset.pk), policy_post([], name="renamed"))
    assert response.status_code == 403
    assert admin_client.post(url(ParamPolicy, "delete", preset.pk), {"post": "yes"}).status_code == 403
    preset.refresh_from_db()
    assert preset.name == AZURE_RESPONSES_PRESET and preset.rules.count() == 1

    response = admin_client.post(reverse("admin:routing_parampolicy_copy", args=[preset.pk]))
    copy = ParamPolicy.objects.get(name=f"{AZURE_RESPONSES_PRESET} (copy)")
    assert response["Location"] == url(ParamPolicy, "change", copy.pk)
    assert copy.builtin is False
    assert list(copy.rules.values_list("action", "path", "endpoint")) == [("drop", "stream_options", "responses")]
    assert 'name="rules-0-path"' in admin_client.get(url(ParamPolicy, "change", copy.pk)).content.decode()


def test_effective_rules_list_base_rules_first_in_phase_order(admin_client, db):
    base = ParamPolicy.objects.create(name="base")
    PolicyRule.objects.create(policy=base, position=0, action="set", path="store", value=False)
    PolicyRule.objects.create(policy=base, position=1, action="drop", path="base_drop")
    child = ParamPolicy.objects.create(name="child", extends=base)
    PolicyRule.objects.create(policy=child, position=0, action="default", path="temperature", value=1)
    PolicyRule.objects.create(policy=child, position=1, action="drop", path="child_drop")
    PolicyRule.objects.create(policy=child, position=2, action="reject", path="logit_bias")
    PolicyRule.objects.create(policy=child, position=3, action="drop", path="disabled", enabled=False)
    html = admin_client.get(url(ParamPolicy, "change", child.pk)).content.decode()
    table = html[html.index("gw-effective-rules"):html.index("</table>", html.index("gw-effective-rules"))]
    rows = re.findall(r"<td>\d+</td><td>(\w+)</td><td><code>([\w.]+)</code></td>", table)
    assert rows == [("reject", "logit_bias"), ("drop", "base_drop"), ("drop", "child_drop"), ("set", "store"),
                    ("default", "temperature")]
    assert table.count("(inherited)") == 2


def test_policy_history_shows_rule_changes_and_restores_policy_with_rules(admin_client, admin_user, db):
    rules = [{"action": "drop", "path": "client_metadata"}, {"action": "set", "path": "store", "value": "false",
                                                               "position": 1}]
    assert admin_client.post(url(ParamPolicy, "add"), policy_post(rules)).status_code == 302
    policy = ParamPolicy.objects.get(name="strict")
    first, second = policy.rules.order_by("position")
    checkpoint = PolicyRule.history.filter(id=second.pk).latest("history_date").history_date

    edit = {"name": "strict", "description": "now stricter", "extends": "",
            **formset("rules", [{"id": first.pk, "policy": policy.pk, "action": "drop", "path": "client_metadata",
                                 "endpoint": "responses", "stream": "any", "position": 0, "enabled": "on"},
                                {"id": second.pk, "policy": policy.pk, "action": "set", "path": "store",
                                 "value": "false", "endpoint": "any", "stream": "any", "position": 1,
                                 "DELETE": "on"},
                                {"action": "reject", "path": "logit_bias", "endpoint": "any", "stream": "any",
                                 "position": 2, "enabled": "on"}], initial=2)}
    assert admin_client.post(url(ParamPolicy, "change", policy.pk), edit).status_code == 302
    assert set(policy.rules.values_list("action", "path")) == {("drop", "client_metadata"), ("reject", "logit_bias")}

    history = admin_client.get(url(ParamPolicy, "history", policy.pk)).content.decode()
    section = history[history.index("Rule changes"):]
    assert "<strong>endpoint</strong>: any → responses" in section
    assert section.count("Deleted") == 1 and admin_user.username in section
    assert "<strong>Description:</strong>" in history and "now stricter" in history  # the policy's own fields

    response = admin_client.post(reverse("admin:routing_parampolicy_restore", args=[policy.pk]),
                                 {"at": checkpoint.isoformat()})
    assert response.status_code == 302
    policy.refresh_from_db()
    assert policy.description == ""
    assert set(policy.rules.values_list("action", "path", "endpoint")) == {
        ("drop", "client_metadata", "any"), ("set", "store", "any")}


def test_deployment_revert_from_history_keeps_the_current_key(admin_client, deployment):
    admin_client.post(url(Deployment, "change", deployment.pk), deployment_post(deployment.group, weight=7,
                                                                                new_api_key="sk-rotated-0000-9999"))
    original = Deployment.history.filter(id=deployment.pk).order_by("history_date").first()
    assert original.weight == 1 and not hasattr(original, "api_key_encrypted")
    revert_page = admin_client.get(url(Deployment, "simple_history", deployment.pk, original.history_id))
    assert revert_page.status_code == 200 and SECRET not in revert_page.content.decode()
    admin_client.post(url(Deployment, "simple_history", deployment.pk, original.history_id),
                      deployment_post(deployment.group, weight=1))
    deployment.refresh_from_db()
    assert deployment.weight == 1 and deployment.api_key == "sk-rotated-0000-9999"
