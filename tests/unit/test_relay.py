"""routing/relay.py: transport errors become precise failure kinds."""

import errno

import aiohttp
import httpx
import pytest

from routing.relay import classify


def wrapped(cause: BaseException) -> httpx.HTTPError:
    exc = httpx.ConnectTimeout("mapped by httpx-aiohttp")
    exc.__cause__ = cause
    return exc


@pytest.mark.parametrize(("cause", "kind", "timeout"), [
    (aiohttp.ClientConnectorError(
        aiohttp.client_reqrep.ConnectionKey("h", 1, False, True, None, None, None), ConnectionRefusedError(111, "x")),
     "connect_error", False),
    (aiohttp.ServerDisconnectedError(), "upstream_reset", False),
    (aiohttp.ClientOSError(errno.ECONNRESET, "Connection reset by peer"), "upstream_reset", False),
    (ConnectionResetError(104, "reset"), "upstream_reset", False),
    (aiohttp.ClientPayloadError("incomplete"), "upstream_disconnected", False),
    (aiohttp.ConnectionTimeoutError("slow connect"), "connect_timeout", True),
    (aiohttp.SocketTimeoutError("slow read"), "read_timeout", True),
])
def test_aiohttp_causes_decide_the_kind(cause, kind, timeout):
    failure = classify(wrapped(cause))
    assert (failure.kind, failure.timeout) == (kind, timeout)


def test_plain_httpx_errors():
    assert classify(httpx.ConnectError("no route")).kind == "connect_error"
    assert classify(httpx.ConnectTimeout("slow")).kind == "connect_timeout"
    assert classify(httpx.RemoteProtocolError("incomplete chunked read")).kind == "upstream_disconnected"
