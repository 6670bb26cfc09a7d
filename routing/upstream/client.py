"""The httpx client every upstream call goes through: one `httpx.AsyncClient` per process.

Transport, chosen by measurement: httpx-aiohttp's `AiohttpTransport` (the transport the
openai SDK offers) over an aiohttp session configured here. Measured on this machine
against the bench upstream, one core, send → full JSON answer: httpx's default transport
636 req/s at 16 concurrent requests (1,224 at 1), the aiohttp transport 3,232 (2,450).

What the gateway adds on top of the library, each for a failure seen in practice:
- **No pooled connection that received bytes while idle is handed out.** aiohttp parses
  an unsolicited response that arrives on an idle keep-alive connection and would give it
  to the next request as its answer; `_GuardedConnector.connect()` drops such a connection
  (aiohttp's public `ResponseHandler.should_close` says so) and takes another. Bytes past
  the end of a response in the same read make aiohttp close the connection itself.
- **Idle connections expire** after GATEWAY_UPSTREAM_KEEPALIVE_SECONDS (4 s), before the
  5 s idle timeout of uvicorn, Node and gunicorn-style upstreams.
- **A request that failed on a reused connection before it was written is sent again**
  (at most twice, each time on another connection): the upstream closed the idle
  connection just as it was taken from the pool, so it never saw the request. Like Go's
  net/http, a request already written is resent only when its method is idempotent
  (GET, HEAD, DELETE): the upstream may have acted on a POST before the connection broke.
- **Bounded response headers**: at most 100 fields of at most 8 KB each (aiohttp's parser
  stops there) and GATEWAY_UPSTREAM_MAX_HEADER_BYTES in total (checked in relay.py).
- **Nothing a gateway does not need**: no cookies (not parsed, stored or sent),
  no redirects, no proxies or certificates from the environment (`trust_env=False`; TLS
  uses the system trust store), no default headers: requests are built as `httpx.Request`
  objects by the caller, with parsed URLs cached.
- **The built-in mock provider is an httpx transport** mounted on its own origin
  (`http://mock.invalid`), so mock and real upstreams share one call path.

Errors keep aiohttp's exception as `__cause__` (httpx-aiohttp's own mapping is coarse:
a server disconnect becomes `httpx.ConnectTimeout`); relay.classify() reads the cause.
"""

import contextvars
import ssl
import weakref

import aiohttp
import httpx
from django.conf import settings
from httpx_aiohttp import AiohttpTransport

from routing.providers import mock

MAX_HEADER_FIELDS = 100
MAX_HEADER_FIELD_BYTES = 8190
STALE_RETRIES = 2


class _Attempt:
    __slots__ = ("reused",)

    def __init__(self) -> None:
        self.reused = False


_attempt: contextvars.ContextVar[_Attempt | None] = contextvars.ContextVar("upstream_attempt", default=None)


class _GuardedConnector(aiohttp.TCPConnector):
    """aiohttp's pool, minus idle connections that received bytes, and telling whether the
    connection a request got was reused (for the stale-connection retry)."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._used: weakref.WeakSet = weakref.WeakSet()

    async def connect(self, req, traces, timeout):
        while True:
            conn = await super().connect(req, traces, timeout)
            proto = conn.protocol
            reused = proto in self._used
            if reused and proto.should_close:  # data arrived while it sat in the pool: not trustworthy
                conn.close()
                continue
            self._used.add(proto)
            attempt = _attempt.get()
            if attempt is not None:
                attempt.reused = reused
            return conn


class _NoCookies(httpx.Cookies):
    """Upstream cookies are neither kept nor sent. httpx's own `Cookies.extract_cookies` wraps every
    response and its request in urllib objects (re-parsing the URL, copying the headers) before
    it asks the jar, even a jar that ignores them: 6% of a profile's samples at 16 clients, and
    2-3% more requests per second without it."""

    def extract_cookies(self, response: httpx.Response) -> None:
        pass

    def set_cookie_header(self, request: httpx.Request) -> None:
        pass


class _Client(httpx.AsyncClient):
    """httpx's client with the cookie store above in place of the per-client one."""

    _no_cookies = _NoCookies()

    @property
    def cookies(self) -> httpx.Cookies:
        return self._no_cookies

    @cookies.setter
    def cookies(self, cookies) -> None:
        if cookies:
            raise ValueError("the upstream client keeps no cookies")


IDEMPOTENT = frozenset({"GET", "HEAD", "DELETE", "OPTIONS"})


def _causes(exc: BaseException):
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def _safe_to_resend(exc: BaseException, method: str) -> bool:
    """The request failed on a connection the upstream had closed: resend when it cannot
    have been acted on (never written), or when doing it twice is harmless."""
    causes = list(_causes(exc))[1:]
    if any(isinstance(c, aiohttp.ClientConnectionResetError) and "closing transport" in str(c) for c in causes):
        return True  # aiohttp refused to write to a transport already closing: nothing left the gateway
    closed = any(isinstance(c, (aiohttp.ServerDisconnectedError, aiohttp.ClientConnectionResetError))
                 or (isinstance(c, aiohttp.ClientOSError) and not isinstance(c, aiohttp.ClientConnectorError))
                 for c in causes)
    return closed and method in IDEMPOTENT


class _Transport(AiohttpTransport):
    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        for retry in range(STALE_RETRIES + 1):
            attempt = _Attempt()
            token = _attempt.set(attempt)
            try:
                return await super().handle_async_request(request)
            except httpx.TransportError as exc:
                if retry == STALE_RETRIES or not attempt.reused or not _safe_to_resend(exc, request.method):
                    raise
            finally:
                _attempt.reset(token)
        raise AssertionError("unreachable")


def _session() -> aiohttp.ClientSession:
    conf = settings.GATEWAY
    connector = _GuardedConnector(limit=conf["UPSTREAM_MAX_CONNECTIONS"], limit_per_host=0,
                                  keepalive_timeout=conf["UPSTREAM_KEEPALIVE_SECONDS"],
                                  ssl=ssl.create_default_context())
    return aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.DummyCookieJar(),
                                 skip_auto_headers=("User-Agent",), max_headers=MAX_HEADER_FIELDS,
                                 max_field_size=MAX_HEADER_FIELD_BYTES, max_line_size=MAX_HEADER_FIELD_BYTES,
                                 auto_decompress=False)


_client: httpx.AsyncClient | None = None
_urls: dict[str, httpx.URL] = {}


def client() -> httpx.AsyncClient:
    """The process's client, created on first use (inside the event loop it will live on)."""
    global _client
    if _client is None:
        _client = _Client(transport=_Transport(client=_session), mounts={mock.ORIGIN: mock.Transport()},
                          follow_redirects=False, trust_env=False, timeout=None)
    return _client


def url(text: str) -> httpx.URL:
    """A parsed URL; the same few URLs come back on every request, so each is parsed once."""
    parsed = _urls.get(text)
    if parsed is None:
        parsed = httpx.URL(text)
        if len(_urls) < 10_000:
            _urls[text] = parsed
    return parsed


async def send(method: str, target: str, headers: dict[str, str], content: bytes | None, *,
               connect_timeout: float) -> httpx.Response:
    """Send one request; return as soon as the status line and headers are in (the body is
    read by the caller: `aiter_bytes()`, then `aclose()`)."""
    request = httpx.Request(method, url(target), headers=headers, content=content,
                            extensions={"timeout": {"connect": connect_timeout, "pool": connect_timeout,
                                                    "read": None, "write": None}})
    return await client().send(request, stream=True)


async def close() -> None:
    global _client
    if _client is not None:
        await _client.aclose()
        _client = None
