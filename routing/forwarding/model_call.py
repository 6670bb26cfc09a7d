"""Forwarding one call: order deployments, apply the policy, call, retry/fail over, relay.

The upstream receives the client's body, the `model` rewrite, and exactly the changes
the deployment's policy lists (all recorded in the log row); when nothing changed the
client's original bytes are forwarded.

Attempts (per group, up to `max_attempts`, cycling through the ordered candidates):
connect errors, timeouts before the first byte and the group's retry statuses move on
to the next attempt; other answers (2xx, 4xx) are final. Another deployment is tried at
once; the same one again after a jittered backoff that honours `Retry-After`. Nothing is
retried once a byte has reached the client. When a group has nothing left, its fallback
groups are tried in order (each group at most once, so loops cannot happen).
"""

import asyncio
import random
import time
from dataclasses import replace
from email.utils import parsedate_to_datetime

import orjson

from routing import errors
from routing.config.snapshots import DeploymentSnap, GroupSnap, KeySnap, RouteSnapshot
from routing.forwarding import affinity, upstream_request
from routing.forwarding import response as respond
from routing.forwarding.call import Call, copy_upstream_headers
from routing.forwarding.upstream_request import Target, UpstreamRequest
from routing.http import Response
from routing.resilience import limits, load, router
from routing.resilience.breaker import breaker
from routing.upstream.client import Headers, UpstreamResponse
from routing.upstream.relay import UpstreamFailure, open_upstream

MAX_RETRY_WAIT = 10.0  # never sleep longer than this before retrying the same deployment
_rng = random.Random()


def retry_after_seconds(headers) -> float | None:
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return float(ms) / 1000
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value:
        try:
            return float(value)
        except ValueError:
            try:
                return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
            except (TypeError, ValueError):
                return None
    return None


def backoff(attempt: int, retry_after: float | None) -> float:
    if retry_after is not None:
        return retry_after
    return min(4.0, 0.25 * 2 ** attempt) * (0.5 + _rng.random())


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
            await limits.limiter().enter(scope, key.max_parallel)
            call.parallel_scopes.append(scope)
    except limits.Limited as exc:
        raise errors.rate_limited(f"This API key is over its {exc.what} limit.", exc.retry_after) from None


def groups_in_order(group: GroupSnap, snap: RouteSnapshot):
    """The group, then its fallbacks depth-first, each at most once."""
    seen, stack = set(), [group]
    while stack:
        g = stack.pop(0)
        if g.name in seen:
            continue
        seen.add(g.name)
        yield g
        stack[0:0] = [snap.groups[n] for n in g.fallbacks if n in snap.groups and n not in seen]


class Outcome:
    """What the attempts of one group ended with, when they produced no final answer."""

    def __init__(self) -> None:
        self.failure: UpstreamFailure | None = None
        self.response: tuple[int, Headers, bytes, DeploymentSnap] | None = None  # last retryable answer
        self.limited: limits.Limited | None = None


async def model_call(call: Call, key: KeySnap, group: GroupSnap, snap: RouteSnapshot, raw: bytes, body: dict, *,
                     op_path: str, endpoint: str, query: str, forwarded):
    """POST a model call (responses, chat, compact, input_tokens) through the group and its fallbacks."""
    stream = body.get("stream") is True
    call.record.stream = stream
    await admit(call, key)
    prefer = await _preferred_deployment(body)
    target = Target("POST", op_path, endpoint, query, raw, body, stream)
    outcome = Outcome()
    compact_capable = False
    for g in groups_in_order(group, snap):
        candidates = router.order_candidates(g, rng=_rng, inflight=load.stats.inflight, ttfb=load.stats.ttfb,
                                             prefer=prefer)
        owner = snap.deployments.get(prefer) if prefer is not None else None
        if owner is not None:  # next best: another deployment on the same upstream resource
            candidates.sort(key=lambda d: (d.id != owner.id, (d.provider, d.api_base) != (owner.provider, owner.api_base)))
        if endpoint == "compact":
            candidates = [d for d in candidates if d.supports_compact]
            compact_capable = compact_capable or bool(candidates)
        answer = await attempt_group(call, g, candidates, target, forwarded, outcome)
        if answer is not None:
            return answer
    if endpoint == "compact" and not compact_capable:
        raise errors.GatewayError(400, f"Model '{group.name}' has no deployment that supports /v1/responses/compact.",
                                  code="unsupported_endpoint", param="model")
    return _give_up(call, group, outcome)


