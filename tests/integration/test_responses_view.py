"""POST /v1/responses through the real server with the official OpenAI SDK, to an Azure
deployment on the fake Azure upstream: what the client gets, and exactly what the
upstream receives (the client's body + the model rewrite + the policy's changes only)."""

import json

import httpx
import openai
import pytest

from tests.fakes.upstream import FakeUpstream
from tests.integration.server import CANARY_MODEL, UPSTREAM_KEY, UPSTREAM_MODEL, bearer, unique

ANSWER = "Hello from the fake upstream"  # the fake's text for its default 5 deltas
TEXT_EVENTS = ["response.created", "response.in_progress", "response.output_item.added",
               "response.content_part.added"] + ["response.output_text.delta"] * 5 + [
    "response.output_text.done", "response.content_part.done", "response.output_item.done", "response.completed"]

# What Codex sends besides the basics: fields a proxy must not touch.
CODEX_FIELDS = {
    "instructions": "You are Codex.",
    "client_metadata": {"originator": "codex_cli_rs", "session": "s-123"},
    "prompt_cache_key": "019a-cache-key",
    "include": ["reasoning.encrypted_content"],
    "store": False,
    "parallel_tool_calls": False,
    "reasoning": {"effort": "medium", "summary": "auto"},
    "tool_choice": "auto",
    "tools": [
        {"type": "custom", "name": "apply_patch", "description": "Apply a patch",
         "format": {"type": "grammar", "syntax": "lark", "definition": "start: /.+/"}},
        {"type": "web_search"},
        {"type": "namespace", "name": "mcp__docs", "tools": [{"type": "function", "name": "search",
                                                             "parameters": {"type": "object", "properties": {}}}]},
    ],
    "input": [
        {"type": "message", "id": "msg_client_1", "role": "user",
         "content": [{"type": "input_text", "text": "fix the bug ünïcödé ✓"}]},
        {"type": "reasoning", "id": "rs_client_2", "summary": [], "encrypted_content": "gAAAA-opaque"},
        {"type": "function_call_output", "call_id": "call_3", "output": "ok"},
    ],
    "x_codex_turn": {"turn": 7},  # unknown to OpenAI too: forwarded untouched all the same
}


class BodyRecorder:
    """httpx event hook: the exact bytes the SDK sent (to compare with what the upstream got)."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []

    def __call__(self, request: httpx.Request) -> None:
        self.bodies.append(request.read())

    def last_json(self) -> dict:
        return json.loads(self.bodies[-1])


@pytest.fixture
def recorded_sdk(sdk):
    def make(key):
        recorder = BodyRecorder()
        return sdk(key, http_client=httpx.Client(event_hooks={"request": [recorder]})), recorder

    return make


def upstream_view(client_body: dict, *, drop: tuple[str, ...] = ()) -> dict:
    """What the upstream must receive for `client_body`: the same, model rewritten, `drop` removed."""
    return {k: (UPSTREAM_MODEL if k == "model" else v) for k, v in client_body.items() if k not in drop}


def test_create_non_stream(fake_azure, azure_route, make_key, recorded_sdk):
    dep = azure_route(fake_azure)
    client, sent = recorded_sdk(make_key())

    response = client.responses.create(model=dep.group.name, input="Hello there friend")

    assert response.status == "completed"
    assert response.output_text == ANSWER
    assert response.usage.input_tokens == 3 and response.usage.output_tokens == 5
    got = fake_azure.last()
    assert (got.method, got.path, got.query) == ("POST", "/openai/v1/responses", {})
    assert sent.last_json() == {"model": dep.group.name, "input": "Hello there friend"}
    assert got.json == {"model": UPSTREAM_MODEL, "input": "Hello there friend"}


def test_create_stream_iterated_to_completed(fake_azure, azure_route, make_key, recorded_sdk):
    dep = azure_route(fake_azure)
    client, sent = recorded_sdk(make_key())

    events = list(client.responses.create(model=dep.group.name, input="Hello", stream=True))

    assert [e.type for e in events] == TEXT_EVENTS
    assert [e.sequence_number for e in events] == list(range(len(TEXT_EVENTS)))
    assert "".join(e.delta for e in events if e.type == "response.output_text.delta") == ANSWER
    assert events[-1].response.status == "completed"
    assert events[-1].response.usage.total_tokens == 6
    assert fake_azure.last().json == upstream_view(sent.last_json()) == {
        "model": UPSTREAM_MODEL, "input": "Hello", "stream": True}


def test_stream_helper_final_response(fake_azure, azure_route, make_key, sdk):
    dep = azure_route(fake_azure)
    client = sdk(make_key())

    with client.responses.stream(model=dep.group.name, input="Say hello") as stream:
        deltas = [e.delta for e in stream if e.type == "response.output_text.delta"]
        final = stream.get_final_response()

    assert "".join(deltas) == ANSWER
    assert final.status == "completed" and final.output_text == ANSWER
    assert final.usage.input_tokens == 2 and final.usage.output_tokens == 5
    got = fake_azure.last().json
    assert got["model"] == UPSTREAM_MODEL and got["stream"] is True and got["input"] == "Say hello"
    assert "stream_options" not in got


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "non-stream"])
def test_codex_body_arrives_untouched_except_model_and_stream_options(stream, fake_azure, azure_route, make_key,
                                                                      recorded_sdk):
    fake_azure.responses_params |= {"x_codex_turn"}  # the fake is strict about unknown top-level keys
    dep = azure_route(fake_azure)
    client, sent = recorded_sdk(make_key())
    extra = {**CODEX_FIELDS, "stream_options": {"include_usage": True}}

    if stream:
        events = list(client.responses.create(model=dep.group.name, stream=True, input=[], extra_body=extra))
        assert events[-1].type == "response.completed"
    else:
        # stream_options without stream: the preset drops it for any Responses call (an upstream
        # would answer 400 either way), so the request succeeds.
        assert client.responses.create(model=dep.group.name, input=[], extra_body=extra).status == "completed"

    client_body = sent.last_json()
    assert client_body["stream_options"] == {"include_usage": True} and client_body["input"] == CODEX_FIELDS["input"]
    got = fake_azure.last().json
    assert "stream_options" not in got
    assert got == upstream_view(client_body, drop=("stream_options",))
    assert list(got) == [k for k in client_body if k != "stream_options"]  # key order kept too


def test_same_request_sent_directly_to_azure_is_rejected(fake_azure):
    """Control: without the gateway's policy, the upstream refuses stream_options (the original bug)."""
    direct = openai.OpenAI(base_url=fake_azure.azure_v1_base, api_key=UPSTREAM_KEY, max_retries=0)
    with pytest.raises(openai.BadRequestError) as caught:
        list(direct.responses.create(model=UPSTREAM_MODEL, input="Hello", stream=True,
                                     extra_body={"stream_options": {"include_usage": True}}))
    assert caught.value.status_code == 400
    assert caught.value.code == "unknown_parameter"
    assert caught.value.param == "stream_options.include_usage"


