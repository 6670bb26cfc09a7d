"""A Responses request as a Chat Completions request (pure).

| Responses                                   | Chat Completions                                        |
|---------------------------------------------|---------------------------------------------------------|
| `instructions`                              | a first `system` message                                |
| `input` (string)                            | one `user` message                                      |
| `input` message items (`developer` role)    | messages (`system`); text parts, `input_image` URLs     |
| `function_call` items                       | `tool_calls` on the assistant message                   |
| `function_call_output` items                | `tool` messages                                         |
| `reasoning` items                           | not sent (Chat has no reasoning input; counted)         |
| `tools` (function), `tool_choice`           | `tools` / `tool_choice` in the Chat shape               |
| `namespace` tools (function tools in a group) | functions named `namespace__name`, the namespace's      |
|                                             | description before each one's; calls map back           |
| `max_output_tokens`                         | `max_completion_tokens`                                 |
| `text.format` (text, json_object, json_schema) | `response_format`                                    |
| `text.verbosity`                            | `verbosity`                                             |
| `reasoning.effort`                          | `reasoning_effort`, where the upstream accepts it       |
| `store`, `metadata`, `previous_response_id` | kept by the gateway (its store), not sent               |
| `background: false`, `truncation: "disabled"`, `include: []`, null values | nothing to send (the defaults) |
| `model`, `stream`, `stream_options`, `temperature`, `top_p`, `parallel_tool_calls`, | as they are      |
| `user`, `safety_identifier`, `prompt_cache_key`, `prompt_cache_retention`,           |                  |
| `service_tier`, and keys the gateway does not know                                   |                  |

With no Chat equivalent (`NO_EQUIVALENT`, `reasoning.summary`, `reasoning.effort` where the
upstream does not accept it, other `text` keys): left in the body as `leftovers` for the policy
to drop, else the client's 400. Input items and tools Chat cannot express (`web_search`, custom
tools, file inputs, `item_reference`, ...) are a 400 at once, naming the item.
"""

from dataclasses import dataclass

from routing.bridge import BridgeRefused, Context, chat_tool_name
from routing.capabilities import CHAT_REASONING_EFFORT

PASSTHROUGH = frozenset({"model", "stream", "stream_options", "temperature", "top_p", "parallel_tool_calls",
                         "user", "safety_identifier", "prompt_cache_key", "prompt_cache_retention", "service_tier"})
KEPT_BY_GATEWAY = frozenset({"store", "metadata", "previous_response_id"})
NO_EQUIVALENT = frozenset({"include", "truncation", "background", "max_tool_calls", "top_logprobs", "conversation",
                           "prompt", "context_management", "client_metadata", "moderation", "prompt_cache_options"})
DEFAULTS = {"background": False, "truncation": "disabled", "include": []}  # nothing to send for these
ECHOED = ("instructions", "max_output_tokens", "max_tool_calls", "metadata", "parallel_tool_calls",
          "previous_response_id", "prompt_cache_key", "reasoning", "safety_identifier", "service_tier", "store",
          "temperature", "text", "tool_choice", "tools", "top_logprobs", "top_p", "truncation", "user")
ROLES = {"user": "user", "assistant": "assistant", "system": "system", "developer": "system"}
_TEXT_PARTS = frozenset({"input_text", "output_text", "text"})


@dataclass(slots=True)
class Translation:
    body: dict  # the Chat Completions body (the model rewrite and the policy come after)
    changes: list[dict]  # every translation, for the log row
    leftovers: dict  # {dotted path: the client's value}: no Chat equivalent; a 400 unless the policy drops it
    context: Context


def change(path: str, to: str | None, **extra) -> dict:
    return {"action": "translate", "path": path, "to": to, **extra}


