"""/readyz on real servers: ready when the database answers, the routes are loaded and the log
writer keeps up; 503 naming the failed check otherwise, within a bounded time, never a 500.
/healthz stays 200 throughout: a liveness probe must not restart a gateway for its database."""

import time

import httpx
import pytest
from django.db import connection, transaction

from tests.integration.dbrelay import relayed_database
from tests.integration.server import GatewayServer, bearer, eventually, free_port, server_database_url

postgres_only = pytest.mark.skipif(connection.vendor != "postgresql", reason="the outage is a cut TCP relay")


def readyz(url: str) -> httpx.Response:
    started = time.monotonic()
    response = httpx.get(url + "/readyz", timeout=10)
    assert time.monotonic() - started < 3, "readyz must answer within its bound"
    assert response.headers["content-type"] == "application/json" and response.status_code in (200, 503)
    return response


def test_ready_says_which_checks_passed(http):
    response = readyz(str(http.base_url).rstrip("/"))
    body = response.json()
    assert response.status_code == 200 and body["status"] == "ready", body
    assert set(body["checks"]) == {"database", "routes", "log_writer"}
    assert all(check["ok"] for check in body["checks"].values())
    assert http.post("/readyz").status_code == 405


def unreachable_database_url(tmp_path) -> str:
    if connection.vendor == "postgresql":
        return f"postgres://postgres@127.0.0.1:{free_port()}/nothing_listens_here"
    return f"sqlite:///{tmp_path}/no-such-directory/gateway.sqlite3"


def test_an_unreachable_database_is_not_ready(tmp_path, transactional_db):
    server = GatewayServer(database_url=unreachable_database_url(tmp_path), workdir=tmp_path, name="nodb").start()
    try:
        for _ in range(3):  # and again: a failed check does not wedge the next ones
            response = readyz(server.url)
            body = response.json()
            assert response.status_code == 503 and body["status"] == "not_ready", body
            assert body["failed"] == ["database", "routes"], body
            assert body["checks"]["database"]["error"] == "OperationalError"
            assert "127.0.0.1" not in response.text and "no-such-directory" not in response.text
        assert httpx.get(server.url + "/healthz", timeout=5).status_code == 200
    finally:
        server.stop()


def test_a_stuck_log_writer_is_not_ready(fake_azure, azure_route, make_key, tmp_path):
    dep = azure_route(fake_azure, wait=False)
    client = make_key(dep.group)
    server = GatewayServer(database_url=server_database_url(), workdir=tmp_path, name="stuck",
                           env={"GATEWAY_LOG_STALL_SECONDS": "1"}).start()
    try:
        assert readyz(server.url).status_code == 200
        with transaction.atomic():  # hold the request-log table: the writer's inserts wait
            if connection.vendor == "postgresql":
                with connection.cursor() as cursor:
                    cursor.execute("LOCK TABLE routing_requestlog IN ACCESS EXCLUSIVE MODE")
            else:  # SQLite: this transaction holds the write lock (IMMEDIATE) until it ends
                with connection.cursor() as cursor:
                    cursor.execute("DELETE FROM routing_requestlog WHERE 0")
            response = httpx.post(server.url + "/v1/responses", json={"model": dep.group.name, "input": "hi"},
                                  headers=bearer(client), timeout=10)
            assert response.status_code == 200, response.text  # the request itself never waits for its row
            stuck = eventually(lambda: (r := readyz(server.url)).status_code == 503 and r.json(), timeout=8)
            assert stuck["failed"] == ["log_writer"], stuck
            assert stuck["checks"]["log_writer"]["queue_depth"] >= 1 and stuck["checks"]["database"]["ok"]
        eventually(lambda: readyz(server.url).status_code == 200, timeout=30, message="the writer did not recover")
    finally:
        server.stop()


@postgres_only
def test_readiness_follows_a_database_outage(tmp_path, transactional_db):
    relay, through = relayed_database(server_database_url())
    server = GatewayServer(database_url=through, workdir=tmp_path, name="outage-ready").start()
    try:
        eventually(lambda: readyz(server.url).status_code == 200, timeout=5)
        relay.cut()
        body = readyz(server.url).json()
        assert body["failed"] == ["database"], body  # the routes stay loaded: /v1 keeps serving
        relay.restore()
        eventually(lambda: readyz(server.url).status_code == 200, timeout=5)
    finally:
        server.stop()
        relay.cut()
