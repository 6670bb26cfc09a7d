"""Param policies with nested rules through /api/: the admin's rule checks (and the engine's compile_rule), the
rules list written whole, built-in presets read-only, copies, and history for every rule."""

import pytest

from routing.management_api.serializers.policies import MAX_RULES
from routing.models import ParamPolicy, PolicyRule
from tests.integration.management_api.support import assert_error


@pytest.fixture
def ops(api):
    return api("ops_token")


def test_create_with_rules_in_list_order(ops, world):
    body = {"name": "codex-on-chat", "extends": world.preset.pk, "rules": [
        {"action": "drop", "path": "include", "endpoint": "chat"},
        {"action": "set", "path": "reasoning.effort", "value": "low", "stream": "stream"},
        {"action": "rename", "path": "max_tokens", "target": "max_completion_tokens"},
    ]}
    created = ops.post("/api/policies/", body, format="json")
    assert created.status_code == 201, created.content
    rules = created.json()["rules"]
    assert [(r["position"], r["action"], r["path"]) for r in rules] == [
        (0, "drop", "include"), (1, "set", "reasoning.effort"), (2, "rename", "max_tokens")]
    assert rules[1]["value"] == "low" and rules[1]["stream"] == "stream" and rules[0]["endpoint"] == "chat"
    assert ParamPolicy.objects.get(name="codex-on-chat").extends == world.preset


@pytest.mark.parametrize("rule,param", [
    ({"action": "rename", "path": "a"}, "rules[0].target"),  # the model's clean()
    ({"action": "set", "path": "a"}, "rules[0].value"),
    ({"action": "drop", "path": "a..b"}, "rules[0].path"),
    ({"action": "rename", "path": "a", "target": "b..c"}, "rules[0]"),  # compile_rule's check, on the whole rule
    ({"action": "explode", "path": "a"}, "rules[0].action"),
    ({"action": "set", "path": "a", "value": {"k": "nul\x00"}}, "rules[0].value.k"),
])
def test_rule_errors_name_the_rule(ops, rule, param):
    response = ops.post("/api/policies/", {"name": "p", "rules": [rule]}, format="json")
    error = assert_error(response, 400)
    assert param in error["fields"], error
    assert not ParamPolicy.objects.filter(name="p").exists()


def test_rule_value_size_is_bounded(ops):
    response = ops.post("/api/policies/", {"name": "p", "rules": [{"action": "set", "path": "a",
                                                                   "value": "x" * 70_000}]}, format="json")
    assert "rules[0].value" in assert_error(response, 400)["fields"]


def test_rule_count_is_bounded(ops):
    rules = [{"action": "drop", "path": f"p{i}"} for i in range(MAX_RULES + 1)]
    assert "rules" in assert_error(ops.post("/api/policies/", {"name": "p", "rules": rules}, format="json"),
                                   400)["fields"]


def test_rules_are_written_whole(ops, world):
    kept = world.policy.rules.get()
    body = {"rules": [{"id": kept.pk, "action": "drop", "path": "metadata.tags"},
                      {"action": "default", "path": "store", "value": False}]}
    response = ops.patch(f"/api/policies/{world.policy.pk}/", body, format="json")
    assert response.status_code == 200, response.content
    assert [(r["id"] == kept.pk, r["path"]) for r in response.json()["rules"]] == [
        (True, "metadata.tags"), (False, "store")]
    emptied = ops.patch(f"/api/policies/{world.policy.pk}/", {"rules": []}, format="json").json()
    assert emptied["rules"] == [] and not PolicyRule.objects.filter(policy=world.policy).exists()
    deleted = PolicyRule.history.filter(id=kept.pk).latest("history_date")
    assert deleted.history_type == "-" and deleted.history_change_reason == "api: token t"


def test_rules_untouched_when_absent(ops, world):
    ops.patch(f"/api/policies/{world.policy.pk}/", {"description": "x"}, format="json")
    assert world.policy.rules.count() == 1


def test_a_rule_of_another_policy_is_refused(ops, world):
    foreign = world.preset.rules.get()
    response = ops.patch(f"/api/policies/{world.policy.pk}/", {"rules": [{"id": foreign.pk, "action": "drop",
                                                                          "path": "x"}]}, format="json")
    assert "rules[0].id" in assert_error(response, 400)["fields"]
    foreign.refresh_from_db()
    assert foreign.path == "stream_options"


def test_extends_loops_are_refused(ops, world):
    child = ops.post("/api/policies/", {"name": "child", "extends": world.policy.pk}, format="json").json()
    loop = ops.patch(f"/api/policies/{world.policy.pk}/", {"extends": child["id"]}, format="json")
    assert assert_error(loop, 400)["param"] == "extends"


def test_builtin_presets_are_read_only_and_copied_to_edit(ops, world):
    url = f"/api/policies/{world.preset.pk}/"
    assert assert_error(ops.patch(url, {"description": "mine"}, format="json"), 403)["code"] == "permission_denied"
    assert_error(ops.delete(url), 403)
    assert_error(ops.put(url, {"name": "x", "rules": []}, format="json"), 403)
    assert ops.post("/api/policies/", {"name": "mine", "builtin": True}, format="json").json()["builtin"] is False
    copy = ops.post(f"{url}copy/").json()
    assert copy["name"] == "azure-responses (copy)" and copy["builtin"] is False
    assert [(r["action"], r["path"]) for r in copy["rules"]] == [("drop", "stream_options")]
    world.preset.refresh_from_db()
    assert world.preset.description.startswith("Azure") and world.preset.rules.count() == 1


def test_a_policy_in_use_cannot_be_deleted(ops, world):
    response = ops.delete(f"/api/policies/{world.preset.pk}/")  # built-in: refused before anything else
    assert response.status_code == 403
    world.deployment.policy = world.policy
    world.deployment.save()
    conflict = assert_error(ops.delete(f"/api/policies/{world.policy.pk}/"), 409, "conflict")
    assert "east" in conflict["message"]
    assert ParamPolicy.objects.filter(pk=world.policy.pk).exists()
