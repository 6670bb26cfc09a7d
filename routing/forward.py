"""Forwarding one model call: pick deployments, apply the policy, call, relay, log.

The upstream receives the client's body, the `model` rewrite, and exactly the changes
the deployment's policy lists (all recorded in the log row); when nothing changed the
client's original bytes are forwarded. Failover to the next candidate happens only
before anything has been sent to the client.
"""

import random

import httpx
import orjson
from django.http import HttpResponse, StreamingHttpResponse

from . import affinity, errors, health, providers, router, sse
from .calls import Call, copy_upstream_headers
from .policy import PolicyRejected, apply_policy
from .relay import UpstreamFailure, open_upstream, read_frames
from .snapshots import DeploymentSnap, GroupSnap

RETRYABLE_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504})
FORWARDED_CLIENT_HEADERS = (("HTTP_OPENAI_BETA", "openai-beta"), ("HTTP_X_CLIENT_REQUEST_ID", "x-client-request-id"))
_rng = random.Random()


def upstream_headers(dep: DeploymentSnap, meta: dict, *, stream: bool, has_body: bool) -> dict[str, str]:
    headers = {"accept": "text/event-stream" if stream else "application/json"}
    if has_body:
        headers["content-type"] = "application/json"
    if stream:
        headers["accept-encoding"] = "identity"  # frames must arrive as they are produced
    for meta_name, name in FORWARDED_CLIENT_HEADERS:
        if meta_name in meta:
            headers[name] = meta[meta_name]
    headers.update(providers.get(dep.provider).auth_headers(dep))
    return headers


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


def _attempt_entry(dep: DeploymentSnap, status: int | None, error: str, seconds: float) -> dict:
    return {"deployment_id": dep.id, "deployment": dep.name, "status": status, "error": error,
            "ms": round(seconds * 1000, 3)}


def _note_served(call: Call, dep: DeploymentSnap) -> None:
    rec = call.record
    rec.deployment_id, rec.deployment_name, rec.provider = dep.id, dep.name, dep.provider


async def model_call(call: Call, group: GroupSnap, raw: bytes, body: dict, *, op_path: str, endpoint: str,
                     query: str, meta: dict):
    """POST a model call (responses, chat, compact, input_tokens) through the group."""
    stream = body.get("stream") is True
    call.record.stream = stream
    prefer = None
    prev = body.get("previous_response_id")
    if isinstance(prev, str) and prev:
        prefer = await affinity.lookup(prev)
    candidates = router.order_candidates(group, rng=_rng, inflight=health.stats.inflight,
                                         ttfb=health.stats.ttfb, prefer=prefer)
    if endpoint == "compact":
        candidates = [d for d in candidates if d.supports_compact]
    if not candidates:
        raise errors.no_deployment(group.name)
    return await _try_candidates(call, candidates[: group.max_attempts], raw, body, op_path=op_path,
                                 endpoint=endpoint, query=query, meta=meta, stream=stream)


async def _try_candidates(call: Call, candidates: list[DeploymentSnap], raw: bytes | None, body: dict | None, *,
                          op_path: str, endpoint: str, query: str, meta: dict, stream: bool, method: str = "POST"):
    rec = call.record
    last: Exception | httpx.Response | None = None
    for i, dep in enumerate(candidates):
        is_last = i == len(candidates) - 1
        content, changes = raw, []
        if body is not None:
            try:
                content, changes = prepare_body(dep, raw, body, endpoint=endpoint, stream=stream)
            except PolicyRejected as exc:
                raise errors.GatewayError(400, exc.message, code="unsupported_parameter", param=exc.param) from None
        url = providers.get(dep.provider).url(dep, op_path, query)
        headers = upstream_headers(dep, meta, stream=stream, has_body=content is not None)
        health.stats.started(dep.id)
        try:
            sent = await open_upstream(dep, method, url, headers, content, stream=stream)
        except UpstreamFailure as failure:
            health.stats.finished(dep.id)
            call.upstream_seconds += 0  # time lost to a failed attempt is the upstream's, not ours
            rec.attempts.append(_attempt_entry(dep, None, failure.kind, 0.0))
            last = failure
            continue
        call.upstream_seconds += sent.seconds
        response = sent.response
        rec.attempts.append(_attempt_entry(dep, response.status_code, "", sent.seconds))
        if response.status_code in RETRYABLE_STATUS and not is_last:
            health.stats.finished(dep.id)
            await response.aclose()
            last = response
            continue
        health.stats.observe_ttfb(dep.id, sent.seconds)
        _note_served(call, dep)
        rec.policy_changes = changes
        rec.upstream_status = response.status_code
        rec.upstream_request_id = response.headers.get("x-request-id", "") or response.headers.get("apim-request-id", "")
        if stream and response.status_code < 300 and "text/event-stream" in response.headers.get("content-type", ""):
            return _stream_response(call, dep, response, endpoint=endpoint)
        try:
            return await _plain_response(call, response, endpoint=endpoint, dep=dep)
        finally:
            health.stats.finished(dep.id)
    if isinstance(last, UpstreamFailure):
        rec.error_type = last.kind
        raise (errors.upstream_timeout if last.timeout else errors.upstream_unreachable)(last.detail)
    raise errors.no_deployment(rec.group_name)