def to_chat(body: dict, *, capabilities: frozenset[str], response_id: str,
            history: list[dict] | None = None) -> Translation:
    """`body`: the client's Responses request; `history`: the stored items a `previous_response_id`
    stands for, oldest first. Raises BridgeRefused for what Chat cannot express at all."""
    out: dict = {}
    changes = [change("", "chat/completions", bridge="/v1/responses served by the upstream's /chat/completions")]
    leftovers: dict = {}
    messages: list[dict] = []
    instructions = body.get("instructions")
    if isinstance(instructions, str) and instructions:
        messages.append({"role": "system", "content": instructions})
        changes.append(change("instructions", "messages[0]", role="system"))
    elif instructions is not None:
        _refuse_type("instructions", instructions, "a string")
    counts = {"developer": 0, "reasoning": 0}
    if history:
        before = len(messages)
        _items_to_messages(history, "previous_response_id", messages, counts)
        changes.append(change("previous_response_id", "messages", items=len(history),
                              messages=len(messages) - before))
    if "input" in body:
        before = len(messages)
        items = _input_list(body["input"])
        _items_to_messages(items, "input", messages, counts)
        changes.append(change("input", "messages", items=len(items), messages=len(messages) - before))
    if counts["developer"]:
        changes.append(change("input[role=developer]", "messages[role=system]", count=counts["developer"]))
    if counts["reasoning"]:
        changes.append(change("input[type=reasoning]", None, count=counts["reasoning"],
                              reason="Chat Completions has no reasoning input"))
    for key, value in body.items():
        if key in ("instructions", "input"):
            continue
        if key in PASSTHROUGH or key not in _TRANSLATED_KEYS | KEPT_BY_GATEWAY | NO_EQUIVALENT:
            out[key] = value  # the same parameter on both APIs (or one the gateway does not know): as it is
        elif key in KEPT_BY_GATEWAY:
            if not (key == "previous_response_id" and history is not None):  # else listed with the replay above
                changes.append(change(key, None, kept_by="gateway"))
        elif value is None or (key in DEFAULTS and value == DEFAULTS[key] and type(value) is type(DEFAULTS[key])):
            changes.append(change(key, None, reason="default" if value is not None else "null"))
        elif key in NO_EQUIVALENT:
            out[key] = leftovers[key] = value
        else:
            _TRANSLATED[key](value, out, changes, leftovers, capabilities)
    if messages or "input" in body:
        out["messages"] = messages  # with neither input nor instructions there is nothing to send: the upstream says so
    echo = {key: body[key] for key in ECHOED if key in body}
    context = Context(response_id=response_id, model=str(body.get("model", "")), echo=echo,
                      store=body.get("store") is not False, namespaced=_namespaced(body.get("tools")))
    return Translation(body=out, changes=changes, leftovers=leftovers, context=context)


# --- input ------------------------------------------------------------------------------------------------------

def _input_list(value) -> list:
    if isinstance(value, str):
        return [{"type": "message", "role": "user", "content": value}]
    if isinstance(value, list):
        return value
    _refuse_type("input", value, "a string or a list of items")


def _items_to_messages(items: list, where: str, messages: list[dict], counts: dict) -> None:
    for i, item in enumerate(items):
        path = f"{where}[{i}]"
        if not isinstance(item, dict):
            _refuse_type(path, item, "an object")
        kind = item.get("type") or ("message" if "role" in item else None)
        if kind == "message":
            role = item.get("role")
            if role not in ROLES:
                raise BridgeRefused(f"{path}.role", f"Unknown message role {role!r} in '{path}.role'.")
            counts["developer"] += role == "developer"
            messages.append({"role": ROLES[role], "content": _content(item.get("content"), f"{path}.content")})
        elif kind == "function_call":
            namespace = item.get("namespace")
            name = chat_tool_name(_text(item, "name", path), namespace if isinstance(namespace, str) else None)
            call = {"id": _text(item, "call_id", path), "type": "function",
                    "function": {"name": name, "arguments": _text(item, "arguments", path)}}
            last = messages[-1] if messages else None
            if last is not None and last["role"] == "assistant":
                last.setdefault("tool_calls", []).append(call)
            else:
                messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif kind == "function_call_output":
            output = item.get("output")
            content = output if isinstance(output, str) else _content(output, f"{path}.output", text_only=True)
            messages.append({"role": "tool", "tool_call_id": _text(item, "call_id", path), "content": content})
        elif kind == "reasoning":
            counts["reasoning"] += 1
        else:
            raise BridgeRefused(path, f"Input item type {kind!r} in '{path}' cannot be expressed in Chat Completions, "
                                      "which this model's deployment speaks.")


