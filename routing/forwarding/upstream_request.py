"""What one upstream call sends to one deployment: method, URL, headers and body.

- URL: the provider module builds it from the deployment and the path relative to the
  OpenAI API root (`responses`, `chat/completions`, `responses/{id}/cancel`, ...).
- Body: the client's body, plus the `model` rewrite to the deployment's upstream model,
  plus exactly the changes the deployment's policy lists (`routing.policy.apply_policy`),
  each recorded in `changes` for the log row. When nothing changed, the client's own
  bytes are sent untouched (not re-serialised).
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


@dataclass(frozen=True, slots=True)
class UpstreamRequest:
    method: str
    url: str
    headers: dict[str, str] = field(repr=False)
    content: bytes | None
    changes: list[dict]  # what was changed in the body, in the order it was changed

    def masked_headers(self) -> dict[str, str]:
        """The headers as the admin shows them: credentials reduced to their last four characters."""
        return {name: (crypto.mask(value.removeprefix("Bearer ")) if name in SECRET_HEADERS else value)
                for name, value in self.headers.items()}


def prepare_body(dep: DeploymentSnap, raw: bytes, body: dict, *, endpoint: str, stream: bool) -> tuple[bytes, list]:
    """(bytes to send, audit list). Raises PolicyRejected."""
    result = apply_policy(body, dep.rules, endpoint=endpoint, stream=stream)
    out, changes = result.body, list(result.changes)
    model = body.get("model")
    if dep.upstream_model and dep.upstream_model != model:
        out = out if out is not body else dict(body)
        out["model"] = dep.upstream_model
        changes.append({"action": "rewrite", "path": "model", "from": model, "to": dep.upstream_model})
    return (raw if out is body else orjson.dumps(out)), changes


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
    """The request for `dep`. A policy `reject` rule is the client's 400 (GatewayError)."""
    if target.body is None:
        content, changes = target.raw, []
    else:
        try:
            content, changes = prepare_body(dep, target.raw, target.body, endpoint=target.endpoint,
                                            stream=target.stream)
        except PolicyRejected as exc:
            raise errors.GatewayError(400, exc.message, code="unsupported_parameter", param=exc.param) from None
    url = providers.get(dep.provider).url(dep, target.op_path, target.query)
    headers = upstream_headers(dep, forwarded, stream=target.stream, has_body=content is not None)
    return UpstreamRequest(target.method, url, headers, content, changes)
