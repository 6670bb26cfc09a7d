"""routing/forwarding/upstream_request.py and response.py: what the upstream receives, and how a broken stream ends."""

import orjson

from routing.api.parsing import forwarded_headers
from routing.config.snapshots import DeploymentSnap
from routing.forwarding.response import stream_error_frames
from routing.forwarding.upstream_request import prepare_body, upstream_headers
from routing.policy import compile_rule
from routing.upstream.relay import UpstreamFailure
from routing.upstream.sse import SseTap

AZURE_DROP = compile_rule("drop", "stream_options", endpoint="responses", source="azure-responses")


def dep(**kw) -> DeploymentSnap:
    base = dict(id=3, name="east", group_name="g", provider="azure", api_base="https://r.openai.azure.com",
                upstream_model="gpt-5.5-prod", api_version="", api_key="up-key", rules=(AZURE_DROP,))
    return DeploymentSnap(**{**base, **kw})


def test_original_bytes_forwarded_when_nothing_changes():
    raw = b'{"model": "g",  "input": "hi"}'
    content, changes = prepare_body(dep(upstream_model="", rules=()), raw, orjson.loads(raw),
                                    endpoint="responses", stream=False)
    assert content is raw and changes == []


def test_model_rewrite_and_policy_drop_are_the_only_changes():
    body = {"model": "g", "input": "hi", "stream": True, "stream_options": {"include_usage": True},
            "client_metadata": {"x": 1}, "prompt_cache_key": "abc", "include": ["reasoning.encrypted_content"]}
    content, changes = prepare_body(dep(), orjson.dumps(body), body, endpoint="responses", stream=True)
    sent = orjson.loads(content)
    expected = {k: v for k, v in body.items() if k != "stream_options"} | {"model": "gpt-5.5-prod"}
    assert sent == expected
    assert changes == [
        {"action": "drop", "path": "stream_options", "policy": "azure-responses"},
        {"action": "rewrite", "path": "model", "from": "g", "to": "gpt-5.5-prod"},
    ]
    assert body["stream_options"] == {"include_usage": True}  # the client's body is not mutated


def test_chat_endpoint_keeps_stream_options():
    body = {"model": "g", "messages": [], "stream": True, "stream_options": {"include_usage": True}}
    content, changes = prepare_body(dep(), orjson.dumps(body), body, endpoint="chat", stream=True)
    assert orjson.loads(content)["stream_options"] == {"include_usage": True}
    assert [c["action"] for c in changes] == ["rewrite"]


def test_upstream_headers_carry_upstream_auth_not_the_client_key():
    forwarded = forwarded_headers({"HTTP_AUTHORIZATION": "Bearer sk-gw-client",
                                   "HTTP_OPENAI_BETA": "responses=experimental"})
    headers = upstream_headers(dep(), forwarded, stream=True, has_body=True)
    assert headers["api-key"] == "up-key" and "authorization" not in headers
    assert headers["accept"] == "text/event-stream" and headers["openai-beta"] == "responses=experimental"


def _frames(data: bytes) -> list[tuple[str, dict]]:
    out = []
    for block in data.strip().split(b"\n\n"):
        name, payload = block.split(b"\n")
        out.append((name.removeprefix(b"event: ").decode(), orjson.loads(payload.removeprefix(b"data: "))))
    return out


def test_broken_responses_stream_ends_with_error_and_failed_events():
    tap = SseTap()
    tap.feed(b'event: response.created\ndata: {"type":"response.created","sequence_number":0,'
             b'"response":{"id":"resp_7","model":"m"}}\n\n')
    frames = _frames(stream_error_frames(tap, "responses", UpstreamFailure("upstream_disconnected", "gone")))
    assert [name for name, _ in frames] == ["error", "response.failed"]
    error = frames[0][1]
    assert error["type"] == "error" and error["code"] == "upstream_disconnected" and error["sequence_number"] == 1
    assert error["error"]["code"] == "upstream_disconnected" and error["message"]
    failed = frames[1][1]["response"]
    assert failed["id"] == "resp_7" and failed["status"] == "failed"


def test_broken_chat_stream_ends_with_error_chunk():
    data = stream_error_frames(SseTap(), "chat", UpstreamFailure("idle_timeout", "quiet", timeout=True))
    assert data.startswith(b"data: ") and data.endswith(b"\n\n")
    assert orjson.loads(data[6:])["error"]["code"] == "idle_timeout"
