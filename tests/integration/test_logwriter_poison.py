"""Poison values from clients and from a misbehaving upstream, through the real server, then
normal traffic: every request has its row (on PostgreSQL these stopped the whole log)."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from routing.models import RequestLog
from tests.integration.server import bearer, eventually


class Misbehaving(BaseHTTPRequestHandler):
    """An upstream that answers `POST …/responses` with what `server.mode` says."""

    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:  # noqa: N802
        self.rfile.read(int(self.headers.get("content-length") or 0))
        mode = self.server.mode
        if mode == "huge_ids":
            status, headers = 200, {"x-request-id": "x" * 300}
            body = {"id": "resp_" + "r" * 300, "object": "response", "status": "completed", "output": [],
                    "usage": {"input_tokens": 2**40, "output_tokens": 2**70, "total_tokens": -5}}
        else:  # nul_error
            status, headers = 400, {}
            body = {"error": {"message": "bad \u0000 thing", "type": "invalid_request_error",
                              "code": "nul\u0000code"}}
        data = json.dumps(body).encode()  # ensure_ascii: "\u0000" and "\ud800" as JSON escapes
        self.send_response(status)
        for name, value in {"content-type": "application/json", "content-length": str(len(data)), **headers}.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def misbehaving():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Misbehaving)
    server.mode = "huge_ids"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def rows_for(ids: list[str]) -> dict[str, RequestLog]:
    return {r.request_id: r for r in RequestLog.objects.filter(request_id__in=ids)}


def test_poison_from_clients_then_normal_traffic(http, master_key, fake_azure, azure_route):
    dep = azure_route(fake_azure)
    auth = bearer(master_key)
    poison = [
        http.get("/v1/%00"),
        http.get("/v1/" + "a" * 400),
        http.request("UNSUBSCRIBE", "/v1/responses"),
        http.post("/v1/responses", headers=auth, json={"model": "gpt\u0000x", "input": "hi"}),
        http.post("/v1/responses", headers=auth, content=b'{"model": "\\ud800", "input": "hi"}'),
    ]
    normal = http.post("/v1/responses", headers=auth, json={"model": dep.group.name, "input": "hi"})
    assert normal.status_code == 200
    ids = [r.headers["x-gateway-request-id"] for r in [*poison, normal]]
    eventually(lambda: len(rows_for(ids)) == len(ids), timeout=10, message="poison stopped the log")
    rows = rows_for(ids)
    assert rows[ids[0]].path == "/v1/\\x00"
    assert len(rows[ids[1]].path) == RequestLog._meta.get_field("path").max_length
    assert rows[ids[2]].method == "UNSUBSCRI…"
    assert rows[ids[5]].status == 200


def test_poison_from_an_upstream_then_normal_traffic(http, master_key, azure_route, fake_azure, misbehaving):
    bad = azure_route(None, base=f"http://127.0.0.1:{misbehaving.server_port}", max_attempts=1)
    good = azure_route(fake_azure)
    auth = bearer(master_key)
    huge = http.post("/v1/responses", headers=auth, json={"model": bad.group.name, "input": "hi"})
    assert huge.status_code == 200
    misbehaving.mode = "nul_error"
    nul = http.post("/v1/responses", headers=auth, json={"model": bad.group.name, "input": "hi"})
    assert nul.status_code == 400
    normal = http.post("/v1/responses", headers=auth, json={"model": good.group.name, "input": "hi"})
    ids = [r.headers["x-gateway-request-id"] for r in (huge, nul, normal)]
    eventually(lambda: len(rows_for(ids)) == 3, timeout=10, message="an upstream's values stopped the log")
    rows = rows_for(ids)
    assert rows[ids[0]].response_id.startswith("resp_rrr") and len(rows[ids[0]].response_id) == 200
    assert len(rows[ids[0]].upstream_request_id) == 200
    assert "\\x00" in rows[ids[1]].error_message and "\\x00" in rows[ids[1]].error_type
