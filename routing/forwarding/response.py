"""Turning an upstream answer into the client's response: JSON as Django's HttpResponse,
an event stream as a StreamingHttpResponse relayed event by event.

Streams: `SseResponse` is a `StreamingHttpResponse` over the async generator
`_Relay.pump()`, which yields whole SSE frames as they arrive from the upstream. Its
`__aiter__` hands that generator to the ASGI handler directly: Django's default wraps it
in two more generators, and the handler's `aclosing()` then closes only the outer one,
leaving ours (and with it the upstream connection and the log row) to the garbage
collector. Here closing the response iterator closes the upstream call at once. A shaper
(forwarding/bridged.py) may stand between the upstream's frames and the client: the Chat
bridge's translation to Responses events, or a chat stream minus a usage chunk the gateway
asked for; it also says whether the stream ended properly and how a broken one ends.

How a stream ends, and what the log row says (`outcome`):
- completed: the upstream's terminal event (or `[DONE]`) went out;
- broken_midstream: the upstream failed after the first byte; the client gets a
  well-formed `error` event (nested and flat fields, as OpenAI and Azure send it) and,
  on the Responses API, `response.failed`, then the stream ends cleanly;
- client_disconnected (499): the client went away; the upstream call is closed;
- shutdown: the server's shutdown grace ran out; the client gets the same error events.
"""

import asyncio

import orjson
from django.http import HttpResponse, StreamingHttpResponse

from routing.config.snapshots import DeploymentSnap
from routing.forwarding import affinity
from routing.forwarding.call import Call, copy_upstream_headers, json_response
from routing.models import Outcome
from routing.resilience import load
from routing.upstream import sse
from routing.upstream.rejections import rejected_param
from routing.upstream.relay import Answer, UpstreamFailure, read_frames
from routing.upstream.usage import from_payload

# Endpoints whose successful answers are Response objects worth remembering (id → deployment).
_REMEMBER = frozenset({"responses", "responses.get", "responses.cancel"})
_cleanup: set[asyncio.Task] = set()


def plain(call: Call, answer: Answer, *, endpoint: str, dep: DeploymentSnap) -> HttpResponse:
    """A complete answer (2xx or an upstream error passed through), bytes as they came."""
    content, rec = answer.content, call.record
    out = json_response(content, answer.status, answer.headers.get("content-type", "application/json"))
    copy_upstream_headers(answer.headers, out, keep_encoding=answer.encoded)
    rec.bytes_out = len(content)
    rec.ttfb_ms = call.elapsed_ms()  # the whole answer goes out at once
    payload = None
    if content[:1] == b"{" and not answer.encoded:
        try:
            payload = orjson.loads(content)
        except orjson.JSONDecodeError:
            pass
    if isinstance(payload, dict):
        _record_payload(call, payload, answer.status, endpoint, dep)
    elif answer.status >= 400:
        rec.error_type = rec.error_type or f"upstream_{answer.status}"
        rec.error_message = rec.error_message or content[:500].decode("utf-8", "replace")
    call.done(answer.status)
    return call.headers(out)


def _record_payload(call: Call, payload: dict, status: int, endpoint: str, dep: DeploymentSnap) -> None:
    rec = call.record
    found = from_payload(payload)
    if found is not None:
        call.usage(found)
    if status >= 400:
        err = payload.get("error")
        if isinstance(err, dict):
            rec.error_type = rec.error_type or str(err.get("code") or err.get("type") or f"upstream_{status}")
            rec.error_message = rec.error_message or str(err.get("message") or "")
        else:
            rec.error_type = rec.error_type or f"upstream_{status}"
        rec.rejected_param = rejected_param(status, payload)
    elif isinstance(payload.get("id"), str):
        rec.response_id = payload["id"]
        if endpoint in _REMEMBER and payload.get("object") == "response":
            affinity.remember(payload["id"], dep)
            rec.remember_response = True
        rec.reasoning_ids = affinity.remember_reasoning(payload.get("output"), dep)


class SseResponse(StreamingHttpResponse):
    """A relayed event stream (see the module docstring for why `__aiter__` and `close`)."""

    def __init__(self, relay: "_Relay", *, status: int, content_type: str) -> None:
        super().__init__(relay.pump(), status=status, content_type=content_type)
        self.relay = relay

    def __aiter__(self):
        return self._iterator

    def close(self) -> None:
        super().close()
        self.relay.abandon()


def stream(call: Call, dep: DeploymentSnap, answer: Answer, *, endpoint: str, on_end, shaper=None) -> SseResponse:
    """`shaper` (forwarding/bridged.py) reshapes the frames: the bridge's Chat-to-Responses events,
    or a chat stream minus the usage chunk the gateway asked for; None relays them as they are."""
    relay = _Relay(call, dep, answer, endpoint, on_end, shaper)
    out = SseResponse(relay, status=answer.status,
                      content_type=answer.headers.get("content-type", "text/event-stream"))
    copy_upstream_headers(answer.headers, out, keep_encoding=answer.encoded)
    out["Cache-Control"] = "no-cache"
    out["X-Accel-Buffering"] = "no"
    return call.headers(out)


