"""Self-tests of the fake upstream, talking to it directly with httpx and the official openai SDK (no Django)."""

from __future__ import annotations

import json
import time

import httpx
import openai
import pytest

from .upstream import FakeUpstream

KEY = "upstream-secret"
DEP = "gpt-5.5-prod"
AZURE_401 = {"error": {"code": "401", "message": (
    "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an "
    "active subscription and use a correct regional API endpoint for your resource.")}}
INCLUDE_USAGE_400 = {"error": {"message": "Unknown parameter: 'stream_options.include_usage'.",
                               "type": "invalid_request_error", "param": "stream_options.include_usage",
                               "code": "unknown_parameter"}}
TEXT_EVENTS = ["response.created", "response.in_progress", "response.output_item.added",
               "response.content_part.added"] + ["response.output_text.delta"] * 5 + [
    "response.output_text.done", "response.content_part.done", "response.output_item.done", "response.completed"]


@pytest.fixture(scope="module")
def _azure_server():
    with FakeUpstream("azure", api_version="2025-04-01-preview") as fake:
        yield fake


@pytest.fixture(scope="module")
def _openai_server():
    with FakeUpstream("openai", api_key="sk-test-openai-key", deployments=["gpt-5"]) as fake:
        yield fake


@pytest.fixture
def azure(_azure_server):
    _azure_server.reset()
    return _azure_server


@pytest.fixture
def oai(_openai_server):
    _openai_server.reset()
    return _openai_server


def v1_client(fake: FakeUpstream, key: str = KEY) -> openai.OpenAI:
    return openai.OpenAI(base_url=fake.azure_v1_base + "/", api_key=key, max_retries=0)


def oai_client(fake: FakeUpstream, key: str = "sk-test-openai-key") -> openai.OpenAI:
    return openai.OpenAI(base_url=fake.openai_base, api_key=key, max_retries=0)


def sse_frames(text: str) -> list[tuple[str | None, str]]:
    """Split an SSE body into (event, data) pairs, asserting the exact framing."""
    frames = []
    assert text.endswith("\n\n")
    for block in text[:-2].split("\n\n"):
        lines = block.split("\n")
        event = lines[0].removeprefix("event: ") if lines[0].startswith("event: ") else None
        data_lines = lines[1:] if event is not None else lines
        assert len(data_lines) == 1 and data_lines[0].startswith("data: "), block
        frames.append((event, data_lines[0].removeprefix("data: ")))
    return frames


# ------------------------------------------------------------------------------------------------ Responses


def test_non_stream_create_via_sdk(azure):
    resp = v1_client(azure).responses.create(model=DEP, input="one two three", store=True, metadata={"k": "v"})
    assert resp.id.startswith("resp_") and resp.status == "completed" and resp.model == DEP
    assert resp.output_text == "Hello from the fake upstream"
    assert (resp.usage.input_tokens, resp.usage.output_tokens, resp.usage.total_tokens) == (3, 5, 8)
    assert resp.usage.input_tokens_details.cached_tokens == 0 and resp.metadata == {"k": "v"}
    rec = azure.last()
    assert (rec.method, rec.path) == ("POST", "/openai/v1/responses")
    assert rec.headers["authorization"] == f"Bearer {KEY}" and rec.json["input"] == "one two three"


def test_preview_path_with_azure_client_and_api_version(azure):
    client = openai.AzureOpenAI(azure_endpoint=azure.url, api_key=KEY, api_version="2025-04-01-preview",
                                max_retries=0)
    assert client.responses.create(model=DEP, input="hi").output_text
    rec = azure.last()
    assert rec.path == "/openai/responses" and rec.query["api-version"] == "2025-04-01-preview"
    assert rec.headers["api-key"] == KEY
    # missing / other api-version -> 404 Resource not found; Bearer is not accepted on the preview path
    for query in ("", "?api-version=2024-01-01"):
        r = httpx.post(f"{azure.url}/openai/responses{query}", headers={"api-key": KEY}, json={"model": DEP})
        assert r.status_code == 404 and r.json() == {"error": {"code": "404", "message": "Resource not found"}}
    r = httpx.post(f"{azure.url}/openai/responses?api-version=2025-04-01-preview",
                   headers={"Authorization": f"Bearer {KEY}"}, json={"model": DEP})
    assert r.status_code == 401


