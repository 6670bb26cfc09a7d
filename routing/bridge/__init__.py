"""The Responses-to-Chat bridge (pure: no Django, no I/O): `/v1/responses` served by an upstream
that speaks only Chat Completions (vLLM, Ollama, llama.cpp, most OpenAI-compatible servers).

- `request.to_chat()` turns a Responses request into a Chat Completions request and lists every
  translation (`{"action": "translate", ...}` entries, audited like policy changes). Parameters
  with no Chat equivalent stay in the body under their own name (`leftovers`): the deployment's
  policy, which runs next on the translated body with endpoint "chat", may drop them; any still
  there afterwards is the client's 400 naming the parameter. Nothing is silently lost.
- `response.from_completion()` turns a chat completion into a Response object.
- `stream.StreamTranslator` turns chat chunks into the Responses event sequence, with sequence
  numbers, item ids, text/reasoning/function-call items and a terminal event carrying usage.

Bridged responses get ids of their own (`resp_gw_…`), so the gateway knows, without a lookup,
that it holds them (routing/forwarding/bridge_store.py keeps them).
"""

import time
import uuid
from dataclasses import dataclass, field

RESPONSE_PREFIX = "resp_gw_"
MAX_STORED_ID = 64


class BridgeRefused(Exception):
    """The request says something Chat Completions cannot: the client's 400, naming `param`."""

    def __init__(self, param: str, message: str) -> None:
        super().__init__(message)
        self.param, self.message = param, message


class BadAnswer(Exception):
    """The upstream's answer is not a chat completion the bridge can translate (a 502)."""


def new_id(prefix: str) -> str:
    return prefix + uuid.uuid4().hex


def is_bridged_id(response_id: object) -> bool:
    """An id the gateway minted for a bridged response (whether it still holds it is another matter)."""
    return isinstance(response_id, str) and response_id.startswith(RESPONSE_PREFIX) and \
        len(response_id) <= MAX_STORED_ID


@dataclass(slots=True)
class Context:
    """What the answer side needs to know about the request it answers."""

    response_id: str
    model: str  # the model the upstream was asked for (the Response's `model` until it says otherwise)
    echo: dict  # the request parameters a Response object repeats (instructions, tools, text, ...)
    store: bool = True
    created_at: int = field(default_factory=lambda: int(time.time()))
    namespaced: dict = field(default_factory=dict)  # chat function name -> (namespace, name) of a namespaced tool

    def tool_name(self, chat_name: str) -> tuple[str, str | None]:
        """(name, namespace) of the Responses tool a chat tool call names."""
        found = self.namespaced.get(chat_name)
        return (found[1], found[0]) if found else (chat_name, None)


def chat_tool_name(name: str, namespace: str | None) -> str:
    """The Chat Completions name of a function in a Responses tool namespace: `namespace__name` (the
    flat name Codex itself gave MCP tools before namespaces existed)."""
    return f"{namespace}__{name}" if namespace else name
