"""routing/client.py against raw loopback servers: keep-alive reuse, body
framings, streaming as it arrives, backpressure, and every way a connection can end."""

import asyncio

import pytest

from routing.upstream import client
from routing.upstream.client import (
    BrokenResponse,
    ClosedBeforeResponse,
    ConnectFailed,
    ConnectTimedOut,
    UpstreamError,
    send,
)


@pytest.fixture(autouse=True)
async def pools_closed():
    yield
    await client.close_all()  # pools belong to the test's event loop


class Server:
    """A loopback server: `handler(reader, writer, server)` answers each connection;
    `connections` counts them and `requests` keeps each request head."""

    def __init__(self, handler) -> None:
        self.handler, self.connections, self.requests, self.closed = handler, 0, [], asyncio.Event()

    async def __aenter__(self):
        async def serve(reader, writer):
            self.connections += 1
            try:
                await self.handler(reader, writer, self)
            except (ConnectionError, asyncio.IncompleteReadError):
                pass
            finally:
                writer.close()
                self.closed.set()

        self.server = await asyncio.start_server(serve, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"
        return self

    async def __aexit__(self, *exc):
        self.server.close()

    async def read_request(self, reader) -> bytes:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                       if line.lower().startswith(b"content-length:")), 0)
        body = await reader.readexactly(length) if length else b""
        self.requests.append(head + body)
        return head + body


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%b\r\n" % (len(data), data)


async def keep_alive_json(reader, writer, server):
    while True:
        await server.read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 11\r\n"
                     b"x-request-id: r1\r\nx-multi: a\r\nx-multi: b\r\n\r\n{\"ok\":true}")
        await writer.drain()


async def test_connection_is_reused_and_the_request_is_written_as_given():
    async with Server(keep_alive_json) as server:
        for _ in range(3):
            resp = await send("POST", server.url + "/openai/v1/responses?api-version=x", {"api-key": "k"}, b"{}", 1.0)
            assert (resp.status_code, await resp.read()) == (200, b'{"ok":true}')
        assert server.connections == 1
        first = server.requests[0]
        assert first.startswith(b"POST /openai/v1/responses?api-version=x HTTP/1.1\r\n")
        assert b"\r\napi-key: k\r\n" in first and b"\r\ncontent-length: 2\r\n" in first and first.endswith(b"\r\n\r\n{}")
        assert resp.headers.get("X-Request-Id") == "r1" and "CONTENT-TYPE" in resp.headers
        assert [v for k, v in resp.headers.items() if k == "x-multi"] == ["a", "b"]


async def test_chunks_arrive_as_they_are_sent():
    release = asyncio.Event()

    async def paced(reader, writer, server):
        await server.read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
                     + chunk(b"data: 1\n\n"))
        await release.wait()
        writer.write(chunk(b"data: 2\n\n") + b"0\r\n\r\n")
        await keep_alive_json(reader, writer, server)

    async with Server(paced) as server:
        resp = await send("POST", server.url + "/v1/responses", {}, b"{}", 1.0)
        assert await resp.read_chunk() == b"data: 1\n\n"  # before the rest exists
        release.set()
        assert await resp.read_chunk() == b"data: 2\n\n"
        assert await resp.read_chunk() == b""
        again = await send("POST", server.url + "/v1/responses", {}, b"{}", 1.0)
        assert await again.read() == b'{"ok":true}'
        assert server.connections == 1


async def test_body_delimited_by_close_and_connection_close_are_not_reused():
    async def close_delimited(reader, writer, server):
        await server.read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\nuntil the end")
        await writer.drain()

    async with Server(close_delimited) as server:
        for _ in range(2):
            resp = await send("GET", server.url + "/x", {}, None, 1.0)
            assert await resp.read() == b"until the end"
        assert server.connections == 2

    async def says_close(reader, writer, server):
        await server.read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok")
        await writer.drain()
        await asyncio.sleep(0.2)  # the client must not wait for this close to use the body

    async with Server(says_close) as server:
        for _ in range(2):
            resp = await send("GET", server.url + "/x", {}, None, 1.0)
            assert await resp.read() == b"ok"
        assert server.connections == 2


async def test_idle_connection_closed_by_the_upstream_is_replaced():
    async def one_answer(reader, writer, server):
        await server.read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
        await writer.drain()  # then close: the pooled connection goes stale

    async with Server(one_answer) as server:
        assert await (await send("GET", server.url + "/x", {}, None, 1.0)).read() == b"ok"
        await asyncio.sleep(0.05)
        assert await (await send("GET", server.url + "/x", {}, None, 1.0)).read() == b"ok"
        assert server.connections == 2


async def test_closing_mid_stream_closes_the_connection_at_once():
    async def endless(reader, writer, server):
        await server.read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n" + chunk(b"data: 1\n\n"))
        await reader.read()  # returns at EOF: the client went away

    async with Server(endless) as server:
        resp = await send("POST", server.url + "/v1/responses", {}, b"{}", 1.0)
        assert await resp.read_chunk() == b"data: 1\n\n"
        resp.close()
        await asyncio.wait_for(server.closed.wait(), 1.0)