def test_stream_raw_framing(azure):
    with httpx.stream("POST", azure.url + "/openai/v1/responses", headers={"api-key": KEY},
                      json={"model": DEP, "input": "hi", "stream": True}) as r:
        assert r.status_code == 200
        assert r.headers["content-type"] == "text/event-stream; charset=utf-8"
        body = r.read().decode()
    frames = sse_frames(body)
    events = [json.loads(data) for _, data in frames]
    assert [e for e, _ in frames] == [e["type"] for e in events] == TEXT_EVENTS
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    assert "[DONE]" not in body and not any("obfuscation" in e for e in events)  # azure: no obfuscation
    assert events[0]["response"]["usage"] is None and events[-1]["response"]["usage"]["output_tokens"] == 5


def test_stream_iteration_via_sdk(azure):
    azure.deltas = 3
    stream = v1_client(azure).responses.create(model=DEP, input="hi", stream=True)
    types = [event.type for event in stream]
    assert types[0] == "response.created" and types[-1] == "response.completed"
    assert types.count("response.output_text.delta") == 3


def test_stream_helper_final_response(azure):
    with v1_client(azure).responses.stream(model=DEP, input="a b") as stream:
        final = stream.get_final_response()
    assert final.output_text == "Hello from the fake upstream" and final.usage.input_tokens == 2


def test_stream_options_include_usage_rejected_on_azure(azure):
    with pytest.raises(openai.BadRequestError) as info:
        v1_client(azure).responses.create(model=DEP, input="hi", stream=True,
                                          stream_options={"include_usage": True})
    assert info.value.code == "unknown_parameter" and info.value.param == "stream_options.include_usage"
    assert info.value.response.json() == INCLUDE_USAGE_400
    assert azure.last().json["stream_options"] == {"include_usage": True}  # recorded before validation
    r = httpx.post(azure.url + "/openai/v1/responses", headers={"api-key": KEY},
                   json={"model": DEP, "stream": True, "stream_options": {"include_obfuscation": False}})
    assert r.status_code == 400 and r.json()["error"]["param"] == "stream_options.include_obfuscation"


def test_wrong_key_and_unknown_deployment(azure):
    with pytest.raises(openai.AuthenticationError) as info:
        v1_client(azure, key="nope").responses.create(model=DEP, input="hi")
    assert info.value.response.json() == AZURE_401
    with pytest.raises(openai.NotFoundError) as info:
        v1_client(azure).responses.create(model="missing-dep", input="hi")
    assert info.value.response.json()["error"]["code"] == "DeploymentNotFound"


def test_param_validation(azure):
    def post(body):
        return httpx.post(azure.url + "/openai/v1/responses", headers={"api-key": KEY}, json=body)

    r = post({"model": DEP, "input": "x", "frobnicate": 1})
    assert r.status_code == 400 and r.json() == {"error": {
        "message": "Unknown parameter: 'frobnicate'.", "type": "invalid_request_error", "param": "frobnicate",
        "code": "unknown_parameter"}}
    r = post({"model": DEP, "messages": []})
    assert r.status_code == 400 and r.json()["error"]["code"] == "unsupported_parameter"
    assert "has moved to 'input'" in r.json()["error"]["message"]
    azure.reject_params = {"reasoning.summary"}
    r = post({"model": DEP, "input": "x", "reasoning": {"summary": "auto"}})
    assert r.status_code == 400 and r.json()["error"]["param"] == "reasoning.summary"
    assert post({"model": DEP, "input": "x", "reasoning": {"effort": "low"}}).status_code == 200
    r = httpx.post(azure.url + "/openai/v1/responses", headers={"api-key": KEY}, content=b"not json")
    assert r.status_code == 400 and azure.last().body == b"not json" and azure.last().json is None
    r = post({"model": DEP, "input": "x", "previous_response_id": "resp_unknown"})
    assert r.status_code == 404 and r.json()["error"]["code"] == "previous_response_not_found"