async def _preferred_deployment(body: dict) -> int | None:
    prev = body.get("previous_response_id")
    if isinstance(prev, str) and prev:
        found = await affinity.lookup(prev)
        if found is not None:
            return found
    for item_id in affinity.reasoning_ids(body):
        found = await affinity.lookup(item_id)
        if found is not None:
            return found
    return None


async def attempt_group(call: Call, group: GroupSnap, candidates: list[DeploymentSnap], target: Target, forwarded,
                        outcome: Outcome):
    """Up to `max_attempts` upstream calls over the candidates. Deployments skipped for
    their own limits or a probe in progress cost no attempt."""
    rec = call.record
    previous: DeploymentSnap | None = None
    retry_after: float | None = None
    calls = 0
    while calls < group.max_attempts:
        dep = _next_usable(candidates, calls)
        if dep is None:
            return None
        request = _request_for(dep, target, forwarded)  # a policy rejection is the client's 400, before any claim
        if dep.rpm or dep.tpm:
            try:
                await limits.limiter().hit(f"dep:{dep.id}", dep.rpm, dep.tpm)
            except limits.Limited as exc:
                outcome.limited = exc
                rec.attempts.append(_attempt_entry(dep, None, "deployment_rate_limited", 0.0))
                candidates = [c for c in candidates if c.id != dep.id]
                continue
        if previous is not None and dep.id == previous.id:
            wait = backoff(calls - 1, retry_after)
            if wait > MAX_RETRY_WAIT:
                return None
            await asyncio.sleep(wait)
        if not breaker.begin(dep.id):
            candidates = [c for c in candidates if c.id != dep.id]
            continue
        previous, retry_after = dep, None
        calls += 1
        try:
            answer = await _attempt(call, group, dep, target, outcome, request)
            if answer is _STRIPPED:
                answer = await _attempt(call, group, dep, target, outcome, _request_for(dep, target, forwarded))
        except BaseException:
            breaker.release(dep.id)  # an abandoned probe must not hold the deployment
            raise
        if answer is not None:
            return answer
        if outcome.response is not None:
            retry_after = retry_after_seconds(outcome.response[1])
    return None


def _request_for(dep: DeploymentSnap, target: Target, forwarded) -> UpstreamRequest:
    return upstream_request.build(dep, target, forwarded)


def _next_usable(candidates: list[DeploymentSnap], attempt: int) -> DeploymentSnap | None:
    usable = [d for d in candidates if breaker.usable(d.id)]
    return usable[attempt % len(usable)] if usable else None


_STRIPPED = object()  # sentinel: encrypted reasoning was removed, call the same deployment again


def _undecryptable_reasoning(target: Target, response: UpstreamResponse) -> bool:
    """Encrypted reasoning from another resource is refused with a 400 (or 404 "item not found")."""
    if response.status_code not in (400, 404) or target.body is None:
        return False
    if not affinity.has_encrypted_reasoning(target.body):
        return False
    text = response.content[:2000].lower()
    return b"encrypted" in text or b"decrypt" in text or (b"item with id" in text and b"not found" in text)


