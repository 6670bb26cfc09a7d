"""Token usage, read from what the upstream sends anyway (never asked for).

Responses API: `usage.{input_tokens, output_tokens, total_tokens,
input_tokens_details.cached_tokens, output_tokens_details.reasoning_tokens}`.
Chat Completions: `usage.{prompt_tokens, completion_tokens, total_tokens,
prompt_tokens_details.cached_tokens, completion_tokens_details.reasoning_tokens}`.
Detail objects are optional (Azure has omitted them).
"""

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Usage:
    input_tokens: int | None = None
    output_tokens: int | None = None
    total_tokens: int | None = None
    cached_tokens: int | None = None
    reasoning_tokens: int | None = None


def _int(value) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _detail(usage: dict, key: str, field: str) -> int | None:
    details = usage.get(key)
    return _int(details.get(field)) if isinstance(details, dict) else None


def from_usage_object(usage) -> Usage | None:
    if not isinstance(usage, dict):
        return None
    if "input_tokens" in usage or "output_tokens" in usage:
        return Usage(
            input_tokens=_int(usage.get("input_tokens")),
            output_tokens=_int(usage.get("output_tokens")),
            total_tokens=_int(usage.get("total_tokens")),
            cached_tokens=_detail(usage, "input_tokens_details", "cached_tokens"),
            reasoning_tokens=_detail(usage, "output_tokens_details", "reasoning_tokens"),
        )
    if "prompt_tokens" in usage or "completion_tokens" in usage:
        return Usage(
            input_tokens=_int(usage.get("prompt_tokens")),
            output_tokens=_int(usage.get("completion_tokens")),
            total_tokens=_int(usage.get("total_tokens")),
            cached_tokens=_detail(usage, "prompt_tokens_details", "cached_tokens"),
            reasoning_tokens=_detail(usage, "completion_tokens_details", "reasoning_tokens"),
        )
    return None


def from_payload(payload) -> Usage | None:
    """Usage of a JSON body: a Response, a chat completion, a stream event or chunk."""
    if not isinstance(payload, dict):
        return None
    found = from_usage_object(payload.get("usage"))
    if found is None and isinstance(payload.get("response"), dict):
        found = from_usage_object(payload["response"].get("usage"))
    return found
