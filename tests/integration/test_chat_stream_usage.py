"""Usage for chat streams, opt-in (forwarding/upstream_request.py, forwarding/bridged.py UsageFilter):
`stream_options.include_usage` is added only when ops turned on "collect stream usage" on a deployment whose
upstream accepts it, and the client did not ask; it is in the log row, and the usage chunk it brings is
removed from what the client sees. Off (the default): nothing is added, ever."""

import json

import pytest

from tests.integration.server import API_VERSION_PREVIEW, UPSTREAM_MODEL, bearer

MESSAGES = [{"role": "user", "content": "Count to five"}]


def chat_stream(http, key, model: str, **extra):
    body = {"model": model, "messages": MESSAGES, "stream": True, **extra}
    with http.stream("POST", "/v1/chat/completions", headers=bearer(key), json=body) as response:
        text = response.read().decode()
    assert response.status_code == 200, text
    chunks = [block.removeprefix("data: ") for block in text.split("\n\n") if block]
    assert chunks[-1] == "[DONE]"
    return response, [json.loads(c) for c in chunks[:-1]], body


def usage_chunks(chunks) -> list:
    return [c for c in chunks if c.get("choices") == [] and isinstance(c.get("usage"), dict)]


def test_default_off_adds_nothing(fake_azure, azure_route, make_key, http, wait_for_log):
    dep = azure_route(fake_azure)
    response, chunks, body = chat_stream(http, make_key(), dep.group.name)
    assert fake_azure.last().json == {**body, "model": UPSTREAM_MODEL}
    assert usage_chunks(chunks) == []
    row = wait_for_log(response.headers["x-gateway-request-id"])
    assert [c["action"] for c in row.policy_changes] == ["rewrite"]
    assert row.total_tokens is None  # nobody asked the upstream for usage


def test_opted_in_collects_usage_and_hides_its_chunk(fake_azure, azure_route, make_key, http, sdk, wait_for_log):
    dep = azure_route(fake_azure, collect_stream_usage=True)
    response, chunks, body = chat_stream(http, make_key(), dep.group.name)
    sent = fake_azure.last().json
    assert sent == {**body, "model": UPSTREAM_MODEL, "stream_options": {"include_usage": True}}
    assert usage_chunks(chunks) == []  # the chunk the gateway asked for is not the client's
    assert chunks[0]["prompt_filter_results"]  # Azure's own first chunk (choices: []) still goes through
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"]) \
        == "Hello from the fake upstream"
    row = wait_for_log(response.headers["x-gateway-request-id"])
    assert row.policy_changes[0] == {"action": "set", "path": "stream_options.include_usage", "value": True,
                                     "reason": "collect_stream_usage",
                                     "note": "the usage chunk is removed from the client's stream"}
    assert (row.output_tokens, row.total_tokens) == (5, row.input_tokens + 5)

    stream = sdk(make_key()).chat.completions.create(model=dep.group.name, messages=MESSAGES, stream=True)
    assert [c.usage for c in stream if c.usage is not None] == []  # the SDK sees no usage either


def test_a_client_asking_for_usage_gets_it_unchanged(fake_azure, azure_route, make_key, http, wait_for_log):
    dep = azure_route(fake_azure, collect_stream_usage=True)
    response, chunks, body = chat_stream(http, make_key(), dep.group.name, stream_options={"include_usage": True})
    assert fake_azure.last().json == {**body, "model": UPSTREAM_MODEL}
    [usage] = usage_chunks(chunks)
    assert usage["usage"]["completion_tokens"] == 5
    row = wait_for_log(response.headers["x-gateway-request-id"])
    assert [c["action"] for c in row.policy_changes] == ["rewrite"] and row.output_tokens == 5


def test_a_client_saying_no_is_overridden_only_upstream(fake_azure, azure_route, make_key, http, wait_for_log):
    dep = azure_route(fake_azure, collect_stream_usage=True)
    response, chunks, _ = chat_stream(http, make_key(), dep.group.name, stream_options={"include_usage": False})
    assert fake_azure.last().json["stream_options"] == {"include_usage": True}
    assert usage_chunks(chunks) == []
    row = wait_for_log(response.headers["x-gateway-request-id"])
    assert row.policy_changes[0]["from"] is False and row.output_tokens == 5


@pytest.mark.parametrize("fields", [
    {"chat_stream_usage": False},  # ops say this upstream does not take it
    {"api_version": "2024-06-01"},  # an Azure API version from before stream_options: the default says no
])
def test_not_where_the_upstream_does_not_take_it(fake_azure, azure_route, make_key, http, wait_for_log, fields):
    dep = azure_route(fake_azure, collect_stream_usage=True, **fields)
    fake_azure.chat_stream_options = {"include_obfuscation"}  # it would refuse include_usage with a 400
    response, chunks, body = chat_stream(http, make_key(), dep.group.name)
    assert "stream_options" not in fake_azure.last().json
    row = wait_for_log(response.headers["x-gateway-request-id"])
    assert [c["action"] for c in row.policy_changes] == ["rewrite"]


def test_a_policy_drop_still_wins(fake_azure, azure_route, make_key, http, wait_for_log):
    from tests.integration.bridge_support import make_policy

    dep = azure_route(fake_azure, collect_stream_usage=True, api_version=API_VERSION_PREVIEW,
                      policy=make_policy(("drop", "stream_options", "chat")))
    response, chunks, _ = chat_stream(http, make_key(), dep.group.name)
    assert "stream_options" not in fake_azure.last().json
    row = wait_for_log(response.headers["x-gateway-request-id"])
    assert [c["action"] for c in row.policy_changes] == ["set", "drop", "rewrite"]