async def test_a_slow_reader_pauses_the_upstream():
    size = 8 << 20
    sent = asyncio.Event()

    async def big(reader, writer, server):
        await server.read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % size)
        writer.write(b"x" * size)
        await writer.drain()
        sent.set()

    async with Server(big) as server:
        resp = await send("GET", server.url + "/big", {}, None, 1.0)
        await asyncio.sleep(0.2)
        conn = resp._conn
        assert conn.paused and conn.buffered < client._HIGH_WATER + (1 << 20)
        assert not sent.is_set()  # the server is blocked: the client stopped reading
        assert len(await resp.read()) == size
        assert sent.is_set() or await asyncio.wait_for(sent.wait(), 1.0) is None


async def test_interim_100_continue_is_skipped():
    async def interim(reader, writer, server):
        await server.read_request(reader)
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\ncontent-length: 2\r\n\r\nok")
        await writer.drain()
        await asyncio.sleep(0.1)

    async with Server(interim) as server:
        resp = await send("POST", server.url + "/x", {}, b"{}", 1.0)
        assert (resp.status_code, await resp.read()) == (201, b"ok")


async def test_failures_have_their_own_kinds(unused_tcp_port):
    with pytest.raises(ConnectFailed):
        await send("GET", f"http://127.0.0.1:{unused_tcp_port}/x", {}, None, 1.0)

    async def reset(reader, writer, server):
        await server.read_request(reader)
        writer.transport.abort()

    async with Server(reset) as server:
        with pytest.raises(ClosedBeforeResponse):
            await send("POST", server.url + "/x", {}, b"{}", 1.0)

    async def cut(reader, writer, server):
        await server.read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\npartial")
        await writer.drain()

    async with Server(cut) as server:
        resp = await send("GET", server.url + "/x", {}, None, 1.0)
        with pytest.raises(BrokenResponse):
            await resp.read()

    async def garbage(reader, writer, server):
        await server.read_request(reader)
        writer.write(b"SPDY/9 what\r\n\r\n")
        await writer.drain()
        await asyncio.sleep(0.2)

    async with Server(garbage) as server:
        with pytest.raises(BrokenResponse):
            await send("GET", server.url + "/x", {}, None, 1.0)

    async with Server(keep_alive_json) as server:
        with pytest.raises(UpstreamError):
            await send("GET", server.url + "/x", {"x-evil": "a\r\nx-injected: 1"}, None, 1.0)
        assert server.requests == []


async def test_pool_limit_waits_for_a_free_connection(settings):
    settings.GATEWAY = dict(settings.GATEWAY, UPSTREAM_MAX_CONNECTIONS=1)
    async with Server(keep_alive_json) as server:
        first = await send("GET", server.url + "/x", {}, None, 1.0)
        with pytest.raises(ConnectTimedOut):
            await send("GET", server.url + "/x", {}, None, 0.1)  # the only connection is busy
        await first.read()  # hands it back
        assert await (await send("GET", server.url + "/x", {}, None, 0.1)).read() == b'{"ok":true}'
        assert server.connections == 1


async def test_bytes_on_an_idle_connection_retire_it():
    async def chatty(reader, writer, server):
        await server.read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.write(b"HTTP/1.1 500 Stale\r\ncontent-length: 0\r\n\r\n")  # nobody asked
        await reader.read()

    async with Server(chatty) as server:
        assert await (await send("GET", server.url + "/x", {}, None, 1.0)).read() == b"ok"
        await asyncio.sleep(0.15)
        again = await send("GET", server.url + "/x", {}, None, 1.0)
        assert (again.status_code, await again.read()) == (200, b"ok")  # a fresh exchange, not the stray 500
        assert server.connections == 2


def self_signed(tmp_path):
    """A certificate for localhost/127.0.0.1, written as PEM files."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=1))
            .not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return str(cert_path), str(key_path)


async def test_https_verifies_the_upstream_certificate(tmp_path):
    import ssl

    cert, key = self_signed(tmp_path)
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)
    hosts = []

    async def serve(reader, writer):
        hosts.append((await reader.readuntil(b"\r\n\r\n")).split(b"\r\n")[1])
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
        await writer.drain()
        await reader.read()

    server = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=server_tls)
    port = server.sockets[0].getsockname()[1]
    try:
        with pytest.raises(ConnectFailed, match="CERTIFICATE_VERIFY_FAILED"):  # not in the system's trust store
            await send("GET", f"https://localhost:{port}/x", {}, None, 2.0)
        client._pools[f"https://localhost:{port}"].tls.load_verify_locations(cert)  # now trusted
        resp = await send("GET", f"https://localhost:{port}/x", {}, None, 2.0)
        assert (resp.status_code, await resp.read()) == (200, b"ok")
        assert hosts == [f"host: localhost:{port}".encode()]
    finally:
        server.close()
