"""`manage.py export_routes` (routing/config/exporter.py): what it writes, and the round trip through
`import_routes` into an empty database (same YAML again, same rows field by field, same decrypted keys)."""

import json
from io import StringIO

import pytest
import yaml
from django.core.management import call_command

from routing import services
from routing.config.exporter import export_routes
from routing.models import Deployment, GroupFallback, ModelGroup, ParamPolicy, PolicyRule

KEYS = {"east": "azure-east-secret-0001", "west": "azure-west-secret-0002", "gpt-4o": "openai-secret-0003",
        "eu": "openai-eu-secret-0004", "vllm-a": "vllm-secret-0005"}
SHARED = ("SHARED_AZURE_KEY", "azure-shared-secret-0006")
# Compared as ordering keys and as values; ids and timestamps differ by nature, keys are compared decrypted.
NOT_COMPARED = {"id", "created_at", "updated_at", "api_key_encrypted", "api_key_env"}


def dep(group: ModelGroup, name: str, *, key: str = "", **fields) -> Deployment:
    deployment = Deployment(group=group, name=name, **fields)
    return services.deployment_save(deployment=deployment, new_api_key=key)  # gives Azure its preset


def build_routes() -> None:
    """Every kind of thing the file carries: strategies and group settings, the four providers (and an
    openai deployment whose host the prefix alone would call compatible), keys from the admin and from an
    import, a disabled deployment, capability overrides, custom timeouts and limits, a custom policy with
    every rule action, a preset, policies extending policies, fallbacks with gaps in their positions."""
    preset = services.presets_ensure()[services.AZURE_RESPONSES_PRESET]
    base = ParamPolicy.objects.create(name="z-base", description="Shared base.")
    PolicyRule.objects.create(policy=base, action="drop", path="metadata", stream="non_stream")
    child = ParamPolicy.objects.create(name="a-child", extends=base)  # sorts before its base
    PolicyRule.objects.create(policy=child, action="default", path="max_output_tokens", value=1024)
    strict = ParamPolicy.objects.create(name="strict", description="Every action.\nTwo lines.", extends=preset)
    for position, (action, path, extra) in enumerate([
        ("reject", "prompt_cache_key", {"message": "Not here."}),
        ("allow_only", "model,input,stream,tools,reasoning", {"endpoint": "responses"}),
        ("drop", "reasoning.summary", {"stream": "stream"}),
        ("rename", "max_tokens", {"target": "max_output_tokens", "endpoint": "chat"}),
        ("set", "store", {"value": False}),
        ("set", "text.format", {"value": {"type": "json_schema", "strict": True, "n": [1, 2.5, None]}}),
        ("default", "temperature", {"value": 0}),
        ("drop", "user", {"enabled": False}),
    ]):
        PolicyRule.objects.create(policy=strict, position=position * 10, action=action, path=path, **extra)
    PolicyRule.objects.create(policy=strict, position=0, action="drop", path="safety_identifier")  # tie on 0
    ParamPolicy.objects.create(name="unused", description="Kept though no deployment uses it.")

    azure = ModelGroup.objects.create(name="azure-gpt-5.5", description="Prod", strategy="priority", max_attempts=2,
                                      retry_on_status="429,503", cooldown_failures=5, cooldown_window=30.5,
                                      cooldown_seconds=12)
    gpt = ModelGroup.objects.create(name="gpt-4o", strategy="lowest_latency")
    llama = ModelGroup.objects.create(name="llama 3 (vLLM)", strategy="least_busy")
    demo = ModelGroup.objects.create(name="demo", enabled=False)
    ModelGroup.objects.create(name="empty")
    resource = {"provider": "azure", "api_base": "https://res.openai.azure.com", "upstream_model": "gpt-5.5-prod"}
    dep(azure, "east", key=KEYS["east"], **resource, api_version="2025-04-01-preview", priority=1, weight=3,
        rpm=600, tpm=100000, connect_timeout=2.5, first_byte_timeout=90, idle_timeout=45, total_timeout=900,
        chat_stream_usage=False, collect_stream_usage=True, policy=strict)
    dep(azure, "west", key=KEYS["west"], **resource, priority=2, enabled=False)
    for name in ("shared-1", "shared-2"):
        shared = dep(azure, name, key=SHARED[1], **resource, priority=3)
        Deployment.objects.filter(pk=shared.pk).update(api_key_env=SHARED[0])  # as an import of os.environ/ leaves it
    dep(gpt, "gpt-4o", key=KEYS["gpt-4o"], provider="openai", upstream_model="gpt-4o", speaks_compact=False,
        policy=child)
    dep(gpt, "eu", key=KEYS["eu"], provider="openai", api_base="https://eu.api.openai.com/v1",
        upstream_model="gpt-4o", priority=-1)
    dep(llama, "vllm-a", key=KEYS["vllm-a"], provider="openai_compatible", api_base="http://gpu-1:8000/v1",
        upstream_model="llama-3", speaks_responses=True, chat_reasoning_effort=True)
    dep(llama, "vllm-b", provider="openai_compatible", api_base="http://gpu-1:8001/v1", upstream_model="llama-3")
    dep(llama, "on-openai-host", provider="openai_compatible", api_base="https://api.openai.com/v1")
    dep(demo, "mock", provider="mock")
    GroupFallback.objects.create(group=azure, fallback=gpt, position=0)
    GroupFallback.objects.create(group=azure, fallback=demo, position=1)
    GroupFallback.objects.create(group=gpt, fallback=llama, position=5)