class _Relay:
    """One relayed stream. `pump()` yields frames; `abandon()` cleans up a stream whose
    consumer went away before it ever started (a never-started generator has no `finally`)."""

    def __init__(self, call: Call, dep: DeploymentSnap, answer: Answer, endpoint: str, on_end, shaper=None) -> None:
        self.call, self.dep, self.answer, self.endpoint, self.on_end = call, dep, answer, endpoint, on_end
        self.shaper = shaper
        self.tap = sse.SseTap(track_items=endpoint == "responses")
        self.failure: UpstreamFailure | None = None
        self.started = False
        self.client_gone = False  # set by the API handler when the client disconnects
        self.loop = asyncio.get_running_loop()

    async def pump(self):
        self.started = True
        call, rec, tap = self.call, self.call.record, self.tap
        deadline = self.loop.time() + self.dep.total_timeout - call.upstream_seconds
        try:
            try:
                frames_in = read_frames(self.answer, tap, self.dep.idle_timeout, deadline)
                if self.shaper is not None:
                    frames_in = self.shaper.relay(frames_in, self.answer)
                async for frames in frames_in:
                    if not rec.bytes_out:
                        rec.ttfb_ms = call.elapsed_ms()
                    rec.bytes_out += len(frames)
                    yield frames
                if not (tap.finished if self.shaper is None else self.shaper.done(tap)) and not self.answer.encoded:
                    raise UpstreamFailure("stream_truncated", "the upstream ended the stream before its final event")
            except UpstreamFailure as exc:
                self.failure = exc
                rec.error_type, rec.error_message = exc.kind, exc.detail
                rec.outcome = Outcome.BROKEN_MIDSTREAM.value
                yield self._tail(exc)
            except asyncio.CancelledError as exc:
                if self.client_gone or not _is_shutdown(exc):
                    raise
                asyncio.current_task().uncancel()  # the server's shutdown grace ran out: end the stream properly
                rec.error_type, rec.outcome = "server_shutdown", Outcome.SHUTDOWN.value
                rec.error_message = "the gateway shut down before the stream ended"
                yield self._tail(UpstreamFailure("server_shutdown", "the gateway is shutting down"))
        except BaseException as exc:  # the client went away (CancelledError) or the response was closed
            if rec.outcome != Outcome.SHUTDOWN.value:
                self._client_gone(shutdown=_is_shutdown(exc) and not self.client_gone)
            raise
        finally:
            await self._finish()

    def _tail(self, failure: UpstreamFailure) -> bytes:
        tail = self.shaper.tail(failure) if self.shaper is not None else None
        if tail is None:
            tail = stream_error_frames(self.tap, self.endpoint, failure)
        self.call.record.bytes_out += len(tail)
        return tail

    def abandon(self) -> None:
        """Called when the response is closed; a stream never iterated is cleaned up here (from
        any thread: Django's stock handler closes responses in a worker thread)."""
        if self.started:
            return
        self.started = True

        def start() -> None:
            self._client_gone(shutdown=False)
            task = self.loop.create_task(self._finish())
            _cleanup.add(task)
            task.add_done_callback(_cleanup.discard)

        if _running_loop() is self.loop:
            start()
        else:
            self.loop.call_soon_threadsafe(start)

    def _client_gone(self, *, shutdown: bool) -> None:
        rec = self.call.record
        if shutdown:
            rec.outcome, rec.error_type = Outcome.SHUTDOWN.value, rec.error_type or "server_shutdown"
            rec.error_message = rec.error_message or "the gateway shut down before the stream ended"
            return
        rec.client_disconnected = True
        rec.error_type = rec.error_type or "client_disconnected"
        rec.error_message = rec.error_message or f"client disconnected after {rec.bytes_out} bytes"

    async def _finish(self) -> None:
        call, rec, tap, dep = self.call, self.call.record, self.tap, self.dep
        try:
            await self.answer.aclose()
        except Exception:  # the connection is being dropped anyway
            pass
        load.stats.finished(dep.id)
        if tap.usage is not None:
            call.usage(tap.usage)
        if tap.response_id:
            rec.response_id = tap.response_id
            if self.endpoint == "responses" and tap.response_id.startswith("resp"):
                affinity.remember(tap.response_id, dep)
                rec.remember_response = True
        if tap.reasoning_ids:
            rec.reasoning_ids = affinity.remember_reasoning(
                [{"type": "reasoning", "id": i} for i in tap.reasoning_ids], dep)
        if tap.error and not rec.error_type:
            rec.error_type, rec.error_message = "upstream_stream_error", tap.error
        if self.shaper is not None:
            self.shaper.settle(call)
        self.on_end(dep, self.failure)
        call.done(499 if rec.client_disconnected else self.answer.status)


def _running_loop():
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _is_shutdown(exc: BaseException) -> bool:
    """uvicorn cancels what is still running when the shutdown grace is over, with this message."""
    return isinstance(exc, asyncio.CancelledError) and "shutdown" in str(exc)


def stream_error_frames(tap: sse.SseTap, endpoint: str, failure: UpstreamFailure) -> bytes:
    """A well-formed end for a stream that failed after the first byte. The message names
    the failure kind, never the upstream's address (that stays in the log row)."""
    message = {"server_shutdown": "The gateway is shutting down; the stream was cut."}.get(
        failure.kind, f"The upstream stream failed ({failure.kind}).")
    error = {"type": "api_error", "code": failure.kind, "message": message, "param": None}
    if endpoint == "chat":
        return b"data: " + orjson.dumps({"error": error}) + b"\n\n"
    seq = tap.events
    frames = sse.frame("error", {"type": "error", "sequence_number": seq, "code": failure.kind,
                                 "message": message, "param": None, "error": error})
    if tap.response_id:
        frames += sse.frame("response.failed", {
            "type": "response.failed", "sequence_number": seq + 1,
            "response": {"id": tap.response_id, "object": "response", "status": "failed", "model": tap.model,
                         "error": {"code": "server_error", "message": message}, "output": [], "usage": None},
        })
    return frames
