"""Pure builders for the fake upstream (no I/O): error bodies, Response / chat objects, SSE event scripts.

Shapes follow /work/shared/API-SPEC.md (§1.4, §1.5.2, §1.6, §2.4, §2.6, §3).
"""

from __future__ import annotations

import json
import random
import string
import time
import uuid
from typing import Any

AZURE_401_MESSAGE = (
    "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key "
    "for an active subscription and use a correct regional API endpoint for your resource."
)
AZURE_DEPLOYMENT_NOT_FOUND_MESSAGE = (
    "The API deployment for this resource does not exist. If you created the deployment within the last "
    "5 minutes, please wait a moment and try again."
)
INVALID_JSON_MESSAGE = (
    "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP "
    "library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.)"
)
MESSAGES_MOVED_MESSAGE = (
    "Unsupported parameter: 'messages'. In the Responses API, this parameter has moved to 'input'. "
    "Try again with the new parameter."
)

# Deterministic answer: delta i is WORDS[i % len(WORDS)], preceded by a space except for the first one.
WORDS = ("Hello", "from", "the", "fake", "upstream", "server")

AZURE_PROMPT_FILTER_RESULTS = [{
    "prompt_index": 0,
    "content_filter_results": {
        "hate": {"filtered": False, "severity": "safe"},
        "jailbreak": {"filtered": False, "detected": False},
        "self_harm": {"filtered": False, "severity": "safe"},
        "sexual": {"filtered": False, "severity": "safe"},
        "violence": {"filtered": False, "severity": "safe"},
    },
}]
AZURE_CONTENT_FILTER_RESULTS = {
    key: {"filtered": False, "severity": "safe"} for key in ("hate", "self_harm", "sexual", "violence")
}


def new_id(prefix: str) -> str:
    return prefix + uuid.uuid4().hex


def delta_words(n: int) -> list[str]:
    return [("" if i == 0 else " ") + WORDS[i % len(WORDS)] for i in range(max(n, 0))]


def count_words(value: Any) -> int:
    """Whitespace-separated words of every text found in a Responses `input` / chat `messages` value."""
    if isinstance(value, str):
        return len(value.split())
    if isinstance(value, list):
        return sum(count_words(v) for v in value)
    if isinstance(value, dict):
        return sum(count_words(value.get(k)) for k in ("content", "text", "output") if k in value)
    return 0


def obfuscation() -> str:
    return "".join(random.choices(string.ascii_letters + string.digits, k=random.randint(3, 15)))


def frame(event: dict[str, Any], *, with_event_line: bool = True) -> bytes:
    data = json.dumps(event, separators=(",", ":"))
    prefix = f"event: {event['type']}\n" if with_event_line else ""
    return f"{prefix}data: {data}\n\n".encode()


# ---------------------------------------------------------------------------------------------- errors


