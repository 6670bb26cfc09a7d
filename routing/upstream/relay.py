"""One upstream call: send it, wait for the answer within the deployment's timeouts, check
it, and read it (whole, or frame by frame for an event stream).

- `open_upstream()` sends the request through the httpx client and waits for status and
  headers within the deployment's first-byte timeout (connect timeout separately). A
  successful event stream is left open for `read_frames()`; anything else is read whole,
  within the total timeout and GATEWAY_UPSTREAM_MAX_BODY_BYTES. Every failure comes back as
  an `UpstreamFailure` with a precise kind, so the caller can fail over before any byte
  has reached the client.
- Answers are checked before anything is relayed: a status outside 100-599 or headers past
  GATEWAY_UPSTREAM_MAX_HEADER_BYTES are `upstream_bad_response` (the client gets a 502).
- Bodies are decoded when the upstream compressed them although we asked for `identity`
  (gzip, deflate; br and zstd when their libraries are installed) and then relayed
  without a `content-encoding`; an encoding we cannot decode is relayed as it came, with
  its `content-encoding`, and not parsed. Never mislabelled.
- `read_frames()` yields complete SSE frames as they arrive, with the idle timeout re-armed
  for every read; a copy goes through `sse.SseTap` for ids and usage. The caller closes
  the answer (`aclose()`) in `finally`, also when the client disconnects, which closes the
  upstream connection at once.
"""

import asyncio
import time
from dataclasses import dataclass

import aiohttp
import httpx
from django.conf import settings

from routing.upstream import client
from routing.upstream.sse import SseTap

DECODABLE = {"identity", "gzip", "deflate", "x-gzip"}
try:  # httpx decodes these when the libraries are present
    import brotli  # noqa: F401

    DECODABLE.add("br")
except ImportError:
    pass
try:
    import zstandard  # noqa: F401

    DECODABLE.add("zstd")
except ImportError:
    pass

close_clients = client.close


class UpstreamFailure(Exception):
    """Nothing usable came back. `kind` is what the log row says; `detail` stays in the log
    (it may name the upstream host), the client gets a message without it."""

    def __init__(self, kind: str, detail: str, *, timeout: bool = False) -> None:
        super().__init__(detail)
        self.kind, self.detail, self.timeout = kind, detail, timeout


def classify(exc: BaseException) -> UpstreamFailure:
    """Map a client or socket error to a precise failure kind. httpx-aiohttp raises httpx errors
    with aiohttp's as the cause (its own mapping is coarse), or aiohttp's errors as they are."""
    cause = exc.__cause__ if isinstance(exc, httpx.HTTPError) and exc.__cause__ is not None else exc
    text = str(cause).replace("\n", " ").strip() or type(cause).__name__
    if isinstance(cause, aiohttp.ConnectionTimeoutError) or isinstance(exc, httpx.PoolTimeout):
        return UpstreamFailure("connect_timeout", f"no connection within the connect timeout ({text})", timeout=True)
    if isinstance(cause, aiohttp.ClientConnectorError):
        return UpstreamFailure("connect_error", text)
    if isinstance(cause, aiohttp.ClientPayloadError):
        return UpstreamFailure("upstream_disconnected", f"the answer broke off: {text}")
    if isinstance(cause, aiohttp.ClientResponseError):
        return UpstreamFailure("upstream_bad_response", f"invalid HTTP answer: {text}")
    if isinstance(cause, (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError, ConnectionError)):
        return UpstreamFailure("upstream_reset", "the upstream closed the connection without answering")
    if isinstance(exc, (httpx.UnsupportedProtocol, httpx.InvalidURL)):
        return UpstreamFailure("deployment_misconfigured", f"unusable upstream URL: {text}")
    return UpstreamFailure("upstream_error", text)


@dataclass(slots=True)
class Answer:
    status: int
    headers: httpx.Headers
    content: bytes  # the whole body; b"" while `stream` is open
    seconds: float  # waiting for the upstream: send → status line and headers
    stream: httpx.Response | None = None  # an open event stream: read_frames(), then aclose()
    encoded: str = ""  # a content-encoding relayed as it is (we could not decode it)

    async def aclose(self) -> None:
        if self.stream is not None:
            await release(self.stream)


async def release(response: httpx.Response) -> None:
    """Close the response; also undo the reference cycle httpx keeps between a response and its
    stream, so the pair is freed at once rather than by the cyclic collector."""
    await response.aclose()
    response.stream = _EMPTY


_EMPTY = httpx.ByteStream(b"")


def _encoding(headers: httpx.Headers) -> str:
    """The content-encoding to relay as is, or "" when the body is (or will be) plain."""
    values = [v.strip().lower() for v in headers.get_list("content-encoding", split_commas=True) if v.strip()]
    return "" if all(v in DECODABLE for v in values) else ", ".join(values)