def _content(value, path: str, *, text_only: bool = False):
    if isinstance(value, str):
        return value
    if not isinstance(value, list):
        _refuse_type(path, value, "a string or a list of content parts")
    parts = []
    for j, part in enumerate(value):
        where = f"{path}[{j}]"
        kind = part.get("type") if isinstance(part, dict) else None
        if kind in _TEXT_PARTS:
            parts.append({"type": "text", "text": _text(part, "text", where)})
        elif kind == "input_image" and not text_only:
            url = part.get("image_url")
            if not isinstance(url, str) or not url:
                raise BridgeRefused(f"{where}.image_url", f"'{where}.image_url' is required here (file ids cannot be "
                                                          "sent to Chat Completions).")
            image = {"url": url}
            if part.get("detail") is not None:
                image["detail"] = part["detail"]
            parts.append({"type": "image_url", "image_url": image})
        else:
            raise BridgeRefused(where, f"Content part type {kind!r} in '{where}' cannot be expressed in Chat "
                                       "Completions, which this model's deployment speaks.")
    if len(parts) == 1 and parts[0]["type"] == "text":
        return parts[0]["text"]  # one text part is the same as a string, which every chat server takes
    return parts


def _text(item: dict, key: str, path: str) -> str:
    value = item.get(key)
    if not isinstance(value, str):
        _refuse_type(f"{path}.{key}", value, "a string")
    return value


def _refuse_type(path: str, value, expected: str):
    raise BridgeRefused(path, f"'{path}' must be {expected}, not {type(value).__name__}.")


# --- other parameters -------------------------------------------------------------------------------------------

def _tools(value, out, changes, leftovers, caps) -> None:
    if not isinstance(value, list):
        _refuse_type("tools", value, "a list")
    tools: list[dict] = []
    for i, tool in enumerate(value):
        path = f"tools[{i}]"
        kind = tool.get("type") if isinstance(tool, dict) else None
        if kind == "function":
            tools.append(_function(tool, path))
        elif kind == "namespace":
            namespace, inner = _text(tool, "name", path), tool.get("tools")
            if not isinstance(inner, list):
                _refuse_type(f"{path}.tools", inner, "a list")
            about = tool.get("description") if isinstance(tool.get("description"), str) else ""
            for j, member in enumerate(inner):
                where = f"{path}.tools[{j}]"
                if not isinstance(member, dict) or member.get("type") != "function":
                    raise BridgeRefused(where, f"Only function tools in a namespace can be expressed in Chat "
                                               f"Completions ('{where}').")
                function = _function(member, where, namespace=namespace)
                if about:
                    own = function["function"].get("description")
                    function["function"]["description"] = f"{about}\n\n{own}" if own else about
                tools.append(function)
            changes.append(change(path, "tools", namespace=namespace, functions=len(inner),
                                  names=chat_tool_name("<name>", namespace)))
        else:
            raise BridgeRefused(path, f"Tool type {kind!r} ('{path}') cannot be expressed in Chat Completions, which "
                                      "this model's deployment speaks; only function tools can.")
    names = [t["function"]["name"] for t in tools]
    if len(set(names)) != len(names):
        twice = sorted({n for n in names if names.count(n) > 1})[0]
        raise BridgeRefused("tools", f"Two tools would have the name '{twice}' in Chat Completions.")
    out["tools"] = tools
    changes.append(change("tools", "tools", count=len(tools), shape="chat"))


def _function(tool: dict, path: str, *, namespace: str | None = None) -> dict:
    unknown = sorted(set(tool) - {"type", "name", "description", "parameters", "strict"})
    if unknown:
        raise BridgeRefused(f"{path}.{unknown[0]}", f"'{path}.{unknown[0]}' has no Chat Completions equivalent.")
    function = {"name": chat_tool_name(_text(tool, "name", path), namespace)}
    function.update((k, tool[k]) for k in ("description", "parameters", "strict") if tool.get(k) is not None)
    return {"type": "function", "function": function}


