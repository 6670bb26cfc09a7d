"""routing/upstream/client.py (+ relay.open_upstream's checks) against raw loopback servers:
keep-alive reuse and pool hygiene, bounded headers and bodies, decoding, the resend rule,
TLS, and every way a connection can end."""

import asyncio
import gzip
import ssl

import aiohttp
import httpx
import pytest

from routing.upstream import client
from routing.upstream.relay import UpstreamFailure, open_upstream, read_frames
from routing.upstream.sse import SseTap
from tests.unit.upstream.servers import Server, chunk, dep, keep_alive_json, self_signed


@pytest.fixture(autouse=True)
async def fresh_client():
    yield
    await client.close()  # the client belongs to the test's event loop


async def get(url: str, method: str = "GET", content: bytes | None = None, headers=None) -> httpx.Response:
    response = await client.send(method, url, headers or {}, content, connect_timeout=1.0)
    await response.aread()
    await response.aclose()
    return response


async def failure_of(url: str, method: str = "GET", content: bytes | None = None, **dep_options) -> UpstreamFailure:
    with pytest.raises(UpstreamFailure) as info:
        await open_upstream(dep(**dep_options), method, url, {}, content, stream=False)
    return info.value


async def test_connection_is_reused_and_the_request_is_written_as_given():
    async with Server(keep_alive_json) as server:
        for _ in range(3):
            response = await get(server.url + "/openai/v1/responses?api-version=x", "POST", b"{}", {"api-key": "k"})
            assert (response.status_code, response.content) == (200, b'{"ok":true}')
        assert server.connections == 1
        head, _, body = server.requests[0].partition(b"\r\n\r\n")
        lines = [line.lower() for line in head.split(b"\r\n")]
        assert lines[0] == b"post /openai/v1/responses?api-version=x http/1.1" and body == b"{}"
        assert b"api-key: k" in lines and b"content-length: 2" in lines
        assert not [line for line in lines if line.startswith((b"cookie", b"user-agent"))]
        assert response.headers["x-request-id"] == "r1"
        assert response.headers.get_list("x-multi") == ["a", "b"]


async def test_upstream_cookies_are_neither_kept_nor_sent_back():
    async def sets_cookies(reader, writer, server):
        while True:
            await server.read_request(reader)
            writer.write(b"HTTP/1.1 200 OK\r\nset-cookie: session=s1; Path=/\r\ncontent-length: 2\r\n\r\n{}")
            await writer.drain()

    async with Server(sets_cookies) as server:
        for _ in range(2):
            response = await get(server.url + "/x")
            assert response.headers["set-cookie"] == "session=s1; Path=/"  # relayed as a header, not stored
    assert not [line for line in server.requests[1].lower().split(b"\r\n") if line.startswith(b"cookie")]
    assert not client.client().cookies and not list(client.client().cookies.jar)
    with pytest.raises(ValueError):
        client.client().cookies = {"a": "b"}


async def test_bytes_past_the_end_of_a_response_retire_the_connection():
    async def trailing(reader, writer, server):
        n = 0
        while True:
            await server.read_request(reader)
            n += 1
            extra = b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nSTALE" if n == 1 else b""
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 8\r\n\r\nanswer-%d" % n + extra)
            await writer.drain()

    async with Server(trailing) as server:
        assert (await get(server.url + "/x")).content == b"answer-1"
        assert (await get(server.url + "/x")).content == b"answer-1"  # a new connection's first answer
        assert server.connections == 2


async def test_an_unsolicited_response_on_an_idle_connection_is_never_delivered():
    async def chatty(reader, writer, server):
        while True:
            await server.read_request(reader)
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
            await writer.drain()
            await asyncio.sleep(0.05)
            writer.write(b"HTTP/1.1 500 Stale\r\ncontent-length: 5\r\n\r\nstale")  # nobody asked

    async with Server(chatty) as server:
        assert (await get(server.url + "/x")).content == b"ok"
        await asyncio.sleep(0.15)
        again = await get(server.url + "/x")
        assert (again.status_code, again.content) == (200, b"ok")
        assert server.connections == 2


async def test_idle_connection_closed_by_the_upstream_is_replaced():
    async def one_answer(reader, writer, server):
        await server.read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
        await writer.drain()  # then close, as an upstream with a short idle timeout does

    async with Server(one_answer) as server:
        assert (await get(server.url + "/x")).content == b"ok"
        await server.closed.wait()
        assert (await get(server.url + "/x", "POST", b"{}")).content == b"ok"
        assert server.connections == 2


