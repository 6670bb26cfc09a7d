"""The built-in mock upstream: answers locally, like OpenAI would, with no network.

It serves `make run`'s demo route and is the floor for benchmarks (bench/upstream.py
serves the same generator over HTTP). It is an httpx transport mounted on its own origin
(`http://mock.invalid`, routing/upstream/client.py), so a mock deployment goes through the
same client, relay and bookkeeping as a real one. Text is deterministic, the SSE sequence is
the real Responses one (created → in_progress → output_item.added → content_part.added →
deltas → done events → completed) and usage counts real words.
"""

import time
import uuid
from collections import OrderedDict

import httpx
import orjson

from routing.upstream.sse import frame

ORIGIN = "http://mock.invalid"

_STORE: "OrderedDict[str, dict]" = OrderedDict()
_STORE_LIMIT = 10_000


def url(dep, path: str, query: str = "") -> str:
    return f"{ORIGIN}/v1/{path}" + (f"?{query}" if query else "")


def auth_headers(dep) -> dict[str, str]:
    return {}


def _words(value) -> list[str]:
    if isinstance(value, str):
        return value.split()
    if isinstance(value, list):
        return [w for item in value for w in _words(item)]
    if isinstance(value, dict):
        return [w for key in ("content", "text", "input", "output") for w in _words(value.get(key))]
    return []


def reply_words(body: dict, deltas: int | None = None) -> list[str]:
    prompt = _words(body.get("input", body.get("messages")))
    words = ["This", "is", "a", "mock", "reply", "to:"] + (prompt[:8] or ["(empty)"])
    if deltas:
        words = (words * (deltas // len(words) + 1))[:deltas]
    return [w if i == 0 else " " + w for i, w in enumerate(words)]


def _usage(body: dict, output: int) -> dict:
    inp = max(1, len(_words(body.get("input", body.get("messages")))))
    return {
        "input_tokens": inp, "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": output, "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": inp + output,
    }


def response_object(body: dict, *, status: str = "completed", words: list[str] | None = None) -> dict:
    words = reply_words(body) if words is None else words
    done = status == "completed"
    message = {
        "id": "msg_" + uuid.uuid4().hex, "type": "message", "status": "completed" if done else "in_progress",
        "role": "assistant", "content": [{"type": "output_text", "annotations": [], "text": "".join(words)}],
    }
    return {
        "id": "resp_" + uuid.uuid4().hex, "object": "response", "created_at": int(time.time()),
        "status": status, "error": None, "incomplete_details": None, "instructions": body.get("instructions"),
        "model": body.get("model"), "output": [message] if done else [], "parallel_tool_calls": True,
        "previous_response_id": body.get("previous_response_id"), "store": body.get("store", True),
        "tool_choice": "auto", "tools": body.get("tools", []), "metadata": body.get("metadata") or {},
        "usage": _usage(body, len(words)) if done else None,
    }


def response_events(body: dict, deltas: int | None = None) -> list[tuple[str, dict]]:
    words = reply_words(body, deltas)
    final = response_object(body, words=words)
    started = dict(final, status="in_progress", output=[], usage=None)
    msg = final["output"][0]
    item = {"id": msg["id"], "type": "message", "status": "in_progress", "content": [], "role": "assistant"}
    part = {"type": "output_text", "annotations": [], "text": ""}
    loc = {"item_id": msg["id"], "output_index": 0, "content_index": 0}
    text = "".join(words)
    events = [
        ("response.created", {"response": started}),
        ("response.in_progress", {"response": started}),
        ("response.output_item.added", {"output_index": 0, "item": item}),
        ("response.content_part.added", {**loc, "part": part}),
        *[("response.output_text.delta", {**loc, "delta": w}) for w in words],
        ("response.output_text.done", {**loc, "text": text}),
        ("response.content_part.done", {**loc, "part": dict(part, text=text)}),
        ("response.output_item.done", {"output_index": 0, "item": msg}),
        ("response.completed", {"response": final}),
    ]
    return [(name, {"type": name, "sequence_number": i, **payload}) for i, (name, payload) in enumerate(events)]


def chat_completion(body: dict) -> dict:
    words = reply_words(body)
    usage = _usage(body, len(words))
    return {
        "id": "chatcmpl-" + uuid.uuid4().hex, "object": "chat.completion", "created": int(time.time()),
        "model": body.get("model"),
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "".join(words)}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": usage["input_tokens"], "completion_tokens": len(words),
                  "total_tokens": usage["total_tokens"]},
    }


