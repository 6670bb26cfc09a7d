"""Talking to upstreams: one call, its failure kinds, and reading a stream.

- `open_upstream()` sends the request (`upstream_client`: pooled keep-alive connections,
  or the provider's in-process `answer`) and waits for status + headers within the
  deployment's first-byte timeout (connect timeout separately); failures come back as
  `UpstreamFailure` with a precise kind, so the caller can fail over before any byte
  has reached the client.
- `read_frames()` yields complete SSE frames as they arrive, with the idle timeout
  re-armed for every read; a copy goes through `sse.SseTap` for ids and usage. The
  caller closes the response in `finally`, also when the client disconnects, so no
  upstream read is left orphaned.
"""

import asyncio
import time
from dataclasses import dataclass

from routing import providers
from routing.upstream import client
from routing.upstream.client import UpstreamResponse
from routing.upstream.sse import SseTap

close_clients = client.close_all


class UpstreamFailure(Exception):
    """Nothing usable came back. `kind` is what the log row and the client see."""

    def __init__(self, kind: str, detail: str, *, timeout: bool = False) -> None:
        super().__init__(detail)
        self.kind, self.detail, self.timeout = kind, detail, timeout


def classify(exc: BaseException) -> UpstreamFailure:
    """Map a client or socket error to a precise failure kind."""
    text = str(exc) or type(exc).__name__
    if isinstance(exc, client.ConnectTimedOut):
        return UpstreamFailure("connect_timeout", text, timeout=True)
    if isinstance(exc, client.ConnectFailed):
        return UpstreamFailure("connect_error", text)
    if isinstance(exc, (client.ClosedBeforeResponse, ConnectionResetError, BrokenPipeError)):
        return UpstreamFailure("upstream_reset", "the upstream closed the connection without answering")
    if isinstance(exc, client.BrokenResponse):
        return UpstreamFailure("upstream_disconnected", text)
    if isinstance(exc, ConnectionError):
        return UpstreamFailure("connect_error", text)
    return UpstreamFailure("upstream_error", text)


@dataclass(slots=True)
class Sent:
    response: UpstreamResponse
    seconds: float  # waiting for the upstream: send → status line and headers


async def open_upstream(dep, method: str, url: str, headers: dict[str, str], content: bytes | None,
                        *, stream: bool) -> Sent:
    local = getattr(providers.get(dep.provider), "answer", None)
    started = time.perf_counter()  # not loop.time(): uvloop's clock ticks in whole milliseconds
    try:
        async with asyncio.timeout(min(dep.first_byte_timeout, dep.total_timeout)):
            if local is not None:
                response = await local(method, url, content)
            else:
                response = await client.send(method, url, headers, content, dep.connect_timeout)
    except client.UpstreamError as exc:
        raise classify(exc) from exc
    except TimeoutError:
        raise UpstreamFailure("first_byte_timeout", f"no response within {dep.first_byte_timeout:g}s",
                              timeout=True) from None
    except OSError as exc:
        raise classify(exc) from exc
    if not stream or response.status_code >= 300 or "text/event-stream" not in response.headers.get("content-type", ""):
        try:  # anything but a successful event stream is read whole, within the total timeout
            async with asyncio.timeout(max(0.001, dep.total_timeout - (time.perf_counter() - started))):
                await response.read()
        except BaseException as exc:
            response.close()
            failure = _read_failure(exc, "total_timeout", f"response not complete within {dep.total_timeout:g}s")
            if failure is None:
                raise
            raise failure from exc
    return Sent(response, time.perf_counter() - started)


def _read_failure(exc: BaseException, timeout_kind: str, timeout_detail: str) -> UpstreamFailure | None:
    """What a failed body read becomes: our own deadline (`timeout_kind`), a broken
    connection (`upstream_disconnected`), or None for anything else (cancellation)."""
    if isinstance(exc, client.UpstreamError) or (isinstance(exc, OSError) and type(exc) is not TimeoutError):
        failure = classify(exc)
        if not failure.timeout:
            failure.kind = "upstream_disconnected"
        return failure
    if type(exc) is TimeoutError:
        return UpstreamFailure(timeout_kind, timeout_detail, timeout=True)
    return None


async def read_frames(response: UpstreamResponse, tap: SseTap, idle_timeout: float, deadline: float | None = None):
    """Yield complete SSE frames as they arrive; raises UpstreamFailure on idle timeout,
    the total deadline (loop time) or a broken connection. The caller closes `response`."""
    loop = asyncio.get_running_loop()
    while True:
        wait = idle_timeout if deadline is None else min(idle_timeout, deadline - loop.time())
        try:
            async with asyncio.timeout(max(wait, 0.0)):
                chunk = await response.read_chunk()
        except BaseException as exc:
            if deadline is not None and loop.time() >= deadline - 0.001:
                failure = _read_failure(exc, "total_timeout", "the stream ran past the deployment's total timeout")
            else:
                failure = _read_failure(exc, "idle_timeout", f"no stream event for {idle_timeout:g}s")
            if failure is None:
                raise
            raise failure from exc
        if not chunk:
            break
        frames = tap.feed(chunk)
        if frames:
            yield frames
    tail = tap.leftover()
    if tail:
        yield tail
