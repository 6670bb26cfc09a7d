"""One model call end to end (POST /v1/responses, /v1/chat/completions, compact,
input_tokens): the key's limits, the candidates, the attempts, the give-up.

The upstream receives the client's body, the `model` rewrite, and exactly the changes
the deployment's policy lists (forwarding/upstream_request.py), each recorded in the log
row; when nothing changed the client's original bytes are forwarded. A `/v1/responses`
call may be bridged to Chat Completions (routing/bridge/); one that continues a bridged
response replays the conversation the gateway stored (forwarding/bridge_store.py).
"""

from dataclasses import replace

from django.http import HttpResponseBase

from routing import errors
from routing.bridge import is_bridged_id
from routing.config.snapshots import DeploymentSnap, GroupSnap, KeySnap, RouteSnapshot
from routing.forwarding import attempts, bridge_store, candidates
from routing.forwarding.call import Call
from routing.forwarding.upstream_request import Target
from routing.resilience import limits


async def admit(call: Call, key: KeySnap) -> None:
    """Client-key limits: rpm, tpm (checked now, counted after), max parallel."""
    if key.id is None or not (key.rpm or key.tpm or key.max_parallel):
        return
    scope = f"key:{key.id}"
    try:
        if key.rpm or key.tpm:
            await limits.limiter().hit(scope, key.rpm, key.tpm)
            if key.tpm:
                call.token_scopes.append(scope)
        if key.max_parallel:
            call.parallel_scopes.append((scope, await limits.limiter().enter(scope, key.max_parallel)))
    except limits.Limited as exc:
        raise errors.rate_limited(f"This API key is over its {exc.what} limit.", exc.retry_after) from None


async def model_call(call: Call, key: KeySnap, group: GroupSnap, snap: RouteSnapshot, raw: bytes, body: dict, *,
                     op_path: str, endpoint: str, query: str, forwarded: dict[str, str]) -> HttpResponseBase:
    """Through the group and its fallbacks until one answers."""
    stream = body.get("stream") is True
    call.record.stream = stream
    route, history, prev = "any", None, body.get("previous_response_id") if endpoint == "responses" else None
    if isinstance(prev, str) and prev:
        route = "bridge" if is_bridged_id(prev) else "native"
        if route == "bridge":
            history = await bridge_store.history(prev, key)
    prefer = await candidates.owner(body, key, snap)
    await admit(call, key)
    target = Target("POST", op_path, endpoint, query, raw, body, stream, route, history)
    left = attempts.Unanswered()
    capable = False
    for g in candidates.groups_in_order(group, snap):
        ordered = candidates.ordered(g, prefer, endpoint, route)
        capable = capable or bool(ordered) or not g.deployments  # a group with none enabled: 503 below
        answer = await attempts.attempt_group(call, g, ordered, target, forwarded, left)
        if answer is not None:
            return answer
    if not capable:
        if route == "native":  # only the upstream that made it could continue it, and no deployment here can
            raise errors.previous_response_not_found(prev)
        raise errors.GatewayError(400, f"Model '{group.name}' has no deployment that supports {call.record.path}.",
                                  code="unsupported_endpoint", param="model")
    return attempts.give_up(call, group, left)


async def call_deployment(call: Call, dep: DeploymentSnap, snap: RouteSnapshot, target: Target,
                          forwarded: dict[str, str]) -> HttpResponseBase:
    """One deployment, one call, its answer final (calls on a stored response must reach its
    owner; the admin's Test action probes one deployment)."""
    group = snap.groups.get(dep.group_name) or GroupSnap(id=0, name=dep.group_name, strategy="weighted",
                                                         max_attempts=1, deployments=(dep,))
    single = replace(group, max_attempts=1, deployments=(dep,), retry_on=frozenset())
    left = attempts.Unanswered()
    request = attempts.build_request(call, single, dep, target, forwarded, left)
    peers = tuple(d.id for d in group.deployments)  # the breaker judges it within its real group
    answer = None if request is None else await attempts.attempt(call, single, dep, target, request, left, peers)
    if answer is None or answer is attempts.RETRY_WITHOUT_REASONING:  # the latter only for model calls
        return attempts.give_up(call, single, left)
    return answer
