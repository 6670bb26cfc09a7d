"""The upstream calls one client request makes within one group: retries, failover, give-up.

Up to the group's `max_attempts` calls, cycling through the ordered candidates:
- connect errors, timeouts before the first byte, bad answers and the group's retry
  statuses (default 429, 500, 502, 503, 504) move on to the next attempt; any other answer
  (2xx, other 4xx) is final;
- another deployment is tried at once; the same one again after a jittered backoff that
  honours `Retry-After` / `retry-after-ms` (never longer than MAX_RETRY_WAIT);
- a deployment at its own rate limit, or being probed by another request after a
  cooldown, is skipped without costing an attempt;
- a deployment whose request cannot even be built (a key that is not valid in a header,
  say) is a failed attempt like an unreachable one, so the request fails over; so is one
  whose upstream refuses its credentials (401/403: the client's key is not the problem),
  which also shows as `auth_failed` in the deployment's health; if nothing else answers,
  the client gets a 502 `upstream_auth_failed`, not the upstream's 401;
- nothing is retried once a byte has reached the client (streams commit on their first
  event: failover happens before `response.stream()` is returned).

A `/v1/responses` call that the Chat bridge cannot express for a deployment (a parameter with
no Chat equivalent, errors.CannotBridge) skips that deployment without costing an attempt;
when nothing else answers, it is the client's 400. A bridged answer goes back to the client
as a Response (forwarding/bridged.py); a chat stream whose usage the gateway asked for is
relayed without the usage chunk.

Encrypted reasoning that a deployment cannot decrypt (a 400/404 naming the item) is
retried once on the same deployment without it (`policy.strip_encrypted_reasoning`); only
that deployment's request changes, and the log row records the drop like a policy change.
Each attempt's entry in the log row lists its deployment, status or error, time and the
changes its body had. Failures feed the breaker (resilience/breaker.py) once per request
and deployment, and never cool the last usable deployment of the group.
"""

import asyncio
import random
import time
from dataclasses import replace
from email.utils import parsedate_to_datetime

import orjson
from django.http import HttpResponseBase

from routing import errors
from routing.config.snapshots import DeploymentSnap, GroupSnap
from routing.forwarding import bridged, upstream_request
from routing.forwarding import response as respond
from routing.forwarding.call import Call
from routing.forwarding.upstream_request import Target, UpstreamRequest
from routing.policy import strip_encrypted_reasoning
from routing.resilience import limits, load
from routing.resilience.breaker import breaker
from routing.upstream.relay import Answer, UpstreamFailure, open_upstream

MAX_RETRY_WAIT = 10.0  # never sleep longer than this before retrying the same deployment
_rng = random.Random()


class Unanswered:
    """What a group's attempts ended with when none gave a final answer."""

    __slots__ = ("failure", "answer", "dep", "request", "limited", "refused")

    def __init__(self) -> None:
        self.failure: UpstreamFailure | None = None
        self.answer: Answer | None = None  # the last retryable upstream answer, passed through if nothing better
        self.dep: DeploymentSnap | None = None  # ... the deployment that gave it, and what it was sent
        self.request: UpstreamRequest | None = None
        self.limited: limits.Limited | None = None
        self.refused: errors.CannotBridge | None = None  # a deployment the bridge could not serve this call on


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


async def attempt_group(call: Call, group: GroupSnap, candidates: list[DeploymentSnap], target: Target,
                        forwarded: dict[str, str], left: Unanswered) -> HttpResponseBase | None:
    rec = call.record
    previous: DeploymentSnap | None = None
    retry_after: float | None = None
    calls = 0
    while calls < group.max_attempts:
        dep = _next_usable(candidates, calls)
        if dep is None:
            return None
        request = build_request(call, group, dep, target, forwarded, left)
        if request is None:
            candidates = [c for c in candidates if c.id != dep.id]
            continue
        if dep.rpm or dep.tpm:
            try:
                await limits.limiter().hit(f"dep:{dep.id}", dep.rpm, dep.tpm)
            except limits.Limited as exc:
                left.limited = exc
                rec.attempts.append(_entry(dep, None, "deployment_rate_limited", 0.0, []))
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
            answer = await attempt(call, group, dep, target, request, left)
            if answer is RETRY_WITHOUT_REASONING:
                answer = await attempt(call, group, dep, target, _without_reasoning(dep, target, forwarded), left)
        except BaseException:
            breaker.release(dep.id)  # an abandoned probe must not hold the deployment
            raise
        if answer is not None:
            return answer
        if left.answer is not None:
            retry_after = retry_after_seconds(left.answer.headers)
    return None