def wipe() -> None:
    """An empty database: no routes, no policies, not even the migration-seeded preset."""
    GroupFallback.objects.all().delete()
    Deployment.objects.all().delete()
    ModelGroup.objects.all().delete()
    while ParamPolicy.objects.exists():  # bases are protected while a policy extends them
        ParamPolicy.objects.filter(children__isnull=True).delete()


def row(obj, exclude=()) -> dict:
    values = {}
    for f in obj._meta.concrete_fields:
        if f.name in NOT_COMPARED or f.name in exclude:
            continue
        value = getattr(obj, f.name)
        values[f.name] = value.name if f.is_relation and value is not None else value
    return values


def database_state() -> dict:
    """Every routing row, field by field, foreign keys by name; JSON values in a form where 0 != False."""
    rules = lambda p: [json.dumps(row(r, exclude=("policy",)), sort_keys=True)  # noqa: E731
                       for r in p.rules.order_by("position", "id")]
    return {
        "groups": [row(g) for g in ModelGroup.objects.order_by("name")],
        "deployments": [row(d) for d in Deployment.objects.order_by("group__name", "priority", "id")],
        "fallbacks": sorted((f.group.name, f.fallback.name, f.position) for f in GroupFallback.objects.all()),
        "policies": [(row(p), rules(p)) for p in ParamPolicy.objects.order_by("name")],
    }


def keys() -> dict[tuple[str, str], str]:
    return {(d.group.name, d.name): d.api_key for d in Deployment.objects.select_related("group")}


