"""routing/api/handler.py in a real server: bodies bounded while read, a client that leaves
during the upload still gets its log row, and a stream the shutdown grace cuts ends with a
well-formed error event and is logged as `shutdown`, not as a client disconnect."""

import socket
import threading
import time

import httpx
import pytest

from routing.models import RequestLog
from tests.integration.server import (
    MAX_BODY_BYTES,
    GatewayServer,
    assert_openai_error,
    bearer,
    eventually,
    parse_sse,
    server_database_url,
)


def test_a_declared_oversized_body_is_refused_before_it_is_read(gateway, key_for_any, wait_for_log):
    with socket.create_connection(("127.0.0.1", int(gateway.rsplit(":", 1)[1]))) as sock:
        sock.sendall(b"POST /v1/responses HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
                     b"content-length: %d\r\n\r\n{" % (MAX_BODY_BYTES * 10))
        sock.settimeout(5)
        answer = b""
        while b'"code":"request_too_large"' not in answer and (chunk := sock.recv(65536)):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 413 ") and b'"code":"request_too_large"' in answer
    request_id = next(line.split(b":", 1)[1].strip().decode() for line in answer.split(b"\r\n")
                      if line.lower().startswith(b"x-gateway-request-id"))
    row = wait_for_log(request_id)
    assert (row.status, row.outcome, row.endpoint) == (413, "rejected", "unknown")


def test_a_client_that_leaves_during_the_upload_gets_its_row(gateway, key_for_any):
    path = "/v1/responses?upload=gone"
    with socket.create_connection(("127.0.0.1", int(gateway.rsplit(":", 1)[1]))) as sock:
        sock.sendall(f"POST {path} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
                     f"content-length: 5000\r\n\r\n".encode() + b'{"model": "x", "input": "')
        time.sleep(0.2)
    row = eventually(lambda: RequestLog.objects.filter(path="/v1/responses", status=499).first(), timeout=5,
                     message="no log row for a client that left during the upload")
    assert (row.outcome, row.client_disconnected, row.error_type) == ("client_disconnected", True,
                                                                      "client_disconnected")
    assert "request body" in row.error_message


@pytest.fixture
def key_for_any(make_key):
    return make_key()


@pytest.fixture
def short_grace_server(gateway_server, tmp_path):
    from django.db import connection

    server = GatewayServer(database_url=server_database_url(), workdir=tmp_path, name="grace", graceful_seconds=1)
    assert connection.vendor in ("sqlite", "postgresql")
    server.start()
    yield server
    server.stop()


def test_a_stream_cut_by_the_shutdown_grace_ends_with_an_error_event(gateway, short_grace_server, fake_azure,
                                                                      azure_route, make_key, wait_for_log):
    fake_azure.event_delay, fake_azure.deltas = 0.5, 20  # ~10 s of stream: longer than the grace
    dep = azure_route(fake_azure, wait=False)
    key = make_key()
    url = short_grace_server.url
    received = []

    def read_stream():
        with httpx.Client(timeout=20) as client:
            with client.stream("POST", url + "/v1/responses", headers=bearer(key),
                               json={"model": dep.group.name, "input": "x", "stream": True}) as response:
                received.append(response.headers["x-gateway-request-id"])
                for chunk in response.iter_text():
                    received.append(chunk)

    eventually(lambda: httpx.post(url + "/v1/responses", headers=bearer(key),
                                  json={"model": dep.group.name, "input": "x"}).status_code == 200, timeout=5)
    reader = threading.Thread(target=read_stream)
    reader.start()
    eventually(lambda: len(received) > 2, timeout=5, message="the stream never started")
    short_grace_server.stop()  # SIGTERM: the 1 s grace ends long before the stream would
    reader.join(10)
    events = parse_sse("".join(received[1:]))
    assert events[-2].event == "error" and events[-2].json()["code"] == "server_shutdown"
    assert events[-1].event == "response.failed"
    row = wait_for_log(received[0])
    assert (row.outcome, row.client_disconnected, row.error_type) == ("shutdown", False, "server_shutdown")


def test_unknown_paths_and_methods_are_openai_shaped(gateway, http, key_for_any):
    assert_openai_error(http.get("/v1/nothing-here"), 404, code="unknown_endpoint")
    assert_openai_error(http.get("/v1"), 404, code="unknown_endpoint")
    assert_openai_error(http.get("/v1/responses", headers=bearer(key_for_any)), 405, code="method_not_allowed")
    assert_openai_error(http.request("PATCH", "/v1/models", headers=bearer(key_for_any)), 405,
                        code="method_not_allowed")


def test_api_bodies_are_bounded_by_their_own_limit_not_the_admins(gateway, fake_azure, azure_route, make_key,
                                                                   tmp_path):
    """An 8 MB Responses body (a long conversation, an image) is fine under GATEWAY_MAX_BODY_BYTES,
    though the admin's form limit (DATA_UPLOAD_MAX_MEMORY_SIZE) is 4 MiB."""
    dep = azure_route(fake_azure, wait=False)
    key = make_key()
    server = GatewayServer(database_url=server_database_url(), workdir=tmp_path, name="big",
                           env={"GATEWAY_MAX_BODY_BYTES": str(16 * 1024 * 1024)}).start()
    try:
        body = {"model": dep.group.name, "input": "x" * (8 * 1024 * 1024)}
        response = eventually(lambda: (r := httpx.post(server.url + "/v1/responses", json=body, headers=bearer(key),
                                                       timeout=30)).status_code != 404 and r, timeout=5)
        assert response.status_code == 200, response.text[:300]
        assert len(fake_azure.last().body) > 8 * 1024 * 1024
    finally:
        server.stop()


def test_an_oversized_body_for_the_admin_is_refused_before_it_is_read(gateway):
    """The admin's login page takes POSTs from anyone; Django would read the whole body first."""
    with socket.create_connection(("127.0.0.1", int(gateway.rsplit(":", 1)[1]))) as sock:
        sock.sendall(b"POST /admin/login/ HTTP/1.1\r\nhost: x\r\ncontent-type: application/x-www-form-urlencoded\r\n"
                     b"content-length: %d\r\n\r\nusername=a" % (500 * 1024 * 1024))
        sock.settimeout(5)
        answer = b""
        while b"request_too_large" not in answer and (chunk := sock.recv(65536)):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 413 ")