async def _plain_response(call: Call, response: httpx.Response, *, endpoint: str, dep: DeploymentSnap):
    content = await response.aread()
    rec = call.record
    out = HttpResponse(content, status=response.status_code,
                       content_type=response.headers.get("content-type", "application/json"))
    copy_upstream_headers(response.headers, out)
    out["content-length"] = str(len(content))
    rec.bytes_out = len(content)
    if content[:1] == b"{":
        try:
            payload = orjson.loads(content)
        except orjson.JSONDecodeError:
            payload = None
        if isinstance(payload, dict):
            _record_payload(rec, payload, response.status_code, endpoint, dep)
    call.done(response.status_code)
    return call.headers(out)


def _record_payload(rec, payload: dict, status: int, endpoint: str, dep: DeploymentSnap) -> None:
    from .usage import from_payload

    found = from_payload(payload)
    if found is not None:
        _set_usage(rec, found)
    if status >= 400:
        err = payload.get("error")
        if isinstance(err, dict):
            rec.error_type = str(err.get("code") or err.get("type") or "upstream_error")[:100]
            rec.error_message = str(err.get("message") or "")
    elif isinstance(payload.get("id"), str):
        rec.response_id = payload["id"]
        if endpoint in ("responses", "responses.get", "responses.cancel") and payload.get("object") == "response":
            affinity.remember(payload["id"], dep.id)
            rec.remember_response = True


def _set_usage(rec, found) -> None:
    rec.input_tokens, rec.output_tokens, rec.total_tokens = found.input_tokens, found.output_tokens, found.total_tokens
    rec.cached_tokens, rec.reasoning_tokens = found.cached_tokens, found.reasoning_tokens


def _stream_response(call: Call, dep: DeploymentSnap, response: httpx.Response, *, endpoint: str):
    out = StreamingHttpResponse(_pump(call, dep, response, endpoint=endpoint), status=response.status_code,
                                content_type=response.headers.get("content-type", "text/event-stream"))
    copy_upstream_headers(response.headers, out)
    out["cache-control"] = "no-cache"
    out["x-accel-buffering"] = "no"
    return call.headers(out)


async def _pump(call: Call, dep: DeploymentSnap, response: httpx.Response, *, endpoint: str):
    rec = call.record
    tap = sse.SseTap()
    status = response.status_code
    try:
        try:
            async for frames in read_frames(response, tap, dep.idle_timeout):
                if not rec.bytes_out:
                    rec.ttfb_ms = call.elapsed_ms()
                rec.bytes_out += len(frames)
                yield frames
            if not tap.finished:
                raise UpstreamFailure("stream_truncated", "the upstream ended the stream before its final event")
        except UpstreamFailure as failure:
            rec.error_type, rec.error_message = failure.kind, failure.detail
            tail = stream_error_frames(tap, endpoint, failure)
            rec.bytes_out += len(tail)
            yield tail
    except BaseException:  # client went away: Django cancels us (CancelledError) or closes us (GeneratorExit)
        rec.client_disconnected = True
        rec.error_type = rec.error_type or "client_disconnected"
        rec.error_message = rec.error_message or f"client disconnected after {rec.bytes_out} bytes"
        raise
    finally:
        await response.aclose()
        health.stats.finished(dep.id)
        if tap.usage is not None:
            _set_usage(rec, tap.usage)
        if tap.response_id:
            rec.response_id = tap.response_id
            if endpoint == "responses" and tap.response_id.startswith("resp"):
                affinity.remember(tap.response_id, dep.id)
                rec.remember_response = True
        if tap.error and not rec.error_type:
            rec.error_type, rec.error_message = "upstream_stream_error", tap.error
        call.done(499 if rec.client_disconnected else status)


def stream_error_frames(tap: sse.SseTap, endpoint: str, failure: UpstreamFailure) -> bytes:
    """A well-formed end for a stream whose upstream failed after the first byte."""
    error = {"type": "api_error", "code": failure.kind, "message": f"Upstream stream failed: {failure.detail}",
             "param": None}
    if endpoint == "chat":
        return b"data: " + orjson.dumps({"error": error}) + b"\n\n"
    seq = tap.events
    frames = sse.frame("error", {"type": "error", "sequence_number": seq, "code": failure.kind,
                                 "message": error["message"], "param": None, "error": error})
    if tap.response_id:
        frames += sse.frame("response.failed", {
            "type": "response.failed", "sequence_number": seq + 1,
            "response": {"id": tap.response_id, "object": "response", "status": "failed", "model": tap.model,
                         "error": {"code": "server_error", "message": error["message"]}, "output": [],
                         "usage": None},
        })
    return frames