def test_drop_after_events_makes_sdk_raise(azure):
    azure.drop_after_events = 4
    seen = []
    with pytest.raises((httpx.HTTPError, openai.APIError)):
        for event in v1_client(azure).responses.create(model=DEP, input="hi", stream=True):
            seen.append(event.type)
    assert seen == TEXT_EVENTS[:4]
    with pytest.raises((httpx.HTTPError, openai.APIError, RuntimeError)):
        with v1_client(azure).responses.stream(model=DEP, input="hi") as stream:
            stream.get_final_response()


def test_retrieve_delete_cancel_input_items_round_trip(azure):
    client = v1_client(azure)
    created = client.responses.create(model=DEP, input=[{"role": "user", "content": "first"},
                                                         {"role": "user", "content": "second"}])
    assert client.responses.retrieve(created.id).output_text == created.output_text
    items = client.responses.input_items.list(created.id, order="asc")
    assert [i.content[0].text for i in items.data] == ["first", "second"] and all(i.id for i in items.data)
    assert client.responses.cancel(created.id).status == "cancelled"
    r = httpx.delete(f"{azure.url}/openai/v1/responses/{created.id}", headers={"api-key": KEY})
    assert r.json() == {"id": created.id, "object": "response.deleted", "deleted": True}
    with pytest.raises(openai.NotFoundError) as info:
        client.responses.retrieve(created.id)
    assert info.value.response.json()["error"]["message"] == f"Response with id '{created.id}' not found."
    # store:false responses are not retrievable; previous_response_id chaining works for stored ones
    unstored = client.responses.create(model=DEP, input="x", store=False)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(unstored.id)
    first = client.responses.create(model=DEP, input="x")
    assert client.responses.create(model=DEP, input="y", previous_response_id=first.id).previous_response_id == first.id


def test_compact(azure):
    r = httpx.post(f"{azure.url}/openai/responses/compact?api-version=2025-04-01-preview",
                   headers={"api-key": KEY}, json={"model": DEP, "input": "hello there"})
    body = r.json()
    assert r.status_code == 200 and body["object"] == "response.compaction" and body["id"].startswith("cmp_")
    assert body["output"][-1]["type"] == "compaction" and body["usage"]["input_tokens"] == 2


# ------------------------------------------------------------------------------------------------ scenarios


def test_fail_status_429_then_recovers(azure):
    azure.fail_status, azure.fail_times, azure.retry_after = 429, 1, "7"
    url, headers, body = azure.url + "/openai/v1/responses", {"api-key": KEY}, {"model": DEP, "input": "x"}
    r = httpx.post(url, headers=headers, json=body)
    assert r.status_code == 429 and r.headers["retry-after"] == "7"
    assert r.json()["error"]["code"] == "429" and "Try again in 7 seconds." in r.json()["error"]["message"]
    assert httpx.post(url, headers=headers, json=body).status_code == 200
    assert len(azure.received) == 2


def test_hang_and_reset(azure):
    azure.hang_seconds = 2
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(azure.url + "/openai/v1/responses", json={}, timeout=0.3)
    azure.reset()
    azure.reset_before_response = True
    with pytest.raises(httpx.TransportError):
        httpx.post(azure.url + "/openai/v1/responses", headers={"api-key": KEY}, json={"model": DEP})
    assert azure.last().json == {"model": DEP}


def test_event_delay(azure):
    azure.event_delay, azure.deltas = 0.05, 2
    start = time.monotonic()
    list(v1_client(azure).responses.create(model=DEP, input="x", stream=True))
    assert time.monotonic() - start >= 0.05 * 9


# ------------------------------------------------------------------------------------------------ Chat