def _tool_choice(value, out, changes, leftovers, caps) -> None:
    if value in ("none", "auto", "required"):
        out["tool_choice"] = value
        return
    if isinstance(value, dict) and value.get("type") == "function" and isinstance(value.get("name"), str):
        out["tool_choice"] = {"type": "function", "function": {"name": value["name"]}}
        changes.append(change("tool_choice", "tool_choice", shape="chat"))
        return
    raise BridgeRefused("tool_choice", "This tool_choice cannot be expressed in Chat Completions, which this model's "
                                       "deployment speaks (none, auto, required or one function can).")


def _max_output_tokens(value, out, changes, leftovers, caps) -> None:
    out["max_completion_tokens"] = value
    changes.append(change("max_output_tokens", "max_completion_tokens"))


def _text_param(value, out, changes, leftovers, caps) -> None:
    if not isinstance(value, dict):
        _refuse_type("text", value, "an object")
    for key, item in value.items():
        if item is None:
            changes.append(change(f"text.{key}", None, reason="null"))
        elif key == "format":
            out["response_format"] = _response_format(item)
            changes.append(change("text.format", "response_format"))
        elif key == "verbosity":
            out["verbosity"] = item
            changes.append(change("text.verbosity", "verbosity"))
        else:
            out.setdefault("text", {})[key] = leftovers[f"text.{key}"] = item


def _response_format(fmt) -> dict:
    kind = fmt.get("type") if isinstance(fmt, dict) else None
    if kind in ("text", "json_object") and set(fmt) == {"type"}:
        return {"type": kind}
    if kind == "json_schema":
        unknown = sorted(set(fmt) - {"type", "name", "schema", "strict", "description"})
        if unknown:
            raise BridgeRefused(f"text.format.{unknown[0]}", f"'text.format.{unknown[0]}' has no Chat Completions "
                                                             "equivalent.")
        schema = {"name": _text(fmt, "name", "text.format")}
        schema.update((k, fmt[k]) for k in ("schema", "strict", "description") if fmt.get(k) is not None)
        return {"type": "json_schema", "json_schema": schema}
    raise BridgeRefused("text.format", "This text.format cannot be expressed in Chat Completions (text, json_object "
                                       "and json_schema can).")


def _reasoning(value, out, changes, leftovers, caps) -> None:
    if not isinstance(value, dict):
        _refuse_type("reasoning", value, "an object")
    for key, item in value.items():
        if item is None:
            changes.append(change(f"reasoning.{key}", None, reason="null"))
        elif key == "effort" and CHAT_REASONING_EFFORT in caps:
            out["reasoning_effort"] = item
            changes.append(change("reasoning.effort", "reasoning_effort"))
        else:
            out.setdefault("reasoning", {})[key] = leftovers[f"reasoning.{key}"] = item


_TRANSLATED = {"tools": _tools, "tool_choice": _tool_choice, "max_output_tokens": _max_output_tokens,
               "text": _text_param, "reasoning": _reasoning}
_TRANSLATED_KEYS = frozenset(_TRANSLATED)


def _namespaced(tools) -> dict:
    """{chat function name: (namespace, name)} for the functions of the request's namespace tools."""
    found = {}
    for tool in tools if isinstance(tools, list) else ():
        if isinstance(tool, dict) and tool.get("type") == "namespace" and isinstance(tool.get("name"), str) \
                and isinstance(tool.get("tools"), list):
            for member in tool["tools"]:
                if isinstance(member, dict) and isinstance(member.get("name"), str):
                    found[chat_tool_name(member["name"], tool["name"])] = (tool["name"], member["name"])
    return found


def refused_leftover(path: str, model: str) -> BridgeRefused:
    return BridgeRefused(path, f"Parameter '{path}' has no Chat Completions equivalent, and model '{model}' is served "
                               "here by an upstream that speaks only Chat Completions. Remove it from the request "
                               "(or ask the gateway's operators to drop it for this model).")
