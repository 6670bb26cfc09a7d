"""Codex itself (`codex exec`) against a chat-only upstream through the gateway's bridge. Skipped unless Codex
is installed: set CODEX_BIN to its binary (e.g. from `npm install @openai/codex`), or have `codex` on PATH."""

import os
import shutil
import subprocess

import pytest

from routing.models import RequestLog
from tests.integration.bridge_support import (  # noqa: F401  (fixtures)
    _fake_vllm_server,
    chat_calls,
    fake_vllm,
    vllm_route,
)

CODEX = os.environ.get("CODEX_BIN") or shutil.which("codex")
pytestmark = pytest.mark.skipif(not CODEX, reason="Codex is not installed (set CODEX_BIN)")
# What Codex sends that Chat Completions has no equivalent for: ops drop it on a chat-only deployment.
CODEX_POLICY = [("drop", "include", "chat"), ("drop", "reasoning", "chat"), ("drop", "client_metadata", "chat")]


def run_codex(gateway: str, model: str, key: str, workdir, prompt: str) -> subprocess.CompletedProcess:
    home = workdir / "codex-home"
    home.mkdir()
    (home / "config.toml").write_text(
        # web search is a hosted tool Chat Completions cannot run: Codex users turn it off for such a model
        f'model = "{model}"\nmodel_provider = "gateway"\nweb_search = "disabled"\n\n'
        f'[model_providers.gateway]\nname = "gateway"\n'
        f'base_url = "{gateway}/v1"\nenv_key = "GATEWAY_API_KEY"\nwire_api = "responses"\n')
    env = {**os.environ, "CODEX_HOME": str(home), "GATEWAY_API_KEY": key, "NO_COLOR": "1"}
    return subprocess.run([CODEX, "exec", "--skip-git-repo-check", "--sandbox", "read-only", prompt], env=env,
                          cwd=workdir, capture_output=True, text=True, timeout=180, stdin=subprocess.DEVNULL)


def test_codex_exec_on_a_chat_only_upstream(gateway, fake_vllm, vllm_route, make_key, tmp_path):
    dep = vllm_route(fake_vllm, policy_rules=CODEX_POLICY)
    fake_vllm.chat_script = {"text": "Bridged hello for Codex."}
    result = run_codex(gateway, dep.group.name, make_key().secret, tmp_path, "Say hello")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Bridged hello for Codex." in result.stdout
    calls = chat_calls(fake_vllm)
    assert calls, [r.path for r in fake_vllm.received]
    sent = calls[-1].json
    assert sent["stream"] is True and sent["messages"][0]["role"] == "system"
    assert any("Say hello" in str(m["content"]) for m in sent["messages"] if m["role"] == "user")
    assert all(t["type"] == "function" for t in sent.get("tools", []))
    row = RequestLog.objects.filter(group_name=dep.group.name, endpoint="responses", status=200).first()
    assert row is not None and row.response_id.startswith("resp_gw_")


def test_codex_runs_a_tool_through_the_bridge(gateway, fake_vllm, vllm_route, make_key, tmp_path):
    """The model asks for a shell command (a tool call split across chunks); Codex runs it and sends the output
    back in the next turn (store false, whole conversation), which reaches the upstream as a tool message."""
    dep = vllm_route(fake_vllm, policy_rules=CODEX_POLICY)
    fake_vllm.chat_script = [
        {"text": "", "piece": 5, "tool_calls": [{"name": "exec_command", "arguments": "{\"cmd\": \"echo bridged-42\"}"}]},
        {"text": "The command printed bridged-42."}]
    result = run_codex(gateway, dep.group.name, make_key().secret, tmp_path, "Run echo bridged-42")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "The command printed bridged-42." in result.stdout
    first, second = chat_calls(fake_vllm)[:2]
    assert any(t["function"]["name"] == "exec_command" for t in first.json["tools"])
    assistant, tool = second.json["messages"][-2:]
    call_id = assistant["tool_calls"][0]["id"]
    assert assistant["tool_calls"][0]["function"] == {"name": "exec_command",
                                                      "arguments": "{\"cmd\": \"echo bridged-42\"}"}
    assert tool["role"] == "tool" and tool["tool_call_id"] == call_id and "bridged-42" in tool["content"]