def test_azure_chat_stream_with_usage_chunk(azure):
    with httpx.stream("POST", f"{azure.url}/openai/deployments/{DEP}/chat/completions",
                      params={"api-version": "2025-04-01-preview"}, headers={"api-key": KEY},
                      json={"messages": [{"role": "user", "content": "hi you"}], "stream": True,
                            "stream_options": {"include_usage": True}}) as r:
        frames = sse_frames(r.read().decode())
    assert all(event is None for event, _ in frames) and frames[-1][1] == "[DONE]"
    chunks = [json.loads(data) for _, data in frames[:-1]]
    assert chunks[0]["choices"] == [] and "prompt_filter_results" in chunks[0]
    assert chunks[1]["choices"][0]["delta"]["role"] == "assistant"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["prompt_tokens"] == 2
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"


def test_chat_via_sdk_v1_and_validation(azure):
    client = v1_client(azure)
    stream = client.chat.completions.create(model=DEP, messages=[{"role": "user", "content": "hi"}], stream=True)
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Hello from the fake upstream"
    assert not any(c.usage for c in chunks)  # no include_usage -> no usage chunk
    done = client.chat.completions.create(model=DEP, messages=[{"role": "user", "content": "hi"}])
    assert done.usage.completion_tokens == 5 and done.choices[0].message.content
    r = httpx.post(azure.url + "/openai/v1/chat/completions", headers={"api-key": KEY},
                   json={"model": DEP, "input": "hi"})
    assert r.status_code == 400 and r.json()["error"]["param"] == "input"
    r = httpx.post(azure.url + "/openai/v1/chat/completions", headers={"api-key": KEY}, json={"model": DEP})
    assert r.status_code == 400 and r.json()["error"]["param"] == "messages"


# ------------------------------------------------------------------------------------------------ OpenAI mode


def test_openai_mode_stream_obfuscation_and_stream_options(oai):
    client = oai_client(oai)
    deltas = [e for e in client.responses.create(model="gpt-5", input="hi", stream=True)
              if e.type == "response.output_text.delta"]
    assert deltas and all(getattr(d, "obfuscation", None) for d in deltas)
    events = list(client.responses.create(model="gpt-5", input="hi", stream=True,
                                          stream_options={"include_obfuscation": False}))
    assert events[-1].type == "response.completed"
    assert oai.last().path == "/v1/responses" and oai.last().json["stream_options"] == {"include_obfuscation": False}
    with pytest.raises(openai.BadRequestError) as info:
        client.responses.create(model="gpt-5", input="hi", stream=True, stream_options={"include_usage": True})
    assert info.value.response.json() == INCLUDE_USAGE_400


def test_openai_mode_errors_models_and_chat(oai):
    with pytest.raises(openai.AuthenticationError) as info:
        oai_client(oai, key="sk-wrong-key-123456").responses.create(model="gpt-5", input="hi")
    err = info.value.response.json()["error"]
    assert err["code"] == "invalid_api_key" and err["message"].startswith("Incorrect API key provided: ")
    with pytest.raises(openai.NotFoundError) as info:
        oai_client(oai).responses.create(model="gpt-unknown", input="hi")
    assert info.value.code == "model_not_found"
    assert [m.id for m in oai_client(oai).models.list()] == ["gpt-5"]
    chunks = list(oai_client(oai).chat.completions.create(
        model="gpt-5", messages=[{"role": "user", "content": "hi"}], stream=True,
        stream_options={"include_usage": True}))
    assert chunks[-1].choices == [] and chunks[-1].usage.total_tokens == 6
    oai.fail_status = 500
    r = httpx.post(oai.openai_base + "/responses", json={})
    assert r.status_code == 500 and r.json()["error"]["type"] == "server_error"
    oai.fail_status = 429
    r = httpx.post(oai.openai_base + "/responses", json={})
    assert r.json()["error"]["code"] == "rate_limit_exceeded" and r.headers["retry-after"] == "1"