def build_request(call: Call, group: GroupSnap, dep: DeploymentSnap, target: Target, forwarded: dict[str, str],
                  left: Unanswered) -> UpstreamRequest | None:
    """The request for `dep`; None (a failed attempt) when the deployment's own settings make it
    unbuildable. A policy `reject` rule raises: that is the client's 400."""
    try:
        return upstream_request.build(dep, target, forwarded)
    except errors.CannotBridge as exc:
        left.refused = exc
        return None
    except errors.GatewayError:
        raise
    except Exception as exc:
        _failed(call, group, dep, UpstreamFailure("deployment_misconfigured", f"request not buildable: {exc}"),
                0.0, left)
        return None


def _next_usable(candidates: list[DeploymentSnap], attempt_no: int) -> DeploymentSnap | None:
    usable = [d for d in candidates if breaker.usable(d.id)]
    return usable[attempt_no % len(usable)] if usable else None


RETRY_WITHOUT_REASONING = object()


def _undecryptable_reasoning(target: Target, answer: Answer) -> bool:
    """Encrypted reasoning from another resource is refused with a 400 (or 404 "item not found")."""
    if answer.status not in (400, 404) or target.body is None:
        return False
    if strip_encrypted_reasoning(target.body).body is target.body:
        return False
    text = answer.content[:2000].lower()
    return b"encrypted" in text or b"decrypt" in text or (b"item with id" in text and b"not found" in text)


def _without_reasoning(dep: DeploymentSnap, target: Target, forwarded: dict[str, str]) -> UpstreamRequest:
    stripped = strip_encrypted_reasoning(target.body)
    variant = replace(target, body=stripped.body, raw=orjson.dumps(stripped.body))
    request = upstream_request.build(dep, variant, forwarded)
    return replace(request, changes=stripped.changes + request.changes)


async def attempt(call: Call, group: GroupSnap, dep: DeploymentSnap, target: Target, request: UpstreamRequest,
                  left: Unanswered, peers: tuple[int, ...] | None = None):
    """One upstream call: the final response, None (try the next), or RETRY_WITHOUT_REASONING.
    `peers`: the deployments of the group `dep` serves in (default: `group`'s), for the breaker."""
    peers = peers if peers is not None else tuple(d.id for d in group.deployments)
    rec = call.record
    load.stats.started(dep.id)
    started = time.perf_counter()
    try:
        answer = await open_upstream(dep, request.method, request.url, request.headers, request.content,
                                     stream=target.stream)
    except asyncio.CancelledError:
        load.stats.finished(dep.id)
        raise
    except UpstreamFailure as failure:
        load.stats.finished(dep.id)
        seconds = time.perf_counter() - started
        call.upstream_seconds += seconds
        _failed(call, group, dep, failure, seconds, left, request.changes, peers)
        return None
    call.upstream_seconds += answer.seconds
    status = answer.status
    rec.attempts.append(_entry(dep, status, "", answer.seconds, request.changes))
    if status in group.retry_on:
        load.stats.finished(dep.id)
        wait = retry_after_seconds(answer.headers)
        _breaker_failure(call, group, dep, f"HTTP {status}", peers, retry_after=wait if status == 429 else None)
        left.answer, left.dep, left.request, left.failure = answer, dep, request, None
        return None
    if status in (401, 403):
        load.stats.finished(dep.id)
        error = f"HTTP {status}: the upstream refused this deployment's credentials"
        breaker.auth_failure(dep.id, error)
        rec.attempts[-1]["error"] = "upstream_auth_failed"
        _breaker_failure(call, group, dep, error, peers)
        left.failure, left.answer, left.dep, left.request = UpstreamFailure("upstream_auth_failed", error), None, None, None
        return None
    if request.bridge is None and _undecryptable_reasoning(target, answer):
        load.stats.finished(dep.id)
        rec.attempts[-1]["error"] = "encrypted_reasoning_refused; retrying without it"
        return RETRY_WITHOUT_REASONING
    if status < 500:
        breaker.success(dep.id)
    load.stats.observe_ttfb(dep.id, answer.seconds)
    note_served(call, dep, status, answer, request)
    if dep.tpm:
        call.token_scopes.append(f"dep:{dep.id}")
    if answer.stream is not None:
        shaper = None
        if request.bridge is not None:
            shaper = bridged.BridgeStream(request.bridge, target.body, dep, rec.group_name)
        elif request.hide_usage:
            shaper = bridged.UsageFilter()
        return respond.stream(call, dep, answer, endpoint=target.endpoint, shaper=shaper,
                              on_end=lambda d, failure: _breaker_failure(call, group, d, failure.kind, peers)
                              if failure else None)
    try:
        if request.bridge is not None and 200 <= status < 300:
            return await bridged.plain(call, answer, dep, request.bridge, target.body)
        return respond.plain(call, answer, endpoint=target.endpoint, dep=dep)
    finally:
        load.stats.finished(dep.id)


