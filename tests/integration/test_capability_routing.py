"""Routing by capability (forwarding/candidates.py): only deployments that can serve an endpoint, directly or
through the Chat bridge, are tried; a call the bridge cannot express on one deployment goes to another."""

import pytest
from django.db import transaction

from routing.models import Deployment, ModelGroup
from tests.integration.bridge_support import (  # noqa: F401  (fixtures)
    VLLM_KEY,
    VLLM_MODEL,
    _fake_vllm_server,
    chat_calls,
    fake_vllm,
    vllm_route,
)
from tests.integration.conftest import _deployment, wait_until_served
from tests.integration.server import UPSTREAM_MODEL, assert_openai_error, bearer, unique


@pytest.fixture
def mixed(gateway, fake_azure, fake_vllm):
    """make(first) -> group: an Azure deployment (Responses and Chat) and a chat-only vLLM, `first` by priority."""

    def make(first: str = "azure") -> ModelGroup:
        with transaction.atomic():
            group = ModelGroup.objects.create(name=unique("mixed"), strategy="priority", max_attempts=2)
            _deployment(group, fake_azure, name="azure", priority=0 if first == "azure" else 1)
            vllm = Deployment(group=group, name="vllm", provider="openai_compatible", api_base=fake_vllm.openai_base,
                              upstream_model=VLLM_MODEL, priority=0 if first == "vllm" else 1)
            vllm.api_key = VLLM_KEY
            vllm.save()
        wait_until_served(gateway, group.name)
        return group

    return make


def served_by(response) -> str:
    return response.headers["x-gateway-deployment"].split(":", 1)[1]


def test_native_first_and_what_the_bridge_refuses_goes_elsewhere(mixed, fake_azure, fake_vllm, make_key, http,
                                                                 wait_for_log):
    key = make_key()
    group = mixed("azure")
    native = http.post("/v1/responses", headers=bearer(key), json={"model": group.name, "input": "x"})
    assert served_by(native) == "azure" and native.json()["id"].startswith("resp_") \
        and not native.json()["id"].startswith("resp_gw_")
    assert [r.path for r in fake_azure.received] == ["/openai/v1/responses"]

    # vLLM first: a web_search tool cannot be bridged there, so Azure serves it natively
    group = mixed("vllm")
    fake_azure.clear()
    plain = http.post("/v1/responses", headers=bearer(key), json={"model": group.name, "input": "x"})
    assert served_by(plain) == "vllm" and plain.json()["id"].startswith("resp_gw_")
    tooled = http.post("/v1/responses", headers=bearer(key),
                       json={"model": group.name, "input": "x", "tools": [{"type": "web_search"}]})
    assert tooled.status_code == 200, tooled.text
    assert served_by(tooled) == "azure"
    assert fake_azure.last().json["tools"] == [{"type": "web_search"}]
    row = wait_for_log(tooled.headers["x-gateway-request-id"])
    assert [a["deployment"] for a in row.attempts] == ["azure"]  # the refusal cost no attempt


def test_a_bridged_conversation_continues_through_the_bridge_anywhere(mixed, fake_azure, fake_vllm, vllm_route,
                                                                      make_key, http):
    """A bridged response only the gateway holds: its continuation is bridged even on Azure (first by priority),
    through Azure's Chat Completions, with the stored conversation replayed."""
    group = mixed("azure")
    chat_only = vllm_route(fake_vllm)
    key = make_key()
    first = http.post("/v1/responses", headers=bearer(key), json={"model": chat_only.group.name, "input": "Hi"}).json()
    fake_azure.clear()
    second = http.post("/v1/responses", headers=bearer(key), json={
        "model": group.name, "input": "Again", "previous_response_id": first["id"]})
    assert second.status_code == 200, second.text
    assert served_by(second) == "azure" and second.json()["previous_response_id"] == first["id"]
    [call] = fake_azure.received
    assert call.path == "/openai/v1/chat/completions"
    assert call.json == {"model": UPSTREAM_MODEL, "messages": [
        {"role": "user", "content": "Hi"}, {"role": "assistant", "content": first["output"][0]["content"][0]["text"]},
        {"role": "user", "content": "Again"}]}


