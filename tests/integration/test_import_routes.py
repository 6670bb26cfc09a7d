"""`manage.py import_routes` (routing/config/importer.py + the thin command)."""

import os
import subprocess
import sys
import textwrap
from io import StringIO
from pathlib import Path

import pytest
import yaml
from django.core.management import CommandError, call_command

from routing.models import Deployment, ModelGroup, ParamPolicy, PolicyRule
from routing.selectors import load_snapshot
from routing.services import AZURE_RESPONSES_PRESET

ROOT = Path(__file__).resolve().parents[2]
AZURE_KEY, OPENAI_KEY = "azure-secret-key-0001", "openai-secret-key-0002"

EXAMPLE = """
model_list:
  - model_name: azure-gpt-5.5
    litellm_params:
      model: azure/gpt-5.5-prod
      api_base: https://res.openai.azure.com
      api_key: os.environ/AZURE_API_KEY
      api_version: "2025-04-01-preview"
      rpm: 600
      tpm: 100000
      weight: 2
      order: 1
      additional_drop_params: ["stream_options", "reasoning.summary"]
  - model_name: gpt-4o
    litellm_params:
      model: openai/gpt-4o
      api_key: os.environ/OPENAI_API_KEY
router_settings:
  routing_strategy: simple-shuffle
"""


@pytest.fixture
def env(monkeypatch):
    monkeypatch.setenv("AZURE_API_KEY", AZURE_KEY)
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY)