def openai_error(message: str, type_: str = "invalid_request_error", param: str | None = None,
                 code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def azure_error(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


def unknown_parameter(path: str) -> dict[str, Any]:
    return openai_error(f"Unknown parameter: '{path}'.", param=path, code="unknown_parameter")


def failure_body(mode: str, status: int, retry_after: str) -> dict[str, Any]:
    """Body for the `fail_status` scenario, in the mode's native shape (§1.6 / §2.4)."""
    if mode == "azure":
        messages = {
            429: ("Requests to the Responses_Create Operation under Azure OpenAI API version 2025-04-01-preview "
                  "have exceeded token rate limit of your current OpenAI S0 pricing tier. "
                  f"Try again in {retry_after} seconds."),
            500: "The server had an error while processing your request. Sorry about that!",
            503: "The service is temporarily unable to process your request. Please try again later.",
        }
        return azure_error(str(status), messages.get(status, f"Simulated upstream failure ({status})."))
    table = {
        400: ("Simulated bad request.", "invalid_request_error", None),
        401: ("Incorrect API key provided.", "invalid_request_error", "invalid_api_key"),
        403: ("Country, region, or territory not supported", "request_forbidden",
              "unsupported_country_region_territory"),
        404: ("Not found.", "invalid_request_error", None),
        429: (f"Rate limit reached for requests. Please try again in {retry_after}s.", "requests",
              "rate_limit_exceeded"),
        500: ("The server had an error while processing your request. Sorry about that!", "server_error", None),
        503: ("The engine is currently overloaded, please try again later", "server_error", None),
    }
    default_type = "server_error" if status >= 500 else "invalid_request_error"
    message, type_, code = table.get(status, (f"Simulated upstream failure ({status}).", default_type, None))
    return openai_error(message, type_, None, code)


# ---------------------------------------------------------------------------------------------- Responses


def responses_usage(input_tokens: int, output_tokens: int) -> dict[str, Any]:
    return {
        "input_tokens": input_tokens,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": output_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": input_tokens + output_tokens,
    }


def message_item(text: str, *, item_id: str | None = None, status: str = "completed") -> dict[str, Any]:
    return {
        "id": item_id or new_id("msg_"),
        "type": "message",
        "status": status,
        "role": "assistant",
        "content": [{"type": "output_text", "annotations": [], "logprobs": [], "text": text}],
    }


def build_response(body: dict[str, Any], *, deltas: int) -> dict[str, Any]:
    """A completed Response object (§1.4) for create params `body`."""
    text = "".join(delta_words(deltas))
    now = int(time.time())
    service_tier = body.get("service_tier")
    return {
        "id": new_id("resp_"),
        "object": "response",
        "created_at": now,
        "status": "completed",
        "background": bool(body.get("background", False)),
        "completed_at": now,
        "error": None,
        "incomplete_details": None,
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "max_tool_calls": body.get("max_tool_calls"),
        "model": body.get("model"),
        "output": [message_item(text)],
        "parallel_tool_calls": body.get("parallel_tool_calls", True),
        "previous_response_id": body.get("previous_response_id"),
        "prompt_cache_key": body.get("prompt_cache_key"),
        "reasoning": body.get("reasoning") or {"effort": None, "summary": None},
        "safety_identifier": body.get("safety_identifier"),
        "service_tier": "default" if service_tier in (None, "auto") else service_tier,
        "store": body.get("store", True),
        "temperature": body.get("temperature", 1.0),
        "text": body.get("text") or {"format": {"type": "text"}},
        "tool_choice": body.get("tool_choice", "auto"),
        "tools": body.get("tools") or [],
        "top_logprobs": body.get("top_logprobs", 0),
        "top_p": body.get("top_p", 1.0),
        "truncation": body.get("truncation", "disabled"),
        "usage": responses_usage(max(count_words(body.get("input")), 1), deltas),
        "user": body.get("user"),
        "metadata": body.get("metadata") or {},
    }


def input_items(value: Any) -> list[dict[str, Any]]:
    """Normalise a Responses `input` into stored items, each with an id (for GET .../input_items)."""
    raw = [{"role": "user", "content": value}] if isinstance(value, str) else list(value or [])
    items = []
    for item in raw:
        item = dict(item)
        if "role" in item and "type" not in item:
            item["type"] = "message"
        if item.get("type") == "message" and isinstance(item.get("content"), str):
            kind = "output_text" if item.get("role") == "assistant" else "input_text"
            item["content"] = [{"type": kind, "text": item["content"]}]
        item.setdefault("id", new_id("msg_" if item.get("type") == "message" else "item_"))
        item.setdefault("status", "completed")
        items.append(item)
    return items


def build_compaction(body: dict[str, Any]) -> dict[str, Any]:
    kept = [i for i in input_items(body.get("input")) if i.get("type") == "message" and i.get("role") == "user"]
    compaction = {"id": new_id("cmp_"), "type": "compaction", "encrypted_content": "fake-compacted-" + uuid.uuid4().hex}
    return {
        "id": new_id("cmp_"),
        "object": "response.compaction",
        "created_at": int(time.time()),
        "output": kept + [compaction],
        "usage": responses_usage(max(count_words(body.get("input")), 1), 1),
    }


def response_events(final: dict[str, Any], *, with_obfuscation: bool) -> list[dict[str, Any]]:
    """The §1.5.2 event sequence for a completed single-message response (sequence numbers added later)."""
    snapshot = {**final, "status": "in_progress", "output": [], "usage": None, "completed_at": None}
    item = final["output"][0]
    text = item["content"][0]["text"]
    words = delta_words(final["usage"]["output_tokens"])
    ids = {"item_id": item["id"], "output_index": 0, "content_index": 0}
    events: list[dict[str, Any]] = [
        {"type": "response.created", "response": snapshot},
        {"type": "response.in_progress", "response": snapshot},
        {"type": "response.output_item.added", "output_index": 0,
         "item": {"id": item["id"], "type": "message", "status": "in_progress", "content": [], "role": "assistant"}},
        {"type": "response.content_part.added", **ids,
         "part": {"type": "output_text", "annotations": [], "logprobs": [], "text": ""}},
    ]
    for word in words:
        delta = {"type": "response.output_text.delta", **ids, "delta": word, "logprobs": []}
        if with_obfuscation:
            delta["obfuscation"] = obfuscation()
        events.append(delta)
    events += [
        {"type": "response.output_text.done", **ids, "text": text, "logprobs": []},
        {"type": "response.content_part.done", **ids,
         "part": {"type": "output_text", "annotations": [], "logprobs": [], "text": text}},
        {"type": "response.output_item.done", "output_index": 0, "item": item},
        {"type": "response.completed", "response": final},
    ]
    return events


def number_events(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"type": e["type"], "sequence_number": i, **e} for i, e in enumerate(events)]


# ---------------------------------------------------------------------------------------------- Chat


def chat_usage(prompt: int, completion: int) -> dict[str, Any]:
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
                                      "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0},
    }


