"""Turning an upstream response into the client's response (JSON or relayed SSE)."""

import asyncio

import orjson

from routing.config.snapshots import DeploymentSnap
from routing.forwarding import affinity
from routing.forwarding.call import Call, copy_upstream_headers
from routing.http import Response
from routing.models import Outcome
from routing.resilience import load
from routing.upstream import sse
from routing.upstream.client import UpstreamResponse
from routing.upstream.relay import UpstreamFailure, read_frames
from routing.upstream.usage import from_payload

# Endpoints whose successful answers are Response objects worth remembering (id → deployment).
_REMEMBER = frozenset({"responses", "responses.get", "responses.cancel"})


def plain(call: Call, response: UpstreamResponse, *, endpoint: str, dep: DeploymentSnap) -> Response:
    content = response.content  # read whole by relay.open_upstream
    rec = call.record
    out = Response(content, status=response.status_code,
                   content_type=response.headers.get("content-type", "application/json"))
    copy_upstream_headers(response.headers, out)
    rec.bytes_out = len(content)
    rec.ttfb_ms = call.elapsed_ms()  # the whole answer goes out at once
    if content[:1] == b"{":
        try:
            payload = orjson.loads(content)
        except orjson.JSONDecodeError:
            payload = None
        if isinstance(payload, dict):
            _record_payload(call, payload, response.status_code, endpoint, dep)
    call.done(response.status_code)
    return call.headers(out)


def _record_payload(call: Call, payload: dict, status: int, endpoint: str, dep: DeploymentSnap) -> None:
    rec = call.record
    found = from_payload(payload)
    if found is not None:
        call.usage(found)
    if status >= 400:
        err = payload.get("error")
        if isinstance(err, dict):
            rec.error_type = str(err.get("code") or err.get("type") or "upstream_error")[:100]
            rec.error_message = str(err.get("message") or "")
    elif isinstance(payload.get("id"), str):
        rec.response_id = payload["id"]
        if endpoint in _REMEMBER and payload.get("object") == "response":
            affinity.remember(payload["id"], dep.id)
            rec.remember_response = True
        rec.reasoning_ids = affinity.remember_reasoning(payload.get("output"), dep.id)


def stream(call: Call, dep: DeploymentSnap, response: UpstreamResponse, *, endpoint: str, on_end) -> Response:
    relay = _Relay(call, dep, response, endpoint, on_end)
    out = Response(status=response.status_code, stream=relay.pump(),
                   content_type=response.headers.get("content-type", "text/event-stream"))
    out.abandon = relay.abandon
    copy_upstream_headers(response.headers, out)
    out["cache-control"] = "no-cache"
    out["x-accel-buffering"] = "no"
    return call.headers(out)


class _Relay:
    """One relayed stream. `pump()` yields frames; `abandon()` is the cleanup for a stream
    whose consumer went away before it ever started (a never-started generator has no
    `finally` to run)."""

    def __init__(self, call: Call, dep: DeploymentSnap, response: UpstreamResponse, endpoint: str, on_end) -> None:
        self.call, self.dep, self.response, self.endpoint, self.on_end = call, dep, response, endpoint, on_end
        self.tap = sse.SseTap(track_items=endpoint == "responses")
        self.failure: UpstreamFailure | None = None
        self.started = False

    async def pump(self):
        self.started = True
        call, rec, tap = self.call, self.call.record, self.tap
        deadline = asyncio.get_running_loop().time() + self.dep.total_timeout - call.upstream_seconds
        try:
            try:
                async for frames in read_frames(self.response, tap, self.dep.idle_timeout, deadline):
                    if not rec.bytes_out:
                        rec.ttfb_ms = call.elapsed_ms()
                    rec.bytes_out += len(frames)
                    yield frames
                if not tap.finished:
                    raise UpstreamFailure("stream_truncated", "the upstream ended the stream before its final event")
            except UpstreamFailure as exc:
                self.failure = exc
                rec.error_type, rec.error_message = exc.kind, exc.detail
                rec.outcome = Outcome.BROKEN_MIDSTREAM.value
                tail = stream_error_frames(tap, self.endpoint, exc)
                rec.bytes_out += len(tail)
                yield tail
        except BaseException:  # the client went away: cancelled (CancelledError) or closed (GeneratorExit)
            self._client_gone()
            raise
        finally:
            await self._finish()

    async def abandon(self) -> None:
        if not self.started:
            self.started = True
            self._client_gone()
            await self._finish()

    def _client_gone(self) -> None:
        rec = self.call.record
        rec.client_disconnected = True
        rec.error_type = rec.error_type or "client_disconnected"
        rec.error_message = rec.error_message or f"client disconnected after {rec.bytes_out} bytes"

    async def _finish(self) -> None:
        call, rec, tap, dep = self.call, self.call.record, self.tap, self.dep
        self.response.close()
        load.stats.finished(dep.id)
        if tap.usage is not None:
            call.usage(tap.usage)
        if tap.response_id:
            rec.response_id = tap.response_id
            if self.endpoint == "responses" and tap.response_id.startswith("resp"):
                affinity.remember(tap.response_id, dep.id)
                rec.remember_response = True
        if tap.reasoning_ids:
            rec.reasoning_ids = affinity.remember_reasoning(
                [{"type": "reasoning", "id": i} for i in tap.reasoning_ids], dep.id)
        if tap.error and not rec.error_type:
            rec.error_type, rec.error_message = "upstream_stream_error", tap.error
        self.on_end(dep, self.failure)
        call.done(499 if rec.client_disconnected else self.response.status_code)


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