def note_served(call: Call, dep: DeploymentSnap, status: int, answer: Answer, request: UpstreamRequest) -> None:
    rec = call.record
    rec.deployment_id, rec.deployment_name, rec.provider = dep.id, dep.name, dep.provider
    rec.served_group = dep.group_name if dep.group_name != rec.group_name else ""
    rec.upstream_status = status
    rec.upstream_request_id = answer.headers.get("x-request-id", "") or answer.headers.get("apim-request-id", "")
    rec.policy_changes = list(request.changes)


def _failed(call: Call, group: GroupSnap, dep: DeploymentSnap, failure: UpstreamFailure, seconds: float,
            left: Unanswered, changes: list | None = None, peers: tuple[int, ...] | None = None) -> None:
    call.record.attempts.append(_entry(dep, None, failure.kind, seconds, changes or []))
    _breaker_failure(call, group, dep, failure.kind, peers if peers is not None else
                     tuple(d.id for d in group.deployments))
    left.failure, left.answer, left.dep, left.request = failure, None, None, None


def _breaker_failure(call: Call, group: GroupSnap, dep: DeploymentSnap, error: str, peers: tuple[int, ...],
                     retry_after: float | None = None) -> None:
    breaker.failure(dep.id, error, threshold=group.cooldown_failures, window=group.cooldown_window,
                    cooldown=group.cooldown_seconds, retry_after=retry_after, request_id=call.request_id,
                    peers=peers)


def _entry(dep: DeploymentSnap, status: int | None, error: str, seconds: float, changes: list) -> dict:
    entry = {"deployment_id": dep.id, "deployment": dep.name, "group": dep.group_name, "status": status,
             "error": error, "ms": round(seconds * 1000, 3)}
    if changes:
        entry["policy_changes"] = changes
    return entry


def give_up(call: Call, group: GroupSnap, left: Unanswered) -> HttpResponseBase:
    """Every attempt of every group failed: pass the last upstream answer through, or explain."""
    rec = call.record
    if left.refused is not None and left.answer is None and left.failure is None and left.limited is None:
        raise left.refused  # no deployment that could take the call was even tried
    if left.answer is not None:
        rec.error_type = rec.error_type or f"upstream_{left.answer.status}"
        note_served(call, left.dep, left.answer.status, left.answer, left.request)
        return respond.plain(call, left.answer, endpoint=rec.endpoint, dep=left.dep)
    if left.failure is not None:
        rec.error_type, rec.error_message = left.failure.kind, left.failure.detail  # the detail stays in the log
        make = errors.upstream_timeout if left.failure.timeout else errors.upstream_unreachable
        raise make(left.failure.kind)
    if left.limited is not None:
        raise errors.rate_limited(f"Every deployment of model '{group.name}' is at its rate limit.",
                                  left.limited.retry_after)
    raise errors.no_deployment(group.name, breaker.seconds_until_usable(d.id for d in group.deployments))
