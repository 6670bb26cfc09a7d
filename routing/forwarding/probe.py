"""The admin's Test action: one minimal request to one deployment through the real forwarding path.

`probe_deployment` sends what a client would (default: a Responses call of 16 tokens at most), through the
deployment's policy, provider URL and credentials, the upstream client and the response handling, with no
failover: the answer is that deployment's. The call is audited like any request (key name "admin-test"), and
its outcome counts toward the deployment's health as live traffic would (a 401 marks it, a dead upstream
cools it down). Someone is waiting on the page, so the deployment's timeouts are capped (MAX_TIMEOUTS).
"""

import time
from dataclasses import dataclass, replace

import orjson

from routing.config import route_table
from routing.config.snapshots import DeploymentSnap
from routing.errors import GatewayError
from routing.forwarding.call import Call
from routing.forwarding.model_call import call_deployment
from routing.forwarding.upstream_request import Target

PROBE_KEY_NAME = "admin-test"
ANSWER_LIMIT = 4000  # characters of the upstream's answer kept for the page
# A person is waiting on the page: the deployment's own timeouts, but never longer than these.
MAX_TIMEOUTS = {"connect_timeout": 10.0, "first_byte_timeout": 30.0, "idle_timeout": 30.0, "total_timeout": 60.0}


@dataclass(frozen=True, slots=True)
class ProbeResult:
    status: int  # what a client would have received
    upstream_status: int | None  # what the upstream answered; None: nothing (refused, timed out, policy reject)
    latency_ms: float
    answer: str  # the body (truncated), or the gateway's error
    error_type: str
    error_message: str
    request_id: str  # the RequestLog row this test wrote

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


def default_body(group_name: str) -> dict:
    return {"model": group_name, "input": "ping", "max_output_tokens": 16}


async def probe_deployment(dep: DeploymentSnap, *, body: dict | None = None) -> ProbeResult:
    body = body if body is not None else default_body(dep.group_name)
    dep = replace(dep, **{name: min(getattr(dep, name), cap) for name, cap in MAX_TIMEOUTS.items()})
    raw = orjson.dumps(body)
    call = Call("POST", "responses", "/v1/responses")
    call.record.key_name = PROBE_KEY_NAME
    call.record.group_name = dep.group_name
    target = Target("POST", "responses", "responses", "", raw, body, False)
    started = time.perf_counter()
    try:
        snapshot = await route_table.table.get()
        response = await call_deployment(call, dep, snapshot, target, {})
    except GatewayError as exc:  # unreachable, timed out, a policy reject: logged as the API would
        response = call.fail(exc)
    elapsed = (time.perf_counter() - started) * 1000
    rec = call.record
    content = response.content if isinstance(response.content, bytes) else b""
    upstream_status = rec.upstream_status
    if upstream_status is None and rec.attempts:  # answered, but not passed on (a 401/403 becomes a 502)
        upstream_status = rec.attempts[-1].get("status")
    return ProbeResult(status=response.status_code, upstream_status=upstream_status,
                       latency_ms=rec.latency_ms if rec.latency_ms is not None else elapsed,
                       answer=content[:ANSWER_LIMIT].decode("utf-8", "replace"), error_type=rec.error_type,
                       error_message=rec.error_message[:ANSWER_LIMIT], request_id=call.request_id)
