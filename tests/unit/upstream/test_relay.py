"""routing/upstream/relay.py: client errors become precise failure kinds; stream reads
respect the deadlines and tell a broken connection from our own timeout."""

import asyncio
from types import SimpleNamespace

import aiohttp
import httpx
import pytest

from routing.upstream.relay import Answer, UpstreamFailure, classify, read_frames
from routing.upstream.sse import SseTap


def wrapped(cause: BaseException, outer=httpx.ConnectError) -> httpx.HTTPError:
    """What httpx-aiohttp raises: an httpx error with aiohttp's as its cause."""
    exc = outer("mapped")
    exc.__cause__ = cause
    return exc


@pytest.mark.parametrize(("exc", "kind", "timeout"), [
    (wrapped(aiohttp.ClientConnectorError(SimpleNamespace(host="up", port=1, ssl=False),
                                          ConnectionRefusedError(111, "refused"))), "connect_error", False),
    (wrapped(aiohttp.ConnectionTimeoutError("slow connect"), httpx.ConnectTimeout), "connect_timeout", True),
    (httpx.PoolTimeout("no free connection"), "connect_timeout", True),
    (wrapped(aiohttp.ServerDisconnectedError(), httpx.ConnectTimeout), "upstream_reset", False),
    (wrapped(aiohttp.ClientPayloadError("cut"), httpx.ReadError), "upstream_disconnected", False),
    (aiohttp.ClientResponseError(SimpleNamespace(real_url="http://up/x"), (), status=400,
                                 message="Too many headers received"),
     "upstream_bad_response", False),
    (httpx.UnsupportedProtocol("ftp"), "deployment_misconfigured", False),
    (ConnectionResetError(104, "reset"), "upstream_reset", False),
])
def test_client_errors_decide_the_kind(exc, kind, timeout):
    failure = classify(exc)
    assert (failure.kind, failure.timeout) == (kind, timeout)


class Script(httpx.AsyncByteStream):
    """A stream whose reads follow a script: bytes, an exception to raise, or a pause."""

    def __init__(self, script) -> None:
        self.script = list(script)

    async def __aiter__(self):
        for step in self.script:
            if isinstance(step, BaseException):
                raise step
            if isinstance(step, float):
                await asyncio.sleep(step)
                continue
            yield step


def answer(script) -> Answer:
    response = httpx.Response(200, headers={"content-type": "text/event-stream"}, stream=Script(script))
    return Answer(200, response.headers, b"", 0.0, stream=response)


async def frames_of(script, idle=1.0, deadline=None):
    return [frames async for frames in read_frames(answer(script), SseTap(), idle, deadline)]


async def test_frames_are_yielded_whole_as_they_complete():
    got = await frames_of([b"data: 1\n", b"\ndata: 2\n\nda", b"ta: 3\n\n"])
    assert got == [b"data: 1\n\ndata: 2\n\n", b"data: 3\n\n"]


async def test_broken_connection_mid_stream_is_upstream_disconnected():
    with pytest.raises(UpstreamFailure) as info:
        await frames_of([b"data: 1\n\n", httpx.ReadError("incomplete")])
    assert (info.value.kind, info.value.timeout) == ("upstream_disconnected", False)


async def test_idle_and_total_deadlines_are_told_apart():
    with pytest.raises(UpstreamFailure) as idle:
        await frames_of([b"data: 1\n\n", 0.5], idle=0.05)
    assert (idle.value.kind, idle.value.timeout) == ("idle_timeout", True)
    loop = asyncio.get_running_loop()
    with pytest.raises(UpstreamFailure) as total:
        await frames_of([b"data: 1\n\n", 0.5], idle=5.0, deadline=loop.time() + 0.05)
    assert total.value.kind == "total_timeout"


async def test_cancellation_is_not_turned_into_a_failure():
    task = asyncio.ensure_future(frames_of([5.0]))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_an_encoding_we_cannot_decode_is_relayed_as_it_came():
    response = httpx.Response(200, headers={"content-type": "text/event-stream", "content-encoding": "x-custom"},
                              stream=Script([b"\x01\x02", b"\x03"]))
    raw = Answer(200, response.headers, b"", 0.0, stream=response, encoded="x-custom")
    assert [f async for f in read_frames(raw, SseTap(), 1.0)] == [b"\x01\x02", b"\x03"]