async def test_idle_connections_expire_before_the_upstream_closes_them(settings):
    settings.GATEWAY = dict(settings.GATEWAY, UPSTREAM_KEEPALIVE_SECONDS=0.1)
    async with Server(keep_alive_json) as server:
        await get(server.url + "/x")
        await asyncio.sleep(0.3)
        await get(server.url + "/x")
        assert server.connections == 2


@pytest.mark.parametrize("method, resent", [("GET", True), ("POST", False)])
async def test_a_request_lost_on_a_closing_connection_is_resent_only_when_harmless(method, resent):
    """The upstream reads the second request on the kept-alive connection and closes it without
    answering (as one does when its idle timeout fires at that moment). Resending a GET is
    harmless; a POST may have been acted on."""
    async def drops_the_second(reader, writer, server):
        await server.read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
        await writer.drain()
        await server.read_request(reader)
        writer.transport.abort()

    async with Server(drops_the_second) as server:
        await get(server.url + "/x", method, b"{}" if method == "POST" else None)
        if resent:
            assert (await get(server.url + "/x", method)).content == b"ok"
            assert (server.connections, len(server.requests)) == (2, 3)
        else:
            assert (await failure_of(server.url + "/x", method, b"{}")).kind == "upstream_reset"
            assert (server.connections, len(server.requests)) == (1, 2)


def test_a_request_never_written_may_always_be_resent():
    refused = httpx.ConnectError("x")
    refused.__cause__ = aiohttp.ClientConnectionResetError("Cannot write to closing transport")
    assert client._safe_to_resend(refused, "POST")
    broken = httpx.ReadError("x")
    broken.__cause__ = aiohttp.ServerDisconnectedError()
    assert not client._safe_to_resend(broken, "POST") and client._safe_to_resend(broken, "GET")


def headers_answer(extra: bytes):
    async def answer(reader, writer, server):
        await server.read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n" + extra + b"\r\nok")
        await writer.drain()
        await asyncio.sleep(0.2)
    return answer


async def test_response_headers_are_bounded(settings):
    settings.GATEWAY = dict(settings.GATEWAY, UPSTREAM_MAX_HEADER_BYTES=4096)
    cases = {
        "too many": b"".join(b"x-h%d: v\r\n" % i for i in range(client.MAX_HEADER_FIELDS + 5)),
        "one too long": b"x-long: " + b"v" * (client.MAX_HEADER_FIELD_BYTES + 10) + b"\r\n",
        "too large in total": b"".join(b"x-h%d: %b\r\n" % (i, b"v" * 500) for i in range(10)),
    }
    for name, extra in cases.items():
        async with Server(headers_answer(extra)) as server:
            failure = await failure_of(server.url + "/x")
            assert failure.kind == "upstream_bad_response", (name, failure.detail)


@pytest.mark.parametrize("status", [b"600", b"999"])
async def test_status_outside_the_http_range_is_a_bad_response(status):
    async def odd(reader, writer, server):
        await server.read_request(reader)
        writer.write(b"HTTP/1.1 " + status + b" Odd\r\ncontent-length: 2\r\n\r\nok")
        await writer.drain()
        await asyncio.sleep(0.2)

    async with Server(odd) as server:
        assert (await failure_of(server.url + "/x")).kind == "upstream_bad_response"


def encoded_answer(encoding: bytes, body: bytes):
    async def answer(reader, writer, server):
        await server.read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-encoding: %b\r\n"
                     b"content-length: %d\r\n\r\n%b" % (encoding, len(body), body))
        await writer.drain()
        await asyncio.sleep(0.2)
    return answer


async def test_compressed_bodies_are_decoded_or_relayed_with_their_encoding():
    async with Server(encoded_answer(b"gzip", gzip.compress(b'{"id":"resp_1"}'))) as server:
        answer = await open_upstream(dep(), "GET", server.url + "/x", {}, None, stream=False)
        assert (answer.content, answer.encoded) == (b'{"id":"resp_1"}', "")
    async with Server(encoded_answer(b"x-custom", b"\x00opaque")) as server:
        answer = await open_upstream(dep(), "GET", server.url + "/x", {}, None, stream=False)
        assert (answer.content, answer.encoded) == (b"\x00opaque", "x-custom")
    async with Server(encoded_answer(b"gzip", b"not gzip at all")) as server:
        assert (await failure_of(server.url + "/x")).kind == "upstream_bad_response"