def run_export(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("export_routes", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def run_import(tmp_path, text: str) -> str:
    path = tmp_path / "exported.yaml"
    path.write_text(text, encoding="utf-8")
    out = StringIO()
    call_command("import_routes", str(path), stdout=out, stderr=StringIO())
    return out.getvalue()


@pytest.fixture
def routes(db):
    build_routes()


def test_round_trip_into_an_empty_database(routes, tmp_path, monkeypatch):
    before, before_keys = database_state(), keys()
    text, err = run_export()
    exported = export_routes()
    assert text == exported.text
    for variable in exported.variables:  # what ops would set: the key each variable names
        group, name = variable.deployments[0].split(" → ")
        monkeypatch.setenv(variable.name, before_keys[group, name])

    wipe()
    assert not ParamPolicy.objects.exists() and not ModelGroup.objects.exists()
    out = run_import(tmp_path, text)
    assert "Groups: 5 created" in out and "Deployments: 10 created" in out and "Policies: 4 created" in out

    assert run_export()[0] == text
    after = database_state()
    for section in before:  # one section at a time, so a failure shows a readable difference
        assert after[section] == before[section], section
    assert keys() == before_keys

    out = run_import(tmp_path, text)  # and it is idempotent
    assert "Groups: 0 created, 5 unchanged. Deployments: 0 created, 0 updated, 10 unchanged." in out
    assert "Policies: 0 created, 0 updated, 4 unchanged." in out
    assert database_state() == before


def test_the_file_carries_every_setting(routes):
    doc = yaml.safe_load(export_routes().text)
    entries = {e["model_info"]["id"]: e for e in doc["model_list"]}
    east = entries["east"]
    assert east["model_name"] == "azure-gpt-5.5"
    assert east["litellm_params"] == {
        "model": "azure/gpt-5.5-prod", "api_base": "https://res.openai.azure.com",
        "api_key": "os.environ/GATEWAY_KEY_AZURE_GPT_5_5_EAST", "api_version": "2025-04-01-preview",
        "rpm": 600, "tpm": 100000, "weight": 3, "order": 1}
    assert east["model_info"]["gateway"] == {
        "policy": "strict", "connect_timeout": 2.5, "first_byte_timeout": 90.0, "idle_timeout": 45.0,
        "total_timeout": 900.0, "chat_stream_usage": False, "collect_stream_usage": True}
    assert entries["west"]["model_info"]["gateway"] == {"policy": "azure-responses", "enabled": False}
    assert entries["eu"]["model_info"]["gateway"] == {"provider": "openai", "policy": None}
    assert entries["on-openai-host"]["litellm_params"]["model"] == "openai/"
    assert entries["on-openai-host"]["model_info"]["gateway"]["provider"] == "openai_compatible"
    assert entries["mock"]["litellm_params"] == {"model": "mock/"}
    assert "api_key" not in entries["vllm-b"]["litellm_params"]  # no key, nothing to set

    groups = {g["name"]: g for g in doc["model_groups"]}
    assert groups["azure-gpt-5.5"] == {
        "name": "azure-gpt-5.5", "description": "Prod", "strategy": "priority", "max_attempts": 2,
        "retry_on_status": "429,503", "cooldown_failures": 5, "cooldown_window": 30.5, "cooldown_seconds": 12.0,
        "fallbacks": ["gpt-4o", "demo"]}
    assert groups["gpt-4o"]["fallbacks"] == [{"group": "llama 3 (vLLM)", "position": 5}]
    assert groups["empty"] == {"name": "empty"}

    policies = {p["name"]: p for p in doc["param_policies"]}
    assert set(policies) == {"a-child", "strict", "unused", "z-base"}  # the built-in preset by name only
    assert policies["strict"]["extends"] == "azure-responses"
    assert {r["action"] for r in policies["strict"]["rules"]} == {"reject", "allow_only", "drop", "rename", "set",
                                                                  "default"}
    assert policies["strict"]["rules"][:2] == [{"action": "reject", "path": "prompt_cache_key", "message": "Not here."},
                                               {"action": "drop", "path": "safety_identifier", "position": 0}]


def test_no_key_value_is_ever_written(routes, tmp_path):
    secrets = [*KEYS.values(), SHARED[1], *Deployment.objects.exclude(api_key_encrypted="")
               .values_list("api_key_encrypted", flat=True)]
    out, err = run_export()
    path = tmp_path / "routes.yaml"
    file_out, file_err = run_export("--output", str(path))
    for text in (out, err, path.read_text(), file_out, file_err):
        assert not [s for s in secrets if s in text]
    assert file_out == "" and path.read_text() == out


def test_stderr_names_the_variables_to_set(routes):
    _, err = run_export()
    lines = err.splitlines()
    assert lines[0] == "To import this file, set these 6 environment variable(s) to the upstream keys:"
    assert "  SHARED_AZURE_KEY  (azure-gpt-5.5 → shared-1, azure-gpt-5.5 → shared-2)" in lines
    assert "  GATEWAY_KEY_LLAMA_3_VLLM_VLLM_A  (llama 3 (vLLM) → vllm-a)" in lines
    assert len(lines) == 7


def test_a_variable_an_import_named_is_exported_again(db, tmp_path, monkeypatch):
    monkeypatch.setenv("OPS_AZURE_KEY", "from-the-environment-0007")
    run_import(tmp_path, "model_list:\n- model_name: g\n  litellm_params: {model: azure/d, api_base: "
                         "'https://r.openai.azure.com', api_key: os.environ/OPS_AZURE_KEY}\n")
    entry = yaml.safe_load(export_routes().text)["model_list"][0]
    assert entry["litellm_params"]["api_key"] == "os.environ/OPS_AZURE_KEY"

    deployment = Deployment.objects.get()
    services.deployment_save(deployment=deployment, new_api_key="typed-in-the-admin-0008")
    assert Deployment.objects.get().api_key_env == ""  # that key no longer comes from the variable
    entry = yaml.safe_load(export_routes().text)["model_list"][0]
    assert entry["litellm_params"]["api_key"] == "os.environ/GATEWAY_KEY_G_AZURE_D_R_OPENAI_AZURE_COM"


def test_derived_names_that_clash_get_a_hash_suffix(db):
    """`a-b` and `a.b` would both be GATEWAY_KEY_G_A_B; `d` would get the name `c` was imported from."""
    group = ModelGroup.objects.create(name="g")
    for name in ("a-b", "a.b", "c", "d"):
        dep(group, name, key=f"key-{name}-000000", provider="openai")
    Deployment.objects.filter(name="c").update(api_key_env="GATEWAY_KEY_G_D")
    names = {v.deployments[0]: v.name for v in export_routes().variables}
    assert names["g → c"] == "GATEWAY_KEY_G_D"
    for name, prefix in (("a-b", "GATEWAY_KEY_G_A_B_"), ("a.b", "GATEWAY_KEY_G_A_B_"), ("d", "GATEWAY_KEY_G_D_")):
        assert names[f"g → {name}"].startswith(prefix) and len(names[f"g → {name}"]) == len(prefix) + 8
    assert len(set(names.values())) == 4
    assert {v.name for v in export_routes().variables} == set(names.values())  # deterministic


def test_an_empty_database_exports_an_importable_file(db, tmp_path):
    wipe()
    text, err = run_export()
    assert yaml.safe_load(text) == {"model_list": []}
    assert "nothing to set" in err
    assert "Groups: 0 created" in run_import(tmp_path, text)


def test_output_to_an_unwritable_path_is_a_command_error(db, tmp_path):
    from django.core.management import CommandError

    with pytest.raises(CommandError, match="Cannot write"):
        run_export("--output", str(tmp_path / "missing-dir" / "routes.yaml"))
