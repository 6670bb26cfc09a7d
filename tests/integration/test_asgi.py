"""gateway/asgi.py in a real server: the lifespan shutdown flushes queued log rows on
SIGTERM, WebSocket attempts get a clean refusal, the admin stays on the standard handler and
the probes skip its middleware."""

import base64
import os
import signal
import socket
import time

import httpx

from routing.models import RequestLog
from tests.integration.server import GatewayServer, bearer, server_database_url


def test_sigterm_flushes_queued_log_rows(fake_azure, azure_route, make_key, tmp_path):
    dep = azure_route(fake_azure)
    key = make_key()
    # A second server whose writer would wait 30 s before writing: only the shutdown flush can save the rows.
    server = GatewayServer(database_url=server_database_url(), workdir=tmp_path, name="lifespan",
                           env={"GATEWAY_LOG_FLUSH_SECONDS": "30"}).start()
    try:
        ids = []
        with httpx.Client(base_url=server.url, timeout=10) as client:
            for stream in (False, True, False):
                response = client.post("/v1/responses", json={"model": dep.group.name, "input": "hi", "stream": stream},
                                       headers=bearer(key))
                assert response.status_code == 200, response.text
                ids.append(response.headers["x-gateway-request-id"])
        time.sleep(0.3)
        assert not RequestLog.objects.filter(request_id__in=ids).exists(), "rows were not held back (flush 30 s)"
    finally:
        code = server.stop()

    # uvicorn re-raises the captured SIGTERM after its graceful shutdown: -15 is a clean exit here.
    assert code in (0, -signal.SIGTERM), server.log_since(0)
    assert "Application shutdown complete" in server.log_since(0)
    rows = {r.request_id: r for r in RequestLog.objects.filter(request_id__in=ids)}
    assert set(rows) == set(ids), "rows queued at SIGTERM were lost"
    assert [rows[i].stream for i in ids] == [False, True, False]
    assert all(r.status == 200 and r.total_tokens == 6 for r in rows.values())
    assert not os.path.exists(server.env["GATEWAY_LOG_SPOOL_FILE"]), "written to the database, not spooled"


def test_websocket_upgrade_is_refused_cleanly(gateway):
    """Codex tries a WebSocket first; it must get an HTTP error at once and fall back to HTTP."""
    host, port = gateway.removeprefix("http://").split(":")
    key = base64.b64encode(os.urandom(16)).decode()
    request = (f"GET /v1/responses HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode()
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(request)
        data = b""
        while b"\r\n\r\n" not in data or len(data) < data.find(b"\r\n\r\n") + 10:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    status_line = data.split(b"\r\n", 1)[0]
    assert status_line.startswith(b"HTTP/1.1 426"), data[:300]
    assert b"websocket_not_supported" in data


def test_admin_uses_the_standard_handler_and_probes_skip_its_middleware(http):
    admin = http.get("/admin/", follow_redirects=False)
    assert admin.status_code == 302 and "/admin/login/" in admin.headers["location"]
    assert "x-gateway-request-id" not in admin.headers
    assert admin.headers["x-frame-options"] == "DENY"  # the admin's middleware ran
    for path in ("/healthz", "/readyz", "/metrics"):
        probe = http.get(path)
        assert probe.status_code == 200 and "x-frame-options" not in probe.headers, path
        assert "x-gateway-request-id" not in probe.headers, path
    assert http.get("/healthz").json() == {"status": "ok"}
