"""What one upstream call sends to one deployment: method, URL, headers and body.

- URL: the provider module builds it from the deployment and the path relative to the
  OpenAI API root (`responses`, `chat/completions`, `responses/{id}/cancel`, ...).
- Body: the client's body, plus the `model` rewrite to the deployment's upstream model,
  plus exactly the changes the deployment's policy lists (`routing.policy.apply_policy`),
  each recorded in `changes` for the log row. When nothing changed, the client's own
  bytes are sent untouched (not re-serialised).
- A `/v1/responses` call for a deployment that does not speak the Responses API (or that
  continues a bridged response) goes to its `/chat/completions` through the bridge
  (routing/bridge/): the translated body, with each translation listed in `changes`, then
  the policy (endpoint "chat"), then the model rewrite. A parameter with no Chat equivalent
  that the policy did not drop is the client's 400 (`errors.CannotBridge`).
- Chat streams: `stream_options.include_usage` is added only when ops turned on "collect
  stream usage" for a deployment whose upstream accepts it, and the client did not ask for
  usage itself; the change is listed, and `hide_usage` tells the relay to remove the extra
  usage chunk from what the client sees. Otherwise nothing is ever added.
- Headers: `accept`, `content-type`, `accept-encoding: identity` (answers are parsed and
  relayed as they arrive), the few client headers worth forwarding (already validated
  by the API layer) and the provider's credentials. Nothing else of the client's
  request is forwarded; its `Authorization` is the gateway key, never the upstream's.

`build()` is the one place that assembles these; live traffic, the admin's preview and
the admin's Test action all go through it.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field

import orjson

from routing import crypto, errors, providers
from routing.bridge import RESPONSE_PREFIX, BridgeRefused, Context, new_id
from routing.bridge.request import refused_leftover, to_chat
from routing.capabilities import CHAT_STREAM_USAGE, RESPONSES
from routing.config.snapshots import DeploymentSnap
from routing.policy import PolicyRejected, apply_policy

# Client headers passed on to the upstream (name -> longest value accepted; the API layer enforces it).
FORWARDED_CLIENT_HEADERS = {"openai-beta": 512, "x-client-request-id": 512}
SECRET_HEADERS = frozenset({"api-key", "authorization"})


@dataclass(slots=True)
class Target:
    """What to call on each candidate: a path relative to the API root, and the body."""

    method: str
    op_path: str
    endpoint: str  # "responses", "chat", "compact", "responses.input_tokens", "responses.get", ...
    query: str
    raw: bytes | None
    body: dict | None
    stream: bool
    route: str = "any"  # responses only: "native" (continues an upstream response), "bridge" (a bridged one)
    history: list | None = None  # for "bridge": the stored items the previous_response_id stands for


@dataclass(slots=True)
class UpstreamRequest:
    """Built per attempt and not changed after (a plain slotted dataclass: a frozen one costs a
    microsecond more to build, on every request)."""

    method: str
    url: str
    headers: dict[str, str] = field(repr=False)
    content: bytes | None
    changes: list[dict]  # what was changed in the body, in the order it was changed
    bridge: Context | None = None  # set when a /v1/responses call goes to /chat/completions
    hide_usage: bool = False  # the usage chunk of this chat stream was asked for by the gateway, not the client

    def masked_headers(self) -> dict[str, str]:
        """The headers as the admin shows them: credentials reduced to their last four characters."""
        return {name: (crypto.mask(value.removeprefix("Bearer ")) if name in SECRET_HEADERS else value)
                for name, value in self.headers.items()}


def prepare_body(dep: DeploymentSnap, raw: bytes, body: dict, *, endpoint: str, stream: bool) -> tuple[bytes, list]:
    """(bytes to send, audit list). Raises PolicyRejected."""
    content, changes, _ = _prepare(dep, raw, body, endpoint=endpoint, stream=stream)
    return content, changes


def _prepare(dep: DeploymentSnap, raw: bytes | None, body: dict, *, endpoint: str, stream: bool,
             changes: list | None = None) -> tuple[bytes, list, dict]:
    """(bytes, audit list, the body sent): stream usage if ops chose it, the policy, the model rewrite."""
    changes = [] if changes is None else changes
    if endpoint == "chat" and stream and dep.collect_stream_usage:
        body = _with_stream_usage(dep, body, changes)
    result = apply_policy(body, dep.rules, endpoint=endpoint, stream=stream)
    out = result.body
    changes += result.changes
    model = body.get("model")
    if dep.upstream_model and dep.upstream_model != model:
        out = out if out is not body else dict(body)
        out["model"] = dep.upstream_model
        changes.append({"action": "rewrite", "path": "model", "from": model, "to": dep.upstream_model})
    return (raw if out is body and raw is not None else orjson.dumps(out)), changes, out


def _with_stream_usage(dep: DeploymentSnap, body: dict, changes: list) -> dict:
    """Ask the stream for usage (ops' opt-in), unless the upstream does not take it or the client asked."""
    options = body.get("stream_options")
    if CHAT_STREAM_USAGE not in dep.apis or (isinstance(options, dict) and options.get("include_usage") is True):
        return body
    if options is not None and not isinstance(options, dict):
        return body  # not ours to reshape; the upstream will say what it thinks of it
    entry = {"action": "set", "path": "stream_options.include_usage", "value": True,
             "reason": "collect_stream_usage", "note": "the usage chunk is removed from the client's stream"}
    if options and "include_usage" in options:
        entry["from"] = options["include_usage"]
    changes.append(entry)
    return dict(body, stream_options={**(options or {}), "include_usage": True})


def _hides_usage(changes: list, sent: dict) -> bool:
    """The gateway added include_usage and it is still there after the policy: the client must not see its chunk."""
    options = sent.get("stream_options")
    return (isinstance(options, dict) and options.get("include_usage") is True
            and any(c.get("reason") == "collect_stream_usage" for c in changes))


def upstream_headers(dep: DeploymentSnap, forwarded: Mapping[str, str], *, stream: bool,
                     has_body: bool) -> dict[str, str]:
    headers = {"accept": "text/event-stream" if stream else "application/json"}
    if has_body:
        headers["content-type"] = "application/json"
    headers["accept-encoding"] = "identity"
    for name in FORWARDED_CLIENT_HEADERS:
        value = forwarded.get(name)
        if value:
            headers[name] = value
    headers.update(providers.get(dep.provider).auth_headers(dep))
    return headers


def build(dep: DeploymentSnap, target: Target, forwarded: Mapping[str, str]) -> UpstreamRequest:
    """The request for `dep`. A policy `reject` rule is the client's 400 (GatewayError); so is a
    parameter the bridge cannot express (errors.CannotBridge)."""
    if target.body is None:
        content, changes, sent = target.raw, [], None
    elif target.endpoint == "responses" and (target.route == "bridge" or RESPONSES not in dep.apis):
        return _bridged(dep, target, forwarded)
    else:
        try:
            content, changes, sent = _prepare(dep, target.raw, target.body, endpoint=target.endpoint,
                                              stream=target.stream)
        except PolicyRejected as exc:
            raise errors.GatewayError(400, exc.message, code="unsupported_parameter", param=exc.param) from None
    url = providers.get(dep.provider).url(dep, target.op_path, target.query)
    headers = upstream_headers(dep, forwarded, stream=target.stream, has_body=content is not None)
    hide = sent is not None and target.stream and dep.collect_stream_usage and _hides_usage(changes, sent)
    return UpstreamRequest(target.method, url, headers, content, changes, None, hide)


def _bridged(dep: DeploymentSnap, target: Target, forwarded: Mapping[str, str]) -> UpstreamRequest:
    """A /v1/responses call as a /chat/completions call (routing/bridge/request.py)."""
    try:
        translation = to_chat(target.body, capabilities=dep.apis, response_id=new_id(RESPONSE_PREFIX),
                              history=target.history)
        content, changes, sent = _prepare(dep, None, translation.body, endpoint="chat", stream=target.stream,
                                          changes=translation.changes)
    except BridgeRefused as exc:
        raise errors.CannotBridge(exc.message, param=exc.param) from None
    except PolicyRejected as exc:
        raise errors.GatewayError(400, exc.message, code="unsupported_parameter", param=exc.param) from None
    chosen = {c["path"] for c in changes if c["action"] in ("set", "default")} | {
        c["to"] for c in changes if c["action"] == "rename"}
    for path in translation.leftovers:  # no Chat equivalent, and the policy did not drop it
        if _present(sent, path) and path not in chosen:
            raise errors.CannotBridge(refused_leftover(path, str(target.body.get("model"))).message, param=path)
    translation.context.model = str(sent.get("model", ""))
    url = providers.get(dep.provider).url(dep, "chat/completions", target.query)
    headers = upstream_headers(dep, forwarded, stream=target.stream, has_body=True)
    return UpstreamRequest(target.method, url, headers, content, changes, translation.context)


def _present(body: dict, dotted: str) -> bool:
    node = body
    for key in dotted.split("."):
        if not isinstance(node, dict) or key not in node:
            return False
        node = node[key]
    return True