async def _attempt(call: Call, group: GroupSnap, dep: DeploymentSnap, target: Target, outcome: Outcome,
                   request: UpstreamRequest):
    rec = call.record
    url, headers, content, changes = request.url, request.headers, request.content, request.changes
    load.stats.started(dep.id)
    started = time.perf_counter()
    try:
        sent = await open_upstream(dep, target.method, url, headers, content, stream=target.stream)
    except asyncio.CancelledError:
        load.stats.finished(dep.id)
        raise
    except UpstreamFailure as failure:
        load.stats.finished(dep.id)
        call.upstream_seconds += time.perf_counter() - started
        rec.attempts.append(_attempt_entry(dep, None, failure.kind, time.perf_counter() - started))
        _failed(group, dep, failure.kind)
        outcome.failure, outcome.response = failure, None
        return None
    call.upstream_seconds += sent.seconds
    response = sent.response
    status = response.status_code
    rec.attempts.append(_attempt_entry(dep, status, "", sent.seconds))
    if status in group.retry_on:
        load.stats.finished(dep.id)
        wait = retry_after_seconds(response.headers)
        _failed(group, dep, f"HTTP {status}", retry_after=wait if status == 429 else None)
        outcome.response, outcome.failure = (status, response.headers, response.content, dep), None
        response.close()
        return None
    if _undecryptable_reasoning(target, response):
        response.close()
        load.stats.finished(dep.id)
        target.body = affinity.without_encrypted_reasoning(target.body)
        target.raw = orjson.dumps(target.body)
        rec.policy_changes = [{"action": "drop", "path": "input[type=reasoning].encrypted_content",
                               "reason": "reasoning_not_decryptable_by_deployment"}]
        rec.attempts[-1]["error"] = "encrypted_reasoning_refused; retrying without it"
        return _STRIPPED
    if status < 500:
        breaker.success(dep.id)
    load.stats.observe_ttfb(dep.id, sent.seconds)
    _note_served(rec, dep)
    rec.policy_changes = rec.policy_changes + changes
    rec.upstream_status = status
    rec.upstream_request_id = response.headers.get("x-request-id", "") or response.headers.get("apim-request-id", "")
    if dep.tpm:
        call.token_scopes.append(f"dep:{dep.id}")
    if target.stream and status < 300 and "text/event-stream" in response.headers.get("content-type", ""):
        return respond.stream(call, dep, response, endpoint=target.endpoint,
                              on_end=lambda d, failure: _failed(group, d, failure.kind) if failure else None)
    try:
        return respond.plain(call, response, endpoint=target.endpoint, dep=dep)
    finally:
        load.stats.finished(dep.id)


def _note_served(rec, dep: DeploymentSnap) -> None:
    rec.deployment_id, rec.deployment_name, rec.provider = dep.id, dep.name, dep.provider
    rec.served_group = dep.group_name if dep.group_name != rec.group_name else ""


def _failed(group: GroupSnap, dep: DeploymentSnap, error: str, retry_after: float | None = None) -> None:
    breaker.failure(dep.id, error, threshold=group.cooldown_failures, window=group.cooldown_window,
                    cooldown=group.cooldown_seconds, retry_after=retry_after)


def _attempt_entry(dep: DeploymentSnap, status: int | None, error: str, seconds: float) -> dict:
    return {"deployment_id": dep.id, "deployment": dep.name, "group": dep.group_name, "status": status,
            "error": error, "ms": round(seconds * 1000, 3)}


def _give_up(call: Call, group: GroupSnap, outcome: Outcome):
    """Every attempt of every group failed: pass the last upstream answer through, or explain."""
    rec = call.record
    if outcome.response is not None:
        status, headers, content, dep = outcome.response
        out = Response(content, status=status, content_type=headers.get("content-type", "application/json"))
        copy_upstream_headers(headers, out)
        _note_served(rec, dep)
        rec.upstream_status, rec.bytes_out = status, len(content)
        rec.error_type = rec.error_type or f"upstream_{status}"
        rec.error_message = rec.error_message or content[:500].decode("utf-8", "replace")
        call.done(status)
        return call.headers(out)
    if outcome.failure is not None:
        rec.error_type = outcome.failure.kind
        make = errors.upstream_timeout if outcome.failure.timeout else errors.upstream_unreachable
        raise make(outcome.failure.detail)
    if outcome.limited is not None:
        raise errors.rate_limited(f"Every deployment of model '{group.name}' is at its rate limit.",
                                  outcome.limited.retry_after)
    raise errors.no_deployment(group.name, breaker.seconds_until_usable(d.id for d in group.deployments))


async def call_deployment(call: Call, dep: DeploymentSnap, snap: RouteSnapshot, target: Target, forwarded):
    """One deployment, no failover (calls on a stored response must reach its owner)."""
    group = snap.groups.get(dep.group_name) or GroupSnap(id=0, name=dep.group_name, strategy="weighted",
                                                         max_attempts=1, deployments=(dep,))
    single = replace(group, max_attempts=1, deployments=(dep,), retry_on=frozenset())  # its answer is final
    outcome = Outcome()
    answer = await _attempt(call, single, dep, target, outcome, _request_for(dep, target, forwarded))
    return answer if answer is not None else _give_up(call, group, outcome)
