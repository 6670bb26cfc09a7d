"""routing/relay.py: client errors become precise failure kinds; body reads respect the
deadlines and tell a broken connection from our own timeout."""

import asyncio
from types import SimpleNamespace

import pytest

from routing.upstream import client
from routing.upstream.client import LocalResponse, close_all
from routing.upstream.relay import UpstreamFailure, classify, open_upstream, read_frames
from routing.upstream.sse import SseTap


@pytest.fixture(autouse=True)
async def pooled_sessions_closed():
    yield
    await close_all()  # sessions belong to the test's event loop

@pytest.mark.parametrize(("cause", "kind", "timeout"), [
    (client.ConnectFailed("refused"), "connect_error", False),
    (client.ConnectTimedOut("slow connect"), "connect_timeout", True),
    (client.ClosedBeforeResponse("closed"), "upstream_reset", False),
    (ConnectionResetError(104, "reset"), "upstream_reset", False),
    (client.BrokenResponse("incomplete"), "upstream_disconnected", False),
    (ConnectionRefusedError(111, "refused"), "connect_error", False),
    (client.UpstreamError("odd"), "upstream_error", False),
])
def test_client_errors_decide_the_kind(cause, kind, timeout):
    failure = classify(cause)
    assert (failure.kind, failure.timeout) == (kind, timeout)


class Scripted(LocalResponse):
    """A stream whose reads follow a script: bytes, an exception to raise, or a pause."""

    def __init__(self, script) -> None:
        super().__init__(200, {"content-type": "text/event-stream"})
        self.script, self.closed = list(script), False

    async def read_chunk(self) -> bytes:
        if not self.script:
            return b""
        step = self.script.pop(0)
        if isinstance(step, BaseException):
            raise step
        if isinstance(step, float):
            await asyncio.sleep(step)
            return await self.read_chunk()
        return step

    def close(self) -> None:
        self.closed = True


async def frames_of(response, idle=1.0, deadline=None):
    out = []
    async for frames in read_frames(response, SseTap(), idle, deadline):
        out.append(frames)
    return out


async def test_frames_are_yielded_whole_as_they_complete():
    got = await frames_of(Scripted([b"data: 1\n", b"\ndata: 2\n\nda", b"ta: 3\n\n"]))
    assert got == [b"data: 1\n\ndata: 2\n\n", b"data: 3\n\n"]


async def test_broken_connection_mid_stream_is_upstream_disconnected():
    with pytest.raises(UpstreamFailure) as info:
        await frames_of(Scripted([b"data: 1\n\n", client.BrokenResponse("incomplete")]))
    assert (info.value.kind, info.value.timeout) == ("upstream_disconnected", False)


async def test_idle_and_total_deadlines_are_told_apart():
    with pytest.raises(UpstreamFailure) as idle:
        await frames_of(Scripted([b"data: 1\n\n", 0.5]), idle=0.05)
    assert (idle.value.kind, idle.value.timeout) == ("idle_timeout", True)
    loop = asyncio.get_running_loop()
    with pytest.raises(UpstreamFailure) as total:
        await frames_of(Scripted([b"data: 1\n\n", 0.5]), idle=5.0, deadline=loop.time() + 0.05)
    assert total.value.kind == "total_timeout"


async def test_cancellation_is_not_turned_into_a_failure():
    task = asyncio.ensure_future(frames_of(Scripted([5.0])))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


def dep(**overrides):
    values = {"provider": "openai", "connect_timeout": 1.0, "first_byte_timeout": 1.0, "total_timeout": 5.0}
    return SimpleNamespace(**(values | overrides))


async def test_refused_connection_is_connect_error(unused_tcp_port):
    with pytest.raises(UpstreamFailure) as info:
        await open_upstream(dep(), "POST", f"http://127.0.0.1:{unused_tcp_port}/v1/responses", {}, b"{}",
                            stream=False)
    assert info.value.kind == "connect_error"


async def test_silent_upstream_is_first_byte_timeout():
    async def silent(reader, writer):
        await asyncio.sleep(5)

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        with pytest.raises(UpstreamFailure) as info:
            await open_upstream(dep(first_byte_timeout=0.1), "POST", f"http://127.0.0.1:{port}/v1/responses",
                                {}, b"{}", stream=False)
        assert (info.value.kind, info.value.timeout) == ("first_byte_timeout", True)
    finally:
        server.close()


async def test_body_cut_short_is_upstream_disconnected():
    async def short(reader, writer):
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{\"id\"")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(short, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        with pytest.raises(UpstreamFailure) as info:
            await open_upstream(dep(), "GET", f"http://127.0.0.1:{port}/v1/responses/r", {}, None, stream=False)
        assert info.value.kind == "upstream_disconnected"
    finally:
        server.close()