def chat_script_pieces(text: str, size: int) -> list[str]:
    return [text[i:i + size] for i in range(0, len(text), size)] or [""]


def build_chat_completion(mode: str, model: str, body: dict[str, Any], *, deltas: int,
                          script: dict[str, Any] | None = None) -> dict[str, Any]:
    """A chat completion. `script` (FakeUpstream.chat_script) replaces the default answer: `text`, `reasoning`
    (sent as `reasoning_content`), `tool_calls` ([{"name", "arguments"}]), `finish_reason`."""
    script = script or {}
    text = script.get("text", "".join(delta_words(deltas)))
    message: dict[str, Any] = {"role": "assistant", "content": text, "refusal": None, "annotations": []}
    if script.get("reasoning"):
        message["reasoning_content"] = script["reasoning"]
    if script.get("tool_calls"):
        message["tool_calls"] = [{"id": f"call_{i}_{uuid.uuid4().hex[:8]}", "type": "function",
                                  "function": {"name": c["name"], "arguments": c["arguments"]}}
                                 for i, c in enumerate(script["tool_calls"])]
    finish = script.get("finish_reason") or ("tool_calls" if script.get("tool_calls") else "stop")
    choice: dict[str, Any] = {"index": 0, "message": message, "logprobs": None, "finish_reason": finish}
    result: dict[str, Any] = {
        "id": new_id("chatcmpl-"),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [choice],
        "usage": chat_usage(max(count_words(body.get("messages")), 1), deltas),
        "system_fingerprint": "fp_fake",
    }
    if mode == "azure":
        choice["content_filter_results"] = AZURE_CONTENT_FILTER_RESULTS
        result["prompt_filter_results"] = AZURE_PROMPT_FILTER_RESULTS
    return result


def chat_chunks(mode: str, model: str, body: dict[str, Any], *, deltas: int,
                script: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Chat stream chunks (§2.6 Azure / §3 OpenAI), without the final `[DONE]`. With a `script` (see
    build_chat_completion): reasoning deltas, then the text in `piece`-character deltas (default 4), then each
    tool call: a first chunk with its id and name, then its arguments in `piece`-character chunks."""
    opts = body.get("stream_options") or {}
    include_usage = bool(opts.get("include_usage"))
    obfuscate = mode == "openai" and opts.get("include_obfuscation", True) is not False
    azure = mode == "azure"
    base = {"id": new_id("chatcmpl-"), "object": "chat.completion.chunk", "created": int(time.time()),
            "model": model, "system_fingerprint": "fp_fake"}

    def chunk(delta: dict[str, Any], finish: str | None = None, filters: Any = None) -> dict[str, Any]:
        choice: dict[str, Any] = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        if azure:
            choice["content_filter_results"] = filters if filters is not None else {}
        out = {**base, "choices": [choice]}
        if include_usage:
            out["usage"] = None
        if obfuscate:
            out["obfuscation"] = obfuscation()
        return out

    chunks = []
    if azure:
        chunks.append({"choices": [], "created": 0, "id": "", "model": "", "object": "",
                       "prompt_filter_results": AZURE_PROMPT_FILTER_RESULTS})
    chunks.append(chunk({"role": "assistant", "content": "", "refusal": None}))
    if script is None:
        words, finish = delta_words(deltas), "stop"
    else:
        size = script.get("piece", 4)
        for piece in chat_script_pieces(script["reasoning"], size) if script.get("reasoning") else ():
            chunks.append(chunk({"reasoning_content": piece}))
        words = chat_script_pieces(script["text"], size) if script.get("text") else []
        finish = script.get("finish_reason") or ("tool_calls" if script.get("tool_calls") else "stop")
    for word in words:
        chunks.append(chunk({"content": word}, filters=AZURE_CONTENT_FILTER_RESULTS))
    for i, call in enumerate((script or {}).get("tool_calls") or ()):
        chunks.append(chunk({"tool_calls": [{"index": i, "id": f"call_{i}_{uuid.uuid4().hex[:8]}", "type": "function",
                                             "function": {"name": call["name"], "arguments": ""}}]}))
        for piece in chat_script_pieces(call["arguments"], script.get("piece", 4)):
            chunks.append(chunk({"tool_calls": [{"index": i, "function": {"arguments": piece}}]}))
    chunks.append(chunk({}, finish=finish))
    if include_usage:
        chunks.append({**base, "choices": [], "usage": chat_usage(max(count_words(body.get("messages")), 1), deltas)})
    return chunks