async def test_non_stream_bodies_are_capped(settings):
    settings.GATEWAY = dict(settings.GATEWAY, UPSTREAM_MAX_BODY_BYTES=1000)
    async with Server(encoded_answer(b"identity", b"x" * 2000)) as server:
        assert (await failure_of(server.url + "/x")).kind == "upstream_bad_response"
    bomb = gzip.compress(b"\0" * 100_000)  # small on the wire, large decoded
    async with Server(encoded_answer(b"gzip", bomb)) as server:
        assert (await failure_of(server.url + "/x")).kind == "upstream_bad_response"


async def test_stream_frames_arrive_as_they_are_sent_and_closing_ends_the_connection():
    release = asyncio.Event()

    async def paced(reader, writer, server):
        await server.read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
                     + chunk(b"data: 1\n\n"))
        await writer.drain()
        await release.wait()
        writer.write(chunk(b"data: 2\n\n"))
        await writer.drain()
        await reader.read()  # returns at EOF: the gateway went away

    async with Server(paced) as server:
        answer = await open_upstream(dep(), "POST", server.url + "/v1/responses", {}, b"{}", stream=True)
        frames = read_frames(answer, SseTap(), idle_timeout=2.0)
        assert await anext(frames) == b"data: 1\n\n"  # before the rest exists
        release.set()
        assert await anext(frames) == b"data: 2\n\n"
        await frames.aclose()
        await answer.aclose()
        await asyncio.wait_for(server.closed.wait(), 2.0)


async def test_failures_have_their_own_kinds(unused_tcp_port):
    assert (await failure_of(f"http://127.0.0.1:{unused_tcp_port}/x")).kind == "connect_error"

    async def reset(reader, writer, server):
        await server.read_request(reader)
        writer.transport.abort()

    async def cut(reader, writer, server):
        await server.read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\npartial")
        await writer.drain()

    async def garbage(reader, writer, server):
        await server.read_request(reader)
        writer.write(b"SPDY/9 what\r\n\r\n")
        await writer.drain()
        await asyncio.sleep(0.2)

    async def silent(reader, writer, server):
        await server.read_request(reader)
        await asyncio.sleep(2)

    expected = {reset: "upstream_reset", cut: "upstream_disconnected", garbage: "upstream_bad_response",
                silent: "first_byte_timeout"}
    for handler, kind in expected.items():
        async with Server(handler) as server:
            failure = await failure_of(server.url + "/x", "POST", b"{}", first_byte_timeout=0.3)
            assert failure.kind == kind, (handler.__name__, failure.kind, failure.detail)


async def test_a_header_with_a_line_break_is_never_sent():
    async with Server(keep_alive_json) as server:
        with pytest.raises(UpstreamFailure) as info:
            await open_upstream(dep(), "GET", server.url + "/x", {"x-evil": "a\r\nx-injected: 1"}, None, stream=False)
        assert info.value.kind == "deployment_misconfigured"
        assert server.requests == []


async def test_pool_limit_waits_for_a_free_connection(settings):
    settings.GATEWAY = dict(settings.GATEWAY, UPSTREAM_MAX_CONNECTIONS=1)
    release = asyncio.Event()

    async def slow_body(reader, writer, server):
        while True:
            await server.read_request(reader)
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\no")
            await writer.drain()
            await release.wait()
            writer.write(b"k")
            await writer.drain()

    async with Server(slow_body) as server:
        first = await client.send("GET", server.url + "/x", {}, None, connect_timeout=1.0)
        failure = await failure_of(server.url + "/x", connect_timeout=0.2)  # the only connection is busy
        assert (failure.kind, failure.timeout) == ("connect_timeout", True)
        release.set()
        assert await first.aread() == b"ok"
        await first.aclose()  # hands it back
        assert (await get(server.url + "/x")).content == b"ok"
        assert server.connections == 1


async def test_https_verifies_the_upstream_certificate(tmp_path, monkeypatch):
    cert, key = self_signed(tmp_path)
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)
    hosts = []

    async def serve(reader, writer):
        try:
            hosts.append((await reader.readuntil(b"\r\n\r\n")).split(b"\r\n")[1])
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
            await writer.drain()
            await reader.read()
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            pass

    server = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=server_tls)
    port = server.sockets[0].getsockname()[1]
    try:
        failure = await failure_of(f"https://localhost:{port}/x")  # not in the system's trust store
        assert failure.kind == "connect_error" and "CERTIFICATE_VERIFY_FAILED" in failure.detail
        await client.close()
        monkeypatch.setenv("SSL_CERT_FILE", cert)  # read when the client's TLS context is made
        assert (await get(f"https://localhost:{port}/x")).content == b"ok"
        assert hosts == [f"host: localhost:{port}".encode()] or hosts[-1].lower() == f"host: localhost:{port}".encode()
    finally:
        server.close()
