"""gateway/listener.py through a real server and raw sockets: header floods, oversized heads
and slow or silent clients are cut off, and a long response is not."""

import re
import socket
import time

import pytest

from tests.integration.server import GatewayServer, bearer, server_database_url


@pytest.fixture(scope="module")
def strict_server(gateway_server, django_db_blocker, tmp_path_factory):
    """A server with a short head timeout, so the slow-client cases take a second."""
    with django_db_blocker.unblock():
        url = server_database_url()
    server = GatewayServer(database_url=url, workdir=tmp_path_factory.mktemp("listener"), name="strict",
                           env={"GATEWAY_REQUEST_HEAD_TIMEOUT": "1", "GATEWAY_MAX_REQUEST_HEADERS": "50",
                                "GATEWAY_MAX_REQUEST_HEAD_BYTES": "16384"})
    server.start()
    yield server
    server.stop()


def connect(server) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port))
    sock.settimeout(5)
    return sock


def answer(sock) -> bytes:
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except (ConnectionResetError, socket.timeout):
        pass
    return data


def test_too_many_headers_get_431_and_the_connection_closes(strict_server):
    with connect(strict_server) as sock:
        head = b"GET /healthz HTTP/1.1\r\nhost: x\r\n" + b"".join(b"x-h%d: v\r\n" % i for i in range(60)) + b"\r\n"
        sock.sendall(head)
        assert answer(sock).startswith(b"HTTP/1.1 431 ")


def test_an_endless_head_is_cut_at_the_size_limit(strict_server):
    with connect(strict_server) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nhost: x\r\nx-big: ")
        sent = 0
        try:
            while sent < 10 * 1024 * 1024:
                sock.sendall(b"v" * 4096)
                sent += 4096
        except (BrokenPipeError, ConnectionResetError):
            pass
        # The server closed after its 16 KiB; what the client got out before the reset sat in socket buffers.
        assert sent < 10 * 1024 * 1024, "the server kept reading a head far past its limit"
        assert answer(sock).startswith(b"HTTP/1.1 431 ")


@pytest.mark.parametrize("first_bytes", [b"", b"POST /v1/responses HTTP/1.1\r\nhost: x\r\n"],
                         ids=["silent", "slowloris"])
def test_a_head_that_does_not_arrive_in_time_gets_408(strict_server, first_bytes):
    with connect(strict_server) as sock:
        started = time.monotonic()
        sock.sendall(first_bytes)
        data = answer(sock)
        assert data.startswith(b"HTTP/1.1 408 ") and 0.8 < time.monotonic() - started < 3


def test_a_response_longer_than_the_head_timeout_is_not_cut(strict_server, fake_azure, azure_route, make_key,
                                                            wait_for_log):
    fake_azure.event_delay, fake_azure.deltas = 0.3, 6  # ~2 s of stream, twice the head timeout
    dep = azure_route(fake_azure, wait=False)
    key = make_key()
    body = b'{"model": "%s", "input": "x", "stream": true}' % dep.group.name.encode()
    with connect(strict_server) as sock:
        sock.settimeout(10)
        deadline = time.monotonic() + 5
        while True:  # the strict server may need a moment to load the new route
            auth = bearer(key)["Authorization"].encode()
            sock.sendall(b"POST /v1/responses HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
                         b"authorization: %b\r\ncontent-length: %d\r\n\r\n%b" % (auth, len(body), body))
            data = b""
            while b"\r\n0\r\n\r\n" not in data and (chunk := sock.recv(65536)):
                data += chunk
            if data.startswith(b"HTTP/1.1 200 ") or time.monotonic() > deadline:
                break
        assert data.startswith(b"HTTP/1.1 200 ") and b"response.completed" in data
    # The row is written just after the stream ends: wait for it, or the end-of-test flush may run first and the
    # row land in the next test's tables (test_logwriter counts every row).
    wait_for_log(re.search(rb"x-gateway-request-id: (\S+)", data, re.IGNORECASE).group(1).decode())
