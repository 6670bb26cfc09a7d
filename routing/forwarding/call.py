"""One client request's bookkeeping: ids, timings, the log record, response headers.

`Call` follows a request from arrival to its log row. Overhead is the time spent in
the gateway minus the time spent waiting for the upstream. Every answer the gateway
gives, its own errors included, goes out with the `x-gateway-*` headers and ends in
exactly one `done()`, which queues the log row.
"""

import asyncio
import time
import uuid
from datetime import datetime, timezone

from django.http import HttpResponse, HttpResponseBase

from routing.audit.logwriter import LogRecord, writer
from routing.errors import GatewayError
from routing.models import Outcome
from routing.resilience import limits
from routing.upstream.usage import Usage

# Upstream response headers never relayed: hop-by-hop, or recomputed for our body.
DROP_RESPONSE_HEADERS = frozenset({
    "connection", "keep-alive", "transfer-encoding", "content-length", "content-encoding", "server", "date",
    "set-cookie", "proxy-authenticate", "trailer", "upgrade", "alt-svc", "strict-transport-security",
    "content-type",  # set from the answer when the response is built
})
_background: set[asyncio.Task] = set()  # settle tasks, referenced until done (the loop keeps only weak refs)


class Call:
    __slots__ = ("request_id", "t0", "upstream_seconds", "record", "parallel_scopes", "token_scopes", "finished")

    def __init__(self, method: str, endpoint: str, path: str) -> None:
        self.t0 = time.perf_counter()
        self.request_id = "req_" + uuid.uuid4().hex
        self.upstream_seconds = 0.0
        self.parallel_scopes: list[tuple[str, str | None]] = []  # (scope, lease) to release when the call ends
        self.token_scopes: list[str] = []  # limiter scopes that count this call's tokens
        self.finished = False
        self.record = LogRecord(request_id=self.request_id, created_at=datetime.now(timezone.utc),
                                method=method, endpoint=endpoint, path=path)

    def elapsed_ms(self) -> float:
        return (time.perf_counter() - self.t0) * 1000

    def overhead_ms(self) -> float:
        return max(0.0, self.elapsed_ms() - self.upstream_seconds * 1000)

    def headers(self, response: HttpResponseBase) -> HttpResponseBase:
        """Our response headers; overhead is fixed here, when the response starts."""
        overhead = self.record.overhead_ms = self.overhead_ms()
        response["x-gateway-request-id"] = self.request_id
        response["x-gateway-overhead-ms"] = f"{overhead:.3f}"
        if self.record.deployment_id is not None:
            response["x-gateway-deployment"] = f"{self.record.deployment_id}:{self.record.deployment_name}"
        return response

    def fail(self, error: GatewayError) -> HttpResponse:
        """Answer with an OpenAI-shaped error and log it."""
        response = json_response(error.body(), error.status)
        for name, value in error.headers.items():
            response[name] = value
        rec = self.record
        rec.error_type = rec.error_type or (error.code or error.type)
        rec.error_message = rec.error_message or error.message
        self.done(error.status)
        return self.headers(response)

    def usage(self, found: Usage) -> None:
        rec = self.record
        rec.input_tokens, rec.output_tokens, rec.total_tokens = found.input_tokens, found.output_tokens, found.total_tokens
        rec.cached_tokens, rec.reasoning_tokens = found.cached_tokens, found.reasoning_tokens

    def client_left(self) -> None:
        """The client disconnected before the response started (status 499)."""
        rec = self.record
        rec.client_disconnected, rec.error_type = True, rec.error_type or "client_disconnected"
        rec.error_message = rec.error_message or "client disconnected before the response started"
        self.done(499)

    def done(self, status: int) -> None:
        """The call is over: queue its log row (once) and release its limiter slots."""
        if self.finished:
            return
        self.finished = True
        rec = self.record
        rec.status = status
        rec.outcome = rec.outcome or outcome_of(rec)
        rec.latency_ms = self.elapsed_ms()
        if rec.overhead_ms is None:
            rec.overhead_ms = self.overhead_ms()
        writer.enqueue(rec)
        if self.parallel_scopes or (self.token_scopes and rec.total_tokens):
            task = asyncio.get_running_loop().create_task(self._settle(rec.total_tokens or 0))
            _background.add(task)
            task.add_done_callback(_background.discard)

    async def _settle(self, tokens: int) -> None:
        limiter = limits.limiter()
        for scope, lease in self.parallel_scopes:
            await limiter.leave(scope, lease)
        if tokens:
            for scope in self.token_scopes:
                await limiter.add_tokens(scope, tokens)


def json_response(content: bytes, status: int, content_type: str = "application/json") -> HttpResponse:
    """A complete answer: bytes as they are, with their Content-Length (not sent chunked)."""
    response = HttpResponse(content, status=status, content_type=content_type)
    response["Content-Length"] = str(len(content))
    return response


def outcome_of(rec: LogRecord) -> str:
    """The outcome of a call whose code path did not set one: from who answered and how."""
    if rec.client_disconnected:
        return Outcome.CLIENT_DISCONNECTED.value
    if rec.upstream_status is not None:  # the upstream answered; its status went to the client
        return Outcome.COMPLETED.value if rec.status < 400 else Outcome.UPSTREAM_ERROR.value
    if rec.status < 400:
        return Outcome.COMPLETED.value  # answered by the gateway itself (GET /v1/models)
    if rec.status in (502, 503, 504):
        return Outcome.UPSTREAM_FAILED.value
    return Outcome.INTERNAL_ERROR.value if rec.status >= 500 else Outcome.REJECTED.value


def copy_upstream_headers(upstream_headers, response: HttpResponseBase, *, keep_encoding: str = "") -> None:
    """The upstream's own headers (request ids, rate-limit headers, ...), minus hop-by-hop ones."""
    for name, value in upstream_headers.multi_items():
        if name.lower() not in DROP_RESPONSE_HEADERS:
            response[name] = value
    if keep_encoding:
        response["Content-Encoding"] = keep_encoding