def test_upstream_gets_deployment_key_never_the_gateway_key(fake_azure, azure_route, make_key, http):
    dep = azure_route(fake_azure)
    key = make_key()

    for client_auth in (bearer(key), {"api-key": key.secret}):  # OpenAI-style and Azure-style clients
        fake_azure.clear()
        response = http.post("/v1/responses", json={"model": dep.group.name, "input": "hi"},
                             headers={**client_auth, "OpenAI-Beta": "responses=v1", "x-client-request-id": "c-1"})
        assert response.status_code == 200, response.text
        headers = fake_azure.last().headers
        assert headers["api-key"] == UPSTREAM_KEY
        assert "authorization" not in headers
        assert not any(key.secret in value for value in headers.values())
        assert headers["openai-beta"] == "responses=v1" and headers["x-client-request-id"] == "c-1"


@pytest.mark.parametrize(("api_version", "path", "query"), [
    ("2025-04-01-preview", "/openai/responses", {"api-version": "2025-04-01-preview"}),
    ("", "/openai/v1/responses", {}),
], ids=["api-version", "v1"])
def test_azure_url_form(api_version, path, query, make_key, azure_route, http):
    # A fake that only accepts this api-version on the preview form.
    with FakeUpstream("azure", api_version=api_version or None) as fake:
        dep = azure_route(fake, api_version=api_version)
        response = http.post("/v1/responses?api-version=2020-01-01", json={"model": dep.group.name, "input": "hi"},
                             headers=bearer(make_key()))
        assert response.status_code == 200, response.text
        got = fake.last()
        # The client's api-version is not the gateway's business: the deployment's wins.
        assert (got.path, got.query) == (path, query)


def test_unchanged_body_is_forwarded_byte_for_byte(fake_azure, azure_route, make_key, http):
    model = unique("gpt-5.5-prod")
    fake_azure.deployments.add(model)  # blank upstream_model keeps the client's model
    azure_route(fake_azure, group=model, upstream_model="")
    raw = ('{ "input" : "h\\u00e9llo \u2713",\n  "model":"%s", "metadata": {"b": 1, "a": [1.50, 2e3]} }' % model
           ).encode()

    response = http.post("/v1/responses", content=raw,
                         headers={**bearer(make_key()), "content-type": "application/json"})

    assert response.status_code == 200, response.text
    assert fake_azure.last().body == raw


def test_gateway_response_headers(fake_azure, azure_route, make_key, http):
    dep = azure_route(fake_azure, upstream_model=CANARY_MODEL)
    response = http.post("/v1/responses", json={"model": dep.group.name, "input": "hi"}, headers=bearer(make_key()))
    assert response.status_code == 200, response.text
    assert response.headers["x-gateway-deployment"] == f"{dep.id}:{dep.name}"
    assert response.headers["x-gateway-request-id"].startswith("req_")
    assert float(response.headers["x-gateway-overhead-ms"]) >= 0
    assert fake_azure.last().json["model"] == CANARY_MODEL
    assert response.json()["model"] == CANARY_MODEL  # the upstream's answer is relayed as is
