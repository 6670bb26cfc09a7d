"""/metrics on a real server: the counters match the traffic actually sent, scrapes are guarded,
and the workers of a `--workers 2` server add up. Parsed with prometheus_client's own parser."""

import time
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.conftest import wait_until_served
from tests.integration.server import GatewayServer, assert_openai_error, bearer, server_database_url, unique


def scrape(url: str, **kwargs) -> dict:
    response = httpx.get(url + "/metrics", timeout=10, **kwargs)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(response.text) for s in family.samples}


def key(name: str, **labels) -> tuple:
    return name, tuple(sorted(labels.items()))


def wait_for_samples(url: str, expected: dict, timeout: float = 5.0) -> dict:
    """Scrape until every expected sample has its value (a stream's row is queued as it ends)."""
    deadline = time.monotonic() + timeout
    while True:
        got = scrape(url)
        wrong = {k: (got.get(k, 0.0), v) for k, v in expected.items() if got.get(k, 0.0) != v}
        if not wrong:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"samples (got, expected) after {timeout}s: {wrong}")
        time.sleep(0.05)


def test_counters_match_the_traffic_sent(fake_azure, azure_route, make_key, http, gateway, wait_for_log):
    dep = azure_route(fake_azure)
    group, deployment, client = dep.group.name, dep.name, make_key(dep.group)
    unknown = [unique("no-such-model-from-a-client") for _ in range(2)]
    before = scrape(gateway)
    ids = []
    for stream in [False] * 5 + [True] * 3:
        response = http.post("/v1/responses", json={"model": group, "input": "hi", "stream": stream},
                             headers=bearer(client))
        assert response.status_code == 200, response.text
        ids.append(response.headers["x-gateway-request-id"])
    fake_azure.fail_status = 400  # passed through: the upstream's error, counted by its status
    for _ in range(2):
        refused = http.post("/v1/responses", json={"model": group, "input": "hi"}, headers=bearer(client))
        assert refused.status_code == 400, refused.text
    fake_azure.fail_status = None
    for model in unknown:
        assert_openai_error(http.post("/v1/responses", json={"model": model, "input": "hi"}, headers=bearer(client)),
                            404, code="model_not_found")

    labels = dict(endpoint="responses", group=group, deployment=deployment)
    rejected = key("gateway_errors_total", endpoint="responses", group="(none)", kind="model_not_found")
    expected = {
        key("gateway_requests_total", **labels, status_class="2xx", outcome="completed"): 8,
        key("gateway_requests_total", **labels, status_class="4xx", outcome="upstream_error"): 2,
        key("gateway_errors_total", endpoint="responses", group=group, kind="upstream_400"): 2,
        rejected: before.get(rejected, 0) + 2,
        key("gateway_request_duration_seconds_count", **labels, stream="false"): 7,
        key("gateway_request_duration_seconds_count", **labels, stream="true"): 3,
        key("gateway_time_to_first_byte_seconds_count", **labels, stream="true"): 3,
        key("gateway_upstream_attempts_total", group=group, deployment=deployment, result="2xx"): 8,
        key("gateway_upstream_attempts_total", group=group, deployment=deployment, result="4xx"): 2,
        key("gateway_deployment_state", group=group, deployment=deployment, state="healthy"): 1,
        key("gateway_upstream_in_flight", group=group, deployment=deployment): 0,
        key("gateway_requests_in_flight"): 0,
    }
    got = wait_for_samples(gateway, expected)
    rows = [wait_for_log(request_id) for request_id in ids]
    for kind, column in (("input", "input_tokens"), ("output", "output_tokens")):
        assert got[key("gateway_tokens_total", group=group, deployment=deployment, type=kind)] == sum(
            getattr(r, column) for r in rows)
    text = httpx.get(gateway + "/metrics").text
    assert not any(model in text for model in unknown), "a client's model name became a label"


def test_without_a_token_only_loopback_clients_may_scrape(http):
    assert http.get("/metrics").status_code == 200
    # uvicorn trusts X-Forwarded-For from 127.0.0.1 (a local proxy): the client is then that address.
    refused = http.get("/metrics", headers={"X-Forwarded-For": "203.0.113.7"})
    assert refused.status_code == 403 and "GATEWAY_METRICS_TOKEN" in refused.text
    assert http.post("/metrics").status_code == 405
    assert http.get("/healthz", headers={"X-Forwarded-For": "203.0.113.7"}).status_code == 200


def test_with_a_token_every_scrape_needs_it(tmp_path, transactional_db):
    token = "metrics-token-" + unique("t")
    server = GatewayServer(database_url=server_database_url(), workdir=tmp_path, name="token",
                           env={"GATEWAY_METRICS_TOKEN": token}).start()
    try:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": token}):
            response = httpx.get(server.url + "/metrics", headers=headers, timeout=10)
            assert response.status_code == 401 and response.headers["www-authenticate"] == "Bearer", headers
        remote = {"Authorization": f"Bearer {token}", "X-Forwarded-For": "203.0.113.7"}
        assert "gateway_requests_in_flight" in httpx.get(server.url + "/metrics", headers=remote, timeout=10).text
    finally:
        server.stop()
    assert token not in server.log_since(0)


def _worker_pids(directory: Path) -> set[int]:
    return {int(p.stem.rpartition("_")[2]) for p in directory.glob("counter_*.db")}


def test_two_workers_add_up(fake_azure, azure_route, make_key, tmp_path):
    dep = azure_route(fake_azure, wait=False)
    client = make_key(dep.group)
    server = GatewayServer(database_url=server_database_url(), workdir=tmp_path, name="workers",
                           args=("--workers", "2")).start()
    try:
        wait_until_served(server.url, dep.group.name)
        directory = Path(server.env["PROMETHEUS_MULTIPROC_DIR"])
        sent = 0
        while len(_worker_pids(directory)) < 2 and sent < 300:  # new connections, until both workers served some
            response = httpx.post(server.url + "/v1/responses", json={"model": dep.group.name, "input": "hi"},
                                  headers={**bearer(client), "Connection": "close"}, timeout=10)
            assert response.status_code == 200, response.text
            sent += 1
        assert len(_worker_pids(directory)) == 2, f"one worker served all {sent} requests"
        labels = dict(endpoint="responses", group=dep.group.name, deployment=dep.name)
        wait_for_samples(server.url, {key("gateway_requests_total", **labels, status_class="2xx",
                                          outcome="completed"): sent,
                                      key("gateway_request_duration_seconds_count", **labels, stream="false"): sent})
    finally:
        server.stop()