def _check(response: httpx.Response) -> None:
    if not 100 <= response.status_code <= 599:
        raise UpstreamFailure("upstream_bad_response", f"invalid HTTP status {response.status_code}")
    size = sum(len(k) + len(v) + 4 for k, v in response.headers.raw)
    limit = settings.GATEWAY["UPSTREAM_MAX_HEADER_BYTES"]
    if size > limit:
        raise UpstreamFailure("upstream_bad_response", f"response headers of {size} bytes exceed {limit}")


def is_event_stream(status: int, headers: httpx.Headers) -> bool:
    return status < 300 and "text/event-stream" in headers.get("content-type", "")


async def open_upstream(dep, method: str, url: str, headers: dict[str, str], content: bytes | None,
                        *, stream: bool) -> Answer:
    started = time.perf_counter()  # not loop.time(): uvloop's clock ticks in whole milliseconds
    answer: Answer | None = None
    try:
        async with asyncio.timeout(min(dep.first_byte_timeout, dep.total_timeout)) as deadline:
            response = await _send(dep, method, url, headers, content)
            seconds = time.perf_counter() - started
            answer = Answer(response.status_code, response.headers, b"", seconds, encoded=_encoding(response.headers))
            try:
                _check(response)
                if stream and is_event_stream(answer.status, answer.headers):
                    answer.stream = response
                    deadline.reschedule(None)  # the stream's own deadlines apply from here (read_frames)
                    return answer
                # anything else is read whole, within the total timeout
                deadline.reschedule(asyncio.get_running_loop().time() + max(0.001, dep.total_timeout - seconds))
                answer.content = await _read_capped(response, raw=bool(answer.encoded))
            finally:
                if answer.stream is None:
                    await release(response)
    except TimeoutError:
        if answer is None:
            raise UpstreamFailure("first_byte_timeout", f"no response within {dep.first_byte_timeout:g}s",
                                  timeout=True) from None
        raise UpstreamFailure("total_timeout", f"response not complete within {dep.total_timeout:g}s",
                              timeout=True) from None
    except (httpx.HTTPError, aiohttp.ClientError, OSError) as exc:  # the body broke off
        raise _read_failure(exc, "total_timeout", "") from exc
    return answer


async def _send(dep, method: str, url: str, headers: dict[str, str], content: bytes | None) -> httpx.Response:
    try:
        return await client.send(method, url, headers, content, connect_timeout=dep.connect_timeout)
    except (httpx.HTTPError, aiohttp.ClientError) as exc:
        raise classify(exc) from exc
    except (OSError, ValueError, UnicodeError) as exc:  # a header the deployment made unsendable, say
        raise UpstreamFailure("deployment_misconfigured", f"request not sendable: {exc}") from exc


async def _read_capped(response: httpx.Response, *, raw: bool) -> bytes:
    limit = settings.GATEWAY["UPSTREAM_MAX_BODY_BYTES"]
    parts, size = [], 0
    async for chunk in (response.aiter_raw() if raw else response.aiter_bytes()):
        size += len(chunk)
        if size > limit:
            raise UpstreamFailure("upstream_bad_response", f"response body larger than {limit} bytes")
        parts.append(chunk)
    return b"".join(parts)


def _read_failure(exc: BaseException, timeout_kind: str, timeout_detail: str) -> UpstreamFailure | None:
    """What a failed body read becomes: our own deadline (`timeout_kind`), a broken
    connection or body (`upstream_disconnected`), or None for anything else (cancellation)."""
    if type(exc) is TimeoutError:
        return UpstreamFailure(timeout_kind, timeout_detail, timeout=True)
    if isinstance(exc, httpx.DecodingError):
        return UpstreamFailure("upstream_bad_response", f"the body could not be decoded: {exc}")
    if isinstance(exc, (httpx.HTTPError, aiohttp.ClientError, OSError)):
        failure = classify(exc)
        if failure.kind in ("upstream_reset", "connect_error", "upstream_error"):
            failure.kind = "upstream_disconnected"
        return failure
    return None


async def read_frames(answer: Answer, tap: SseTap, idle_timeout: float, deadline: float | None = None):
    """Yield complete SSE frames as they arrive (raw chunks when the encoding could not be
    decoded); raises UpstreamFailure on idle timeout, the total deadline (loop time) or a
    broken connection. The caller closes `answer`."""
    loop = asyncio.get_running_loop()
    chunks = (answer.stream.aiter_raw() if answer.encoded else answer.stream.aiter_bytes()).__aiter__()
    while True:
        wait = idle_timeout if deadline is None else min(idle_timeout, deadline - loop.time())
        try:
            async with asyncio.timeout(max(wait, 0.0)):
                chunk = await anext(chunks)
        except StopAsyncIteration:
            break
        except BaseException as exc:
            if deadline is not None and loop.time() >= deadline - 0.001:
                failure = _read_failure(exc, "total_timeout", "the stream ran past the deployment's total timeout")
            else:
                failure = _read_failure(exc, "idle_timeout", f"no stream event for {idle_timeout:g}s")
            if failure is None:
                raise
            raise failure from exc
        if answer.encoded:
            yield chunk
            continue
        frames = tap.feed(chunk)
        if frames:
            yield frames
    tail = b"" if answer.encoded else tap.leftover()
    if tail:
        yield tail
