"""A chat completion as a Response object (pure), and the pieces the stream translator shares.

- `message.content` → a `message` item with one `output_text` part (`refusal` → a `refusal` part);
- `message.reasoning_content` (or `reasoning`, as vLLM and others send it) → a `reasoning` item
  with one `reasoning_text` part, placed first;
- `message.tool_calls` → one `function_call` item each (`call_id` = the chat tool call id; a
  namespaced tool's `namespace__name` back to its `name` and `namespace`);
- `finish_reason` "length" → status `incomplete` (`max_output_tokens`), "content_filter" →
  `incomplete` (`content_filter`), anything else → `completed`;
- `usage` (prompt/completion tokens and their details) → the Responses usage object.
The request's own parameters (instructions, tools, text, ...) are repeated as a Response does.
"""

import orjson

from routing.bridge import BadAnswer, Context, new_id

INCOMPLETE = {"length": "max_output_tokens", "content_filter": "content_filter"}


def status_of(finish_reason) -> tuple[str, dict | None]:
    reason = INCOMPLETE.get(finish_reason)
    return ("incomplete", {"reason": reason}) if reason else ("completed", None)


def skeleton(ctx: Context, *, status: str = "in_progress", model: str | None = None) -> dict:
    echo = ctx.echo
    reasoning = echo.get("reasoning")
    return {
        "id": ctx.response_id, "object": "response", "created_at": ctx.created_at, "status": status,
        "background": False, "completed_at": None, "error": None, "incomplete_details": None,
        "instructions": echo.get("instructions"), "max_output_tokens": echo.get("max_output_tokens"),
        "max_tool_calls": echo.get("max_tool_calls"), "model": model or ctx.model, "output": [],
        "parallel_tool_calls": echo.get("parallel_tool_calls", True),
        "previous_response_id": echo.get("previous_response_id"), "prompt_cache_key": echo.get("prompt_cache_key"),
        "reasoning": {"effort": None, "summary": None, **(reasoning if isinstance(reasoning, dict) else {})},
        "safety_identifier": echo.get("safety_identifier"), "service_tier": echo.get("service_tier"),
        "store": ctx.store, "temperature": echo.get("temperature"),
        "text": echo.get("text") or {"format": {"type": "text"}}, "tool_choice": echo.get("tool_choice", "auto"),
        "tools": echo.get("tools") or [], "top_logprobs": echo.get("top_logprobs"), "top_p": echo.get("top_p"),
        "truncation": echo.get("truncation", "disabled"), "usage": None, "user": echo.get("user"),
        "metadata": echo.get("metadata") or {},
    }


def finished(response: dict, *, status: str, incomplete: dict | None, output: list, usage: dict | None,
             model=None, service_tier=None) -> dict:
    response.update(status=status, incomplete_details=incomplete, output=output, usage=usage)
    if status == "completed":
        response["completed_at"] = int(response["created_at"])
    if isinstance(model, str) and model:
        response["model"] = model
    if isinstance(service_tier, str) and service_tier:
        response["service_tier"] = service_tier
    return response


def _int(value) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def usage_of(usage) -> dict | None:
    """Chat usage → Responses usage (None when the upstream sent none)."""
    if not isinstance(usage, dict):
        return None
    prompt, completion = _int(usage.get("prompt_tokens")), _int(usage.get("completion_tokens"))
    if prompt is None or completion is None:
        return None
    details_in = usage.get("prompt_tokens_details") if isinstance(usage.get("prompt_tokens_details"), dict) else {}
    details_out = (usage.get("completion_tokens_details")
                   if isinstance(usage.get("completion_tokens_details"), dict) else {})
    return {"input_tokens": prompt,
            "input_tokens_details": {"cached_tokens": _int(details_in.get("cached_tokens")) or 0},
            "output_tokens": completion,
            "output_tokens_details": {"reasoning_tokens": _int(details_out.get("reasoning_tokens")) or 0},
            "total_tokens": _int(usage.get("total_tokens")) or prompt + completion}


def message_item(item_id: str, text: str, *, refusal: str | None = None, status: str = "completed") -> dict:
    content = []
    if text or not refusal:
        content.append({"type": "output_text", "annotations": [], "logprobs": [], "text": text})
    if refusal:
        content.append({"type": "refusal", "refusal": refusal})
    return {"id": item_id, "type": "message", "status": status, "role": "assistant", "content": content}


def reasoning_item(item_id: str, text: str, *, status: str = "completed") -> dict:
    return {"id": item_id, "type": "reasoning", "status": status, "summary": [],
            "content": [{"type": "reasoning_text", "text": text}]}


def function_call_item(item_id: str, call_id: str, chat_name: str, arguments: str, ctx: Context, *,
                       status: str = "completed") -> dict:
    """A function_call item for a chat tool call (a namespaced tool's call gets its name and namespace back)."""
    name, namespace = ctx.tool_name(chat_name)
    item = {"id": item_id, "type": "function_call", "status": status, "arguments": arguments, "call_id": call_id,
            "name": name}
    if namespace is not None:
        item["namespace"] = namespace
    return item


def arguments_text(arguments) -> str:
    """Tool-call arguments as the JSON text Responses carries (a few servers send an object)."""
    if isinstance(arguments, str):
        return arguments
    return "" if arguments is None else orjson.dumps(arguments).decode()


def reasoning_text(delta_or_message: dict):
    """The reasoning a chat message or delta carries (vLLM has used both names)."""
    value = delta_or_message.get("reasoning_content")
    if value is None:
        value = delta_or_message.get("reasoning")
    return value if isinstance(value, str) else None


def from_completion(completion, ctx: Context) -> dict:
    """The Response object for a (non-streamed) chat completion. Raises BadAnswer."""
    choices = completion.get("choices") if isinstance(completion, dict) else None
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise BadAnswer("the chat completion has no choices")
    choice = choices[0]
    message = choice.get("message")
    if not isinstance(message, dict):
        raise BadAnswer("the chat completion's first choice has no message")
    status, incomplete = status_of(choice.get("finish_reason"))
    item_status = "incomplete" if incomplete else "completed"
    output = []
    thought = reasoning_text(message)
    if thought:
        output.append(reasoning_item(new_id("rs_gw_"), thought, status=item_status))
    content, refusal = message.get("content"), message.get("refusal")
    if isinstance(content, list):  # some servers answer with text parts
        content = "".join(p.get("text", "") for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
    text = content if isinstance(content, str) else ""
    if text or isinstance(refusal, str) and refusal:
        output.append(message_item(new_id("msg_gw_"), text, refusal=refusal if isinstance(refusal, str) else None,
                                   status=item_status))
    for call in message.get("tool_calls") or ():
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict) or call.get("type", "function") != "function" \
                or not isinstance(function.get("name"), str):
            raise BadAnswer("a tool call the bridge cannot translate")
        output.append(function_call_item(new_id("fc_gw_"), call.get("id") or new_id("call_gw_"), function["name"],
                                         arguments_text(function.get("arguments")), ctx, status=item_status))
    return finished(skeleton(ctx), status=status, incomplete=incomplete, output=output,
                    usage=usage_of(completion.get("usage")), model=completion.get("model"),
                    service_tier=completion.get("service_tier"))
