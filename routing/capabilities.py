"""What a deployment's upstream speaks (pure, no Django): its capabilities, resolved from the
provider's defaults and what ops set on the deployment.

Capabilities are plain strings:

- "responses": the upstream serves the Responses API (`/responses`). A deployment without it
  answers `/v1/responses` through the Chat bridge (routing/bridge/) when it has "chat".
- "chat": the upstream serves Chat Completions (`/chat/completions`).
- "compact": the upstream serves `/responses/compact`.
- "chat.reasoning_effort": its Chat Completions accept `reasoning_effort` (the bridge sends a
  Responses `reasoning.effort` there; without it the client gets a 400 naming the parameter).
- "chat.stream_usage": its Chat Completions accept `stream_options.include_usage` (needed, with
  the deployment's "collect stream usage" switch, before the gateway ever asks a stream for usage).

Each deployment field is a tri-state: None takes the provider's default, True/False override it.

| provider          | responses | chat | chat.reasoning_effort | chat.stream_usage                     |
|-------------------|-----------|------|-----------------------|---------------------------------------|
| azure             | yes       | yes  | yes                   | v1 API, or api-version >= 2024-09-01  |
| openai            | yes       | yes  | yes                   | yes                                   |
| openai_compatible | no        | yes  | no                    | no                                    |
| mock              | yes       | yes  | yes                   | yes                                   |

"compact" defaults to whatever "responses" resolved to (compact is a Responses endpoint).
"""

RESPONSES = "responses"
CHAT = "chat"
COMPACT = "compact"
CHAT_REASONING_EFFORT = "chat.reasoning_effort"
CHAT_STREAM_USAGE = "chat.stream_usage"
ALL = frozenset({RESPONSES, CHAT, COMPACT, CHAT_REASONING_EFFORT, CHAT_STREAM_USAGE})

# Which capability a client endpoint needs to be served natively (endpoints not listed need none:
# calls on stored responses go to the deployment that holds them).
NATIVE_NEED = {"responses": RESPONSES, "chat": CHAT, "compact": COMPACT, "responses.input_tokens": RESPONSES}

# The first api-version of Azure's preview line whose Chat Completions accept stream_options.
AZURE_STREAM_USAGE_SINCE = "2024-09-01"


def provider_defaults(provider: str, api_version: str = "") -> dict[str, bool]:
    """{capability: default} for a provider kind (compact is derived from responses in `resolve`)."""
    compatible = provider == "openai_compatible"
    if provider == "azure":
        stream_usage = not api_version or api_version[:10] >= AZURE_STREAM_USAGE_SINCE
    else:
        stream_usage = not compatible
    return {RESPONSES: not compatible, CHAT: True, CHAT_REASONING_EFFORT: not compatible,
            CHAT_STREAM_USAGE: stream_usage}


def resolve(provider: str, api_version: str = "", *, responses: bool | None = None, chat: bool | None = None,
            compact: bool | None = None, reasoning_effort: bool | None = None,
            stream_usage: bool | None = None) -> frozenset[str]:
    """The capabilities of one deployment: each explicit value wins over the provider's default."""
    found = provider_defaults(provider, api_version)
    for name, value in ((RESPONSES, responses), (CHAT, chat), (CHAT_REASONING_EFFORT, reasoning_effort),
                        (CHAT_STREAM_USAGE, stream_usage)):
        if value is not None:
            found[name] = value
    found[COMPACT] = found[RESPONSES] if compact is None else compact
    return frozenset(name for name, on in found.items() if on)