def chat_chunks(body: dict, deltas: int | None = None) -> list[dict]:
    words = reply_words(body, deltas)
    base = {"id": "chatcmpl-" + uuid.uuid4().hex, "object": "chat.completion.chunk",
            "created": int(time.time()), "model": body.get("model")}
    chunks = [dict(base, choices=[{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}])]
    chunks += [dict(base, choices=[{"index": 0, "delta": {"content": w}, "finish_reason": None}]) for w in words]
    chunks.append(dict(base, choices=[{"index": 0, "delta": {}, "finish_reason": "stop"}]))
    if (body.get("stream_options") or {}).get("include_usage"):
        usage = _usage(body, len(words))
        chunks.append(dict(base, choices=[], usage={"prompt_tokens": usage["input_tokens"],
                                                    "completion_tokens": len(words), "total_tokens": usage["total_tokens"]}))
    return chunks


def encode_events(events: list[tuple[str, dict]]) -> list[bytes]:
    return [frame(name, payload) for name, payload in events]


def encode_chunks(chunks: list[dict]) -> list[bytes]:
    return [b"data: " + orjson.dumps(c) + b"\n\n" for c in chunks] + [b"data: [DONE]\n\n"]


def _remember(resp: dict) -> None:
    _STORE[resp["id"]] = resp
    while len(_STORE) > _STORE_LIMIT:
        _STORE.popitem(last=False)


def _json(status: int, payload: dict) -> httpx.Response:
    return httpx.Response(status, headers={"content-type": "application/json"}, content=orjson.dumps(payload))


def _not_found(rid: str) -> httpx.Response:
    return _json(404, {"error": {"message": f"Response with id '{rid}' not found.",
                                 "type": "invalid_request_error", "param": None, "code": None}})


def answer(method: str, path: str, content: bytes | None) -> httpx.Response:
    """Answer one request in process, as the OpenAI API would."""
    path = path.removeprefix("/v1/")
    if method == "POST" and path in ("responses", "chat/completions", "responses/compact"):
        try:
            body = orjson.loads(content or b"{}")
        except orjson.JSONDecodeError:
            return _json(400, {"error": {"message": "We could not parse the JSON body of your request.",
                                         "type": "invalid_request_error", "param": None, "code": None}})
        if path == "responses/compact":
            return _json(200, {"id": "cmp_" + uuid.uuid4().hex, "object": "response.compaction",
                               "created_at": int(time.time()), "output": [], "usage": _usage(body, 0)})
        stream = body.get("stream") is True
        if path == "responses" and stream:
            events = response_events(body)
            _remember(events[-1][1]["response"])
            return _stream(encode_events(events))
        if path == "responses":
            resp = response_object(body)
            _remember(resp)
            return _json(200, resp)
        return _stream(encode_chunks(chat_chunks(body))) if stream else _json(200, chat_completion(body))
    parts = path.split("/")
    if len(parts) >= 2 and parts[0] == "responses":
        resp = _STORE.get(parts[1])
        if resp is None:
            return _not_found(parts[1])
        if method == "DELETE":
            del _STORE[parts[1]]
            return _json(200, {"id": parts[1], "object": "response.deleted", "deleted": True})
        if parts[2:] == ["cancel"]:
            return _json(200, dict(resp, status="cancelled"))
        if parts[2:] == ["input_items"]:
            return _json(200, {"object": "list", "data": [], "first_id": None, "last_id": None, "has_more": False})
        return _json(200, resp)
    return _json(404, {"error": {"message": f"Unknown path /v1/{path}",
                                 "type": "invalid_request_error", "param": None, "code": None}})


async def _frames(frames: list[bytes]):
    for chunk in frames:
        yield chunk


def _stream(frames: list[bytes]) -> httpx.Response:
    return httpx.Response(200, headers={"content-type": "text/event-stream; charset=utf-8"}, content=_frames(frames))


class Transport(httpx.AsyncBaseTransport):
    """The mock as an httpx transport: `client.send()` on a mock URL lands here."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return answer(request.method, request.url.path, await request.aread())
