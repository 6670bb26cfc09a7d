"""The gateway's own logs from a real server: JSON lines (every line, uvicorn's included), one per
request with its id, group, deployment, status and timings; plain text on request; no secrets."""

import json

import httpx

from tests.integration.conftest import wait_until_served
from tests.integration.server import MASTER_KEY, UPSTREAM_KEY, GatewayServer, bearer, server_database_url

BAD_KEY = "sk-gw-00000000-NotARealKeyButSecretLooking"


def _traffic(server: GatewayServer, group: str, client) -> dict[str, httpx.Response]:
    wait_until_served(server.url, group)
    with httpx.Client(base_url=server.url, timeout=10) as http:
        sent = {
            "ok": http.post("/v1/responses", json={"model": group, "input": "hi"}, headers=bearer(client)),
            "stream": http.post("/v1/responses", json={"model": group, "input": "hi", "stream": True},
                                headers=bearer(client)),
            "missing": http.post("/v1/responses", json={"model": "no-such-model", "input": "hi"},
                                 headers=bearer(client)),
            "bad_key": http.post("/v1/responses", json={"model": group, "input": "hi"}, headers=bearer(BAD_KEY)),
        }
    assert [r.status_code for r in sent.values()] == [200, 200, 404, 401]
    return sent


def test_json_lines_one_per_request_and_no_secrets(fake_azure, azure_route, make_key, tmp_path):
    dep = azure_route(fake_azure, wait=False)
    client = make_key(dep.group)
    server = GatewayServer(database_url=server_database_url(), workdir=tmp_path, name="jsonlogs",
                           env={"GATEWAY_LOG_FORMAT": "json", "GATEWAY_LOG_REQUESTS": "all"}).start()
    try:
        sent = _traffic(server, dep.group.name, client)
    finally:
        server.stop()  # the observer writes the last lines at shutdown
    text = server.log_since(0)
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]  # every line parses
    assert any(line["logger"] == "uvicorn.error" and "Application startup complete" in line["message"]
               for line in lines)
    by_id = {line["request_id"]: line for line in lines if line["logger"] == "gateway.requests"}
    ok = by_id[sent["ok"].headers["x-gateway-request-id"]]
    assert (ok["group"], ok["deployment"], ok["status"], ok["outcome"], ok["attempts"]) == (
        dep.group.name, dep.name, 200, "completed", 1)
    assert ok["latency_ms"] >= ok["ttfb_ms"] > 0 and ok["stream"] is False and ok["key_name"] == client.name
    assert ok["level"] == "INFO" and ok["time"].endswith("+00:00")
    assert by_id[sent["stream"].headers["x-gateway-request-id"]]["stream"] is True
    missing = by_id[sent["missing"].headers["x-gateway-request-id"]]
    assert (missing["status"], missing["outcome"], missing["error_type"], missing["group"]) == (
        404, "rejected", "model_not_found", "")
    assert by_id[sent["bad_key"].headers["x-gateway-request-id"]]["error_type"] == "invalid_api_key"
    for secret in (MASTER_KEY, UPSTREAM_KEY, client.secret, BAD_KEY, client.secret.split("-", 3)[3]):
        assert secret not in text


def test_text_lines_and_only_unsuccessful_requests_by_default(fake_azure, azure_route, make_key, tmp_path):
    dep = azure_route(fake_azure, wait=False)
    client = make_key(dep.group)
    server = GatewayServer(database_url=server_database_url(), workdir=tmp_path, name="textlogs",
                           env={"GATEWAY_LOG_FORMAT": "text", "GATEWAY_LOG_REQUESTS": ""}).start()
    try:
        sent = _traffic(server, dep.group.name, client)
    finally:
        server.stop()
    text = server.log_since(0)
    assert not any(line.startswith("{") for line in text.splitlines())
    request_lines = [line for line in text.splitlines() if " gateway.requests " in line]
    assert len(request_lines) == 2, request_lines  # the 404 and the 401: GATEWAY_LOG_REQUESTS=errors
    missing = next(line for line in request_lines if sent["missing"].headers["x-gateway-request-id"] in line)
    assert "INFO gateway.requests POST /v1/responses 404 rejected" in missing and "error=model_not_found" in missing