def run(tmp_path, text: str, *args: str) -> tuple[str, str]:
    path = tmp_path / "routes.yaml"
    path.write_text(text)
    out, err = StringIO(), StringIO()
    call_command("import_routes", str(path), *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def counts() -> tuple[int, ...]:
    return tuple(m.objects.count() for m in (ModelGroup, Deployment, ParamPolicy, PolicyRule))


def test_imports_groups_deployments_policies_and_encrypted_keys(db, env, tmp_path):
    out, err = run(tmp_path, EXAMPLE)
    assert "Groups: 2 created, 0 unchanged. Deployments: 2 created, 0 updated, 0 unchanged." in out
    assert "router_settings" in err

    azure = Deployment.objects.get(group__name="azure-gpt-5.5")
    assert (azure.name, azure.provider, azure.upstream_model, azure.api_base, azure.api_version) == (
        "azure:gpt-5.5-prod@res.openai.azure.com", "azure", "gpt-5.5-prod", "https://res.openai.azure.com",
        "2025-04-01-preview")
    assert (azure.rpm, azure.tpm, azure.weight, azure.priority) == (600, 100000, 2, 1)
    assert azure.api_key_encrypted.startswith("fernet:") and AZURE_KEY not in azure.api_key_encrypted
    assert azure.api_key == AZURE_KEY
    assert azure.policy.name == "import:azure-gpt-5.5:azure:gpt-5.5-prod@res.openai.azure.com"
    assert azure.policy.extends.name == AZURE_RESPONSES_PRESET
    assert list(azure.policy.rules.values_list("action", "path", "endpoint")) == [
        ("drop", "stream_options", "any"), ("drop", "reasoning.summary", "any")]

    openai = Deployment.objects.get(group__name="gpt-4o")
    assert (openai.name, openai.provider, openai.upstream_model, openai.api_base, openai.api_version) == (
        "openai:gpt-4o@api.openai.com", "openai", "gpt-4o", "", "")
    assert (openai.rpm, openai.tpm, openai.weight, openai.priority) == (None, None, 1, 0)
    assert openai.api_key == OPENAI_KEY and openai.policy is None


def test_drop_params_extend_the_provider_preset_in_the_compiled_policy(db, env, tmp_path):
    run(tmp_path, EXAMPLE)
    snapshot = load_snapshot()
    rules = snapshot.groups["azure-gpt-5.5"].deployments[0].rules
    assert [(r.source, r.action, ".".join(r.path), r.endpoint) for r in rules] == [
        (AZURE_RESPONSES_PRESET, "drop", "stream_options", "responses"),
        ("import:azure-gpt-5.5:azure:gpt-5.5-prod@res.openai.azure.com", "drop", "stream_options", "any"),
        ("import:azure-gpt-5.5:azure:gpt-5.5-prod@res.openai.azure.com", "drop", "reasoning.summary", "any"),
    ]
    assert snapshot.groups["gpt-4o"].deployments[0].rules == ()


def test_reimport_is_idempotent_and_updates_in_place(db, env, tmp_path):
    run(tmp_path, EXAMPLE)
    before, ids = counts(), dict(Deployment.objects.values_list("name", "pk"))
    ciphertext = Deployment.objects.get(group__name="gpt-4o").api_key_encrypted

    out, _ = run(tmp_path, EXAMPLE)
    assert "Groups: 0 created, 2 unchanged. Deployments: 0 created, 0 updated, 2 unchanged." in out
    assert counts() == before and dict(Deployment.objects.values_list("name", "pk")) == ids
    assert Deployment.objects.get(group__name="gpt-4o").api_key_encrypted == ciphertext  # not re-encrypted

    changed = EXAMPLE.replace("rpm: 600", "rpm: 700").replace('["stream_options", "reasoning.summary"]', '["top_k"]')
    out, _ = run(tmp_path, changed)
    assert "Deployments: 0 created, 1 updated, 1 unchanged." in out
    azure = Deployment.objects.get(group__name="azure-gpt-5.5")
    assert azure.pk == ids[azure.name] and azure.rpm == 700
    assert list(azure.policy.rules.values_list("path", flat=True)) == ["top_k"]
    assert counts() == (before[0], before[1], before[2], before[3] - 1)


def test_model_info_id_is_the_identity_so_a_new_api_base_updates_in_place(db, env, tmp_path):
    with_id = EXAMPLE.replace("  - model_name: gpt-4o\n", "  - model_name: gpt-4o\n    model_info: {id: oai-main}\n")
    run(tmp_path, with_id)
    dep = Deployment.objects.get(group__name="gpt-4o")
    assert dep.name == "oai-main"
    vllm = "      api_base: http://vllm:8000/v1\n"
    moved = with_id.replace("model: openai/gpt-4o\n", "model: openai/gpt-4o\n" + vllm)
    out, _ = run(tmp_path, moved)
    assert "1 updated, 1 unchanged" in out
    dep.refresh_from_db()
    assert (dep.provider, dep.api_base) == ("openai_compatible", "http://vllm:8000/v1")
    assert Deployment.objects.filter(group__name="gpt-4o").count() == 1


def test_dropping_additional_drop_params_restores_the_preset(db, env, tmp_path):
    run(tmp_path, EXAMPLE)
    drops = '      additional_drop_params: ["stream_options", "reasoning.summary"]\n'
    out, _ = run(tmp_path, EXAMPLE.replace(drops, ""))
    assert "1 updated" in out
    assert Deployment.objects.get(group__name="azure-gpt-5.5").policy.name == AZURE_RESPONSES_PRESET
    assert not ParamPolicy.objects.filter(name__startswith="import:").exists()


def test_absent_api_key_keeps_the_stored_key(db, env, tmp_path):
    run(tmp_path, EXAMPLE)
    out, _ = run(tmp_path, EXAMPLE.replace("      api_key: os.environ/OPENAI_API_KEY\n", ""))
    assert "2 unchanged" in out
    assert Deployment.objects.get(group__name="gpt-4o").api_key == OPENAI_KEY


def test_dry_run_writes_nothing(db, env, tmp_path):
    before = counts()
    out, _ = run(tmp_path, EXAMPLE, "--dry-run")
    assert "2 created" in out and "Dry run: nothing was written." in out
    assert counts() == before


def assert_rejected(tmp_path, text: str, message: str) -> None:
    before = counts()
    with pytest.raises(CommandError) as excinfo:
        run(tmp_path, text)
    assert message in str(excinfo.value)
    assert "Nothing was imported." in str(excinfo.value)
    assert counts() == before


@pytest.mark.parametrize(("text", "message"), [
    ("model_list: [\n  - bad", "Not valid YAML"),
    ("router_settings: {}\n", "top-level 'model_list'"),
    ("model_list: {model_name: x}\n", "top-level 'model_list'"),
])
def test_bad_files_fail_clearly(db, tmp_path, text, message):
    assert_rejected(tmp_path, text, message)


@pytest.mark.parametrize(("entry", "message"), [
    ({"litellm_params": {"model": "openai/x"}}, "model_list[2]: missing 'model_name'"),
    ({"model_name": "x", "litellm_params": {"api_base": "https://h"}},
     "model_list[2] (x): missing 'litellm_params.model'"),
    ({"model_name": "b", "litellm_params": {"model": "bedrock/claude"}},
     "model_list[2] (b): unsupported model 'bedrock/claude': expected one of azure/<model>, openai/<model>"),
    ({"model_name": "b", "litellm_params": {"model": "gpt-4o"}}, "unsupported model 'gpt-4o'"),
    ({"model_name": "z", "litellm_params": {"model": "azure/d", "api_base": "https://h", "api_key": "os.environ/NOPE"}},
     "model_list[2] (z): 'api_key' refers to environment variable NOPE, which is not set."),
    ({"model_name": "z", "litellm_params": {"model": "azure/d"}}, "'api_base' is required for provider 'azure'"),
    ({"model_name": "z", "litellm_params": {"model": "openai/m", "rpm": -1}}, "'rpm' must be a whole number >= 0"),
    ({"model_name": "z", "litellm_params": {"model": "openai/m", "additional_drop_params": ["a..b"]}},
     "Empty segment in path"),
    ({"model_name": "gpt-4o", "litellm_params": {"model": "openai/gpt-4o"}},
     "model_list[2]: same deployment as model_list[1]"),
    # The model's URL validator, run while parsing (the host names the deployment):
    ({"model_name": "z", "litellm_params": {"model": "openai/m", "api_base": "not a url"}},
     "model_list[2] (z): api_base: Enter an http"),
])
def test_a_bad_entry_names_its_index_and_nothing_is_written(db, env, tmp_path, entry, message):
    text = EXAMPLE.replace("router_settings:", textwrap.indent(yaml.safe_dump([entry]), "  ") + "router_settings:")
    assert_rejected(tmp_path, text, message)


def test_missing_file_is_a_command_error(db, tmp_path):
    with pytest.raises(CommandError, match="Cannot read"):
        call_command("import_routes", str(tmp_path / "nope.yaml"))


@pytest.mark.django_db(transaction=True)
def test_command_line_run_in_a_subprocess(tmp_path):
    from tests.integration.server import server_database_url

    path = tmp_path / "routes.yaml"
    path.write_text(EXAMPLE)
    environ = {**os.environ, "DATABASE_URL": server_database_url(), "AZURE_API_KEY": AZURE_KEY,
               "OPENAI_API_KEY": OPENAI_KEY}
    result = subprocess.run([sys.executable, "manage.py", "import_routes", str(path)], cwd=ROOT, env=environ,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "Deployments: 2 created" in result.stdout
    assert Deployment.objects.get(group__name="gpt-4o").api_key == OPENAI_KEY  # same encryption key both sides

    environ.pop("AZURE_API_KEY")
    result = subprocess.run([sys.executable, "manage.py", "import_routes", str(path)], cwd=ROOT, env=environ,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert "CommandError" in result.stderr and "AZURE_API_KEY" in result.stderr


TWO_VLLM = """
model_list:
  - model_name: llama
    litellm_params: {model: hosted_vllm/llama-3, api_base: "http://gpu-1:8000/v1"}
  - model_name: llama
    litellm_params: {model: hosted_vllm/llama-3, api_base: "http://gpu-1:8001/v1"}
"""


def test_two_servers_on_one_host_are_two_deployments(db, tmp_path):
    out, _ = run(tmp_path, TWO_VLLM)
    assert "Deployments: 2 created" in out
    deps = dict(Deployment.objects.filter(group__name="llama").values_list("name", "api_base"))
    assert deps == {"openai_compatible:llama-3@gpu-1:8000": "http://gpu-1:8000/v1",
                    "openai_compatible:llama-3@gpu-1:8001": "http://gpu-1:8001/v1"}
    out, _ = run(tmp_path, TWO_VLLM)
    assert "0 created, 0 updated, 2 unchanged" in out


def test_a_deployment_imported_without_the_port_in_its_name_is_updated_in_place(db, tmp_path):
    run(tmp_path, TWO_VLLM)
    old = Deployment.objects.get(api_base="http://gpu-1:8000/v1")
    Deployment.objects.filter(api_base="http://gpu-1:8001/v1").delete()
    Deployment.objects.filter(pk=old.pk).update(name="openai_compatible:llama-3@gpu-1")  # as an earlier import named it
    out, _ = run(tmp_path, TWO_VLLM)
    assert "1 created, 1 updated" in out
    old.refresh_from_db()
    assert old.name == "openai_compatible:llama-3@gpu-1:8000"
    assert Deployment.objects.filter(group__name="llama").count() == 2


def test_a_url_without_a_port_keeps_its_name(db, env, tmp_path):
    run(tmp_path, EXAMPLE)
    assert Deployment.objects.filter(name="openai:gpt-4o@api.openai.com").exists()