def test_endpoints_no_deployment_speaks_are_refused(fake_vllm, vllm_route, azure_route, fake_azure, make_key, http):
    chat_only = vllm_route(fake_vllm)
    responses_only = azure_route(fake_azure, speaks_chat=False)
    key = make_key()
    for path, model in (("/v1/responses/compact", chat_only.group.name),
                        ("/v1/responses/input_tokens", chat_only.group.name),
                        ("/v1/chat/completions", responses_only.group.name)):
        body = {"model": model, "input": "x", "messages": [{"role": "user", "content": "x"}]}
        if path == "/v1/chat/completions":
            body.pop("input")
        error = assert_openai_error(http.post(path, headers=bearer(key), json=body), 400,
                                    code="unsupported_endpoint", param="model")
        assert model in error["message"] and path in error["message"]
    assert fake_vllm.received == [] and fake_azure.received == []
    assert http.post("/v1/chat/completions", headers=bearer(key), json={
        "model": chat_only.group.name, "messages": [{"role": "user", "content": "x"}]}).status_code == 200
    assert [r.path for r in chat_calls(fake_vllm)] == ["/v1/chat/completions"]


def test_codex_shaped_turn_with_a_policy_for_what_chat_lacks(fake_vllm, vllm_route, make_key, http, wait_for_log):
    """What Codex sends (store false, the whole conversation, reasoning, include, client_metadata) on a chat-only
    upstream, with a policy that drops what has no Chat equivalent; streamed and parsed as Codex would."""
    dep = vllm_route(fake_vllm, policy_rules=[("drop", "include", "chat"), ("drop", "reasoning", "chat"),
                                              ("drop", "client_metadata", "chat")])
    body = {
        "model": dep.group.name, "instructions": "You are Codex.", "stream": True, "store": False,
        "tool_choice": "auto", "parallel_tool_calls": False, "prompt_cache_key": "conv-1",
        "reasoning": {"effort": "medium", "summary": "auto"}, "include": ["reasoning.encrypted_content"],
        "client_metadata": {"originator": "codex_cli_rs"},
        "tools": [{"type": "function", "name": "shell", "description": "Run a command", "strict": False,
                   "parameters": {"type": "object", "properties": {"command": {"type": "array"}}}}],
        "input": [
            {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "<env/>"}]},
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "list files"}]},
            {"type": "reasoning", "summary": [], "content": [{"type": "reasoning_text", "text": "ls"}]},
            {"type": "function_call", "name": "shell", "arguments": "{\"command\":[\"ls\"]}", "call_id": "call_1"},
            {"type": "function_call_output", "call_id": "call_1", "output": "a.txt"}],
    }
    fake_vllm.chat_script = {"text": "There is a.txt."}
    with http.stream("POST", "/v1/responses", headers={**bearer(make_key()), "accept": "text/event-stream"},
                     json=body) as response:
        text = response.read().decode()
    assert response.status_code == 200, text
    assert "response.completed" in text and "There is a.txt." in text
    sent = chat_calls(fake_vllm)[-1].json
    assert sent["messages"] == [
        {"role": "system", "content": "You are Codex."}, {"role": "system", "content": "<env/>"},
        {"role": "user", "content": "list files"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function",
             "function": {"name": "shell", "arguments": "{\"command\":[\"ls\"]}"}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "a.txt"}]
    assert set(sent) == {"model", "stream", "messages", "tools", "tool_choice", "parallel_tool_calls",
                         "prompt_cache_key"}
    row = wait_for_log(response.headers["x-gateway-request-id"])
    paths = [(c["action"], c["path"]) for c in row.policy_changes]
    assert ("translate", "input[type=reasoning]") in paths and ("translate", "input[role=developer]") in paths
    assert {("drop", "include"), ("drop", "reasoning"), ("drop", "client_metadata")} <= set(paths)
