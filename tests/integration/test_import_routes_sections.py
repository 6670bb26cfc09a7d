"""`import_routes` with the gateway's extensions (routing/config/route_sections.py, importer.py):
`model_groups`, `param_policies`, `model_info.gateway`; their validation (the admin's forms), NUL and
over-long values (run this file on PostgreSQL too), and plain LiteLLM files left working as before."""

from io import StringIO

import pytest
import yaml
from django.core.management import CommandError, call_command

from routing.models import Deployment, GroupFallback, ModelGroup, ParamPolicy, PolicyRule
from routing.services import AZURE_RESPONSES_PRESET

AZURE = {"model": "azure/gpt-5.5-prod", "api_base": "https://res.openai.azure.com"}


def entry(group: str = "g", name: str = "d", gateway: dict | None = None, **params) -> dict:
    info = {"id": name, **({"gateway": gateway} if gateway is not None else {})}
    return {"model_name": group, "litellm_params": {**AZURE, **params}, "model_info": info}


def doc(*entries, **sections) -> str:
    return yaml.safe_dump({"model_list": list(entries), **sections}, sort_keys=False)


def run(tmp_path, text: str, *args: str) -> str:
    path = tmp_path / "routes.yaml"
    path.write_text(text, encoding="utf-8")
    out = StringIO()
    call_command("import_routes", str(path), *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def snapshot() -> tuple:
    rows = lambda model: sorted(map(repr, model.objects.values_list()))  # noqa: E731
    return tuple(rows(m) for m in (ModelGroup, Deployment, ParamPolicy, PolicyRule, GroupFallback))


def rejected(tmp_path, text: str, message: str) -> str:
    before = snapshot()
    with pytest.raises(CommandError) as excinfo:
        run(tmp_path, text)
    assert message in str(excinfo.value), str(excinfo.value)
    assert "Nothing was imported." in str(excinfo.value)
    assert snapshot() == before
    return str(excinfo.value)


# --- model_groups ------------------------------------------------------------------------------------------------

def test_groups_are_created_and_a_listed_entry_is_the_whole_truth(db, tmp_path):
    ModelGroup.objects.create(name="untouched", strategy="priority")
    groups = [{"name": "a", "strategy": "least_busy", "max_attempts": 5, "cooldown_window": 10, "enabled": False},
              {"name": "b", "description": "no deployments yet"}]
    out = run(tmp_path, doc(model_groups=groups))
    assert "Groups: 2 created, 0 unchanged." in out
    a = ModelGroup.objects.get(name="a")
    assert (a.strategy, a.max_attempts, a.cooldown_window, a.enabled, a.retry_on_status) == (
        "least_busy", 5, 10.0, False, "429,500,502,503,504")

    groups[0] = {"name": "a", "max_attempts": 2}  # strategy, window and enabled back to their defaults
    out = run(tmp_path, doc(model_groups=groups))
    assert "Groups: 0 created, 1 updated, 1 unchanged." in out
    a.refresh_from_db()
    assert (a.strategy, a.max_attempts, a.cooldown_window, a.enabled) == ("weighted", 2, 60.0, True)
    assert ModelGroup.objects.get(name="untouched").strategy == "priority"


def test_fallbacks_are_set_replaced_and_cleared(db, tmp_path):
    groups = [{"name": "g", "fallbacks": ["only-in-model-list", {"group": "h", "position": 7}]}, {"name": "h"}]
    run(tmp_path, doc(entry(group="only-in-model-list"), model_groups=groups))
    links = lambda: list(GroupFallback.objects.filter(group__name="g").order_by("position")  # noqa: E731
                         .values_list("fallback__name", "position"))
    assert links() == [("only-in-model-list", 0), ("h", 7)]
    groups[0]["fallbacks"] = ["h"]
    run(tmp_path, doc(model_groups=groups))
    assert links() == [("h", 0)]
    del groups[0]["fallbacks"]
    run(tmp_path, doc(model_groups=groups))
    assert links() == []


@pytest.mark.parametrize(("groups", "message"), [
    ([{"name": "g", "fallbacks": ["g"]}], "model_groups[0] (g): fallback 'g': A group cannot fall back to itself."),
    ([{"name": "g", "fallbacks": ["nowhere"]}], "fallback 'nowhere' is neither in the file nor in the database"),
    ([{"name": "g", "fallbacks": ["h"]}, {"name": "h", "fallbacks": ["g"]}], "lead back to this group (a loop)"),
    ([{"name": "g", "fallbacks": ["h", "h"]}], "fallback 'h'"),
    ([{"name": "g", "strategy": "random"}], "model_groups[0] (g): strategy: Select a valid choice."),
    ([{"name": "g", "retry_on_status": "429,200"}], "retry_on_status: Comma-separated HTTP statuses"),
    ([{"name": "g", "max_attempts": -1}], "max_attempts: Ensure this value is greater than or equal to 0."),
    ([{"name": "g", "enabled": "no"}], "model_groups[0]: 'enabled' must be true or false."),
    ([{"name": "g", "cooldown_window": float("inf")}], "'cooldown_window' must be a finite number."),
    ([{"name": "g", "cooldown_seconds": -5}], "cooldown_seconds: Enter a number of seconds from 0 and at most 86400"),
    ([{"name": "g", "colour": "red"}], "unknown key(s) colour"),
    ([{"strategy": "priority"}], "model_groups[0]: missing 'name'."),
    ([{"name": "g"}, {"name": "g"}], "model_groups[1] (g): the same group as model_groups[0]."),
    ({"name": "g"}, "'model_groups' must be a list"),
])
def test_bad_groups_fail_clearly_and_write_nothing(db, tmp_path, groups, message):
    ModelGroup.objects.create(name="h")
    rejected(tmp_path, doc(entry(), model_groups=groups), message)


def test_a_loop_through_a_group_the_file_does_not_list_is_refused(db, tmp_path):
    g, h = ModelGroup.objects.create(name="g"), ModelGroup.objects.create(name="h")
    GroupFallback.objects.create(group=h, fallback=g)
    rejected(tmp_path, doc(model_groups=[{"name": "g", "fallbacks": ["h"]}]), "(a loop)")


# --- param_policies ----------------------------------------------------------------------------------------------

RULES = [{"action": "drop", "path": "reasoning.summary", "endpoint": "responses", "stream": "stream"},
         {"action": "set", "path": "text.format", "value": {"type": "text"}},
         {"action": "rename", "path": "max_tokens", "target": "max_output_tokens", "position": 9}]


def test_policies_are_created_extending_each_other_and_rules_replaced(db, tmp_path):
    policies = [{"name": "child", "extends": "base", "rules": RULES},
                {"name": "base", "extends": AZURE_RESPONSES_PRESET}]
    out = run(tmp_path, doc(param_policies=policies))
    assert "Policies: 2 created, 0 updated, 0 unchanged." in out
    child = ParamPolicy.objects.get(name="child")
    assert (child.extends.name, child.extends.extends.name, child.builtin) == ("base", AZURE_RESPONSES_PRESET, False)
    assert list(child.rules.order_by("position").values_list("position", "action", "path", "value", "target",
                                                             "endpoint", "stream")) == [
        (0, "drop", "reasoning.summary", None, "", "responses", "stream"),
        (1, "set", "text.format", {"type": "text"}, "", "any", "any"),
        (9, "rename", "max_tokens", None, "max_output_tokens", "any", "any")]

    history = ParamPolicy.history.count(), PolicyRule.history.count()
    assert "Policies: 0 created, 0 updated, 2 unchanged." in run(tmp_path, doc(param_policies=policies))
    assert (ParamPolicy.history.count(), PolicyRule.history.count()) == history  # nothing rewritten

    policies[0]["rules"] = [{"action": "set", "path": "text.format", "value": 1}]  # 1 is not the same as true
    run(tmp_path, doc(param_policies=policies))
    policies[0]["rules"] = [{"action": "set", "path": "text.format", "value": True}]
    assert "1 updated" in run(tmp_path, doc(param_policies=policies))
    assert list(child.rules.values_list("value", flat=True)) == [True]


@pytest.mark.parametrize(("policies", "message"), [
    ([{"name": AZURE_RESPONSES_PRESET, "rules": []}], "is a built-in preset; refer to it by name"),
    ([{"name": "p", "extends": "nowhere"}], "extends 'nowhere', which is neither in param_policies nor in the"),
    ([{"name": "p", "extends": "q"}, {"name": "q", "extends": "p"}], "policies cannot extend each other in a loop"),
    ([{"name": "p", "extends": "in-db"}], "extends: Policies cannot extend each other in a loop."),
    ([{"name": "p", "rules": [{"action": "rename", "path": "a"}]}], "param_policies[0] (p): rules[0]: target: Rename"),
    ([{"name": "p", "rules": [{"action": "explode", "path": "a"}]}], "action: Select a valid choice."),
    ([{"name": "p", "rules": [{"action": "drop", "path": "a..b"}]}], "path: Empty segment in dotted path."),
    ([{"name": "p", "rules": [{"action": "set", "path": "a"}]}], "value: Set/default need a JSON value"),
    ([{"name": "p", "rules": [{"action": "drop", "path": "a", "endpoint": "embeddings"}]}], "endpoint: Select a"),
    ([{"name": "p", "rules": [{"action": "set", "path": "a", "value": float("nan")}]}], "numbers must be finite"),
    ([{"name": "p", "rules": [{"path": "a"}]}], "rules[0]: missing 'action'."),
    ([{"name": "p", "rules": "drop a"}], "'rules' must be a list."),
])
def test_bad_policies_fail_clearly_and_write_nothing(db, tmp_path, policies, message):
    q = ParamPolicy.objects.create(name="q-in-db")
    ParamPolicy.objects.create(name="in-db", extends=q)
    if policies[0].get("extends") == "in-db":  # a loop through the database: q-in-db would extend p
        q.extends = ParamPolicy.objects.create(name="p")
        q.save()
    rejected(tmp_path, doc(entry(), param_policies=policies), message)


def test_a_date_value_is_refused_as_not_json(db, tmp_path):
    text = doc(param_policies=[{"name": "p", "rules": [{"action": "set", "path": "a", "value": "X"}]}])
    rejected(tmp_path, text.replace("value: X", "value: 2025-01-01"), "date is not a JSON value (quote it)")


# --- model_info.gateway ------------------------------------------------------------------------------------------

GATEWAY = {"policy": "mine", "enabled": False, "connect_timeout": 1, "first_byte_timeout": 2.5, "idle_timeout": 3,
           "total_timeout": 4, "speaks_responses": False, "speaks_chat": True, "speaks_compact": None,
           "chat_reasoning_effort": False, "chat_stream_usage": True, "collect_stream_usage": True}


def test_the_gateway_section_sets_every_deployment_setting(db, tmp_path):
    run(tmp_path, doc(entry(gateway=GATEWAY), param_policies=[{"name": "mine"}]))
    d = Deployment.objects.get()
    assert {key: getattr(d, key) for key in GATEWAY if key != "policy"} == {k: v for k, v in GATEWAY.items()
                                                                             if k != "policy"}
    assert d.policy.name == "mine"

    run(tmp_path, doc(entry(gateway={"policy": None})))  # listed: the rest back to the defaults
    d.refresh_from_db()
    assert (d.policy, d.enabled, d.connect_timeout, d.speaks_responses, d.collect_stream_usage) == (
        None, True, 5.0, None, False)

    run(tmp_path, doc(entry(gateway={"enabled": False})))  # no policy key: chosen as for a plain entry (kept)
    d.refresh_from_db()
    assert (d.policy, d.enabled) == (None, False)


def test_provider_override_and_blank_upstream_model(db, tmp_path):
    run(tmp_path, doc(entry(model="openai/", api_base="https://eu.api.openai.com/v1", gateway={"provider": "openai"}),
                      entry(name="m", model="mock/")))
    assert dict(Deployment.objects.values_list("name", "provider")) == {"d": "openai", "m": "mock"}
    assert set(Deployment.objects.values_list("upstream_model", flat=True)) == {""}


def test_a_plain_litellm_file_leaves_what_the_admin_set(db, tmp_path):
    """Backward compatibility: without model_info.gateway, a re-import touches only the LiteLLM fields."""
    text = doc({"model_name": "g", "litellm_params": {**AZURE, "rpm": 5}})
    run(tmp_path, text)
    Deployment.objects.update(enabled=False, connect_timeout=1.5, speaks_chat=False, collect_stream_usage=True)
    out = run(tmp_path, text)
    assert "Deployments: 0 created, 0 updated, 1 unchanged." in out
    d = Deployment.objects.get()
    assert (d.enabled, d.connect_timeout, d.speaks_chat, d.collect_stream_usage, d.policy.name) == (
        False, 1.5, False, True, AZURE_RESPONSES_PRESET)


@pytest.mark.parametrize(("gateway", "message"), [
    ({"policy": "nowhere"}, "model_list[0] (g): policy 'nowhere' is neither in param_policies nor in the database."),
    ({"enabled": "no"}, "model_list[0] (g): model_info.gateway: 'enabled' must be true or false."),
    ({"connect_timeout": True}, "'connect_timeout' must be a number."),
    ({"first_byte_timeout": -1}, "first_byte_timeout: Enter a number of seconds above 0"),
    ({"speaks_chat": "yes"}, "'speaks_chat' must be true, false or null."),
    ({"provider": "bedrock"}, "model_info.gateway.provider must be one of azure, openai, openai_compatible, mock."),
    ({"weight": 3}, "unknown key(s) weight"),
    ({"policy": "mine", "sneaky": 1}, "unknown key(s) sneaky"),
    ("on", "model_info.gateway: must be a mapping."),
])
def test_a_bad_gateway_section_fails_clearly(db, tmp_path, gateway, message):
    rejected(tmp_path, doc(entry(gateway=gateway)), message)


def test_policy_and_additional_drop_params_are_exclusive(db, tmp_path):
    text = doc(entry(gateway={"policy": None}, additional_drop_params=["x"]))
    rejected(tmp_path, text, "use either additional_drop_params or model_info.gateway.policy, not both.")


def test_a_key_the_admin_would_refuse_is_refused_without_echoing_it(db, tmp_path):
    message = rejected(tmp_path, doc(entry(api_key="sk-with space-0009")), "api_key: The key may only contain")
    assert "sk-with" not in message


# --- NUL characters and over-long values (the point of running this file on PostgreSQL) ------------------------

LONG = "x" * 600


@pytest.mark.parametrize(("text", "message"), [
    (doc(entry(group="g\0")), "model_list[0].model_name: contains a NUL character."),
    (doc(entry(api_key="sk-\0-0010")), "model_list[0].litellm_params.api_key: contains a NUL character."),
    (doc(entry(name="d\0")), "model_list[0].model_info.id: contains a NUL character."),
    (doc(model_groups=[{"name": "g", "description": "a\0b"}]), "model_groups[0].description: contains a NUL"),
    (doc(param_policies=[{"name": "p", "rules": [{"action": "set", "path": "a", "value": {"k": ["\0"]}}]}]),
     "param_policies[0].rules[0].value.k[0]: contains a NUL character."),
    (doc(param_policies=[{"name": "p", "rules": [{"action": "set", "path": "a", "value": {"\0": 1}}]}]),
     "param_policies[0].rules[0].value: a key: contains a NUL character."),
    (doc(entry(group="g\ud800")), "model_list[0].model_name: contains an invalid character"),
    (doc(entry(group=LONG)), "name: Ensure this value has at most 200 characters (it has 600)."),
    (doc(entry(api_version=LONG)), "model_list[0] (g): api_version: Ensure this value has at most 50 characters"),
    (doc(entry(model="azure/" + LONG)), "upstream_model: Ensure this value has at most 200 characters"),
    (doc(model_groups=[{"name": "g", "description": LONG}]), "description: Ensure this value has at most 500"),
    (doc(param_policies=[{"name": LONG}]), "name: Ensure this value has at most 200 characters"),
    (doc(param_policies=[{"name": "p", "rules": [{"action": "drop", "path": LONG}]}]),
     "rules[0]: path: Ensure this value has at most 300 characters"),
    (doc(param_policies=[{"name": "p", "rules": [{"action": "reject", "path": "a", "message": LONG}]}]),
     "rules[0]: message: Ensure this value has at most 300 characters"),
])
def test_nul_and_over_long_values_fail_clearly(db, tmp_path, text, message):
    rejected(tmp_path, text, message)


def test_dry_run_with_every_section_writes_nothing(db, tmp_path):
    text = doc(entry(gateway={"policy": "mine"}), model_groups=[{"name": "g", "fallbacks": ["h"]}, {"name": "h"}],
               param_policies=[{"name": "mine", "rules": RULES}])
    before = snapshot()
    out = run(tmp_path, text, "--dry-run")
    assert "Groups: 2 created" in out and "Policies: 1 created" in out and "Dry run" in out
    assert snapshot() == before


def test_the_variable_a_key_came_from_is_remembered_and_a_literal_key_forgets_it(db, tmp_path, monkeypatch):
    long_name = "K" * 250  # longer than the column: the key is imported, the name not remembered
    monkeypatch.setenv("AZURE_KEY_A", "key-from-env-0011")
    monkeypatch.setenv(long_name, "key-from-env-0012")
    run(tmp_path, doc(entry(api_key="os.environ/AZURE_KEY_A"), entry(name="e", api_key="os.environ/" + long_name)))
    assert dict(Deployment.objects.values_list("name", "api_key_env")) == {"d": "AZURE_KEY_A", "e": ""}
    run(tmp_path, doc(entry(api_key="key-from-env-0011")))  # same key, now literal: only the name changes
    d = Deployment.objects.get(name="d")
    assert (d.api_key_env, d.api_key) == ("", "key-from-env-0011")
