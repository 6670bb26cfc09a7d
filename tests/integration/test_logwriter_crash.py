"""Zero request-log rows lost when the gateway process is killed (kill -9, as the OOM killer
does), under load and during a database outage: every request a client got a complete
answer for has its row once a successor process has started (routing/audit/journal.py).

The outage runs on PostgreSQL only: the server reaches the database through a TCP relay
that the test cuts and restores (the real database keeps serving the test itself)."""

from __future__ import annotations

import logging
import os
import threading

import httpx
import pytest
from django.db import connection

from routing.models import RequestLog
from tests.integration.conftest import wait_until_served
from tests.integration.dbrelay import relayed_database
from tests.integration.server import GatewayServer, bearer, eventually, server_database_url

CLIENTS = 8
logging.getLogger("httpx").setLevel(logging.WARNING)  # one INFO line per request otherwise


class Load:
    """CLIENTS threads posting back to back; `answered` holds the request ids of complete 200s."""

    def __init__(self, url: str, key, model: str) -> None:
        self.url, self.key, self.model = url, key, model
        self.answered: list[str] = []
        self.errors = 0
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(CLIENTS)]

    def __enter__(self) -> "Load":
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(10)

    def _run(self, i: int) -> None:
        with httpx.Client(base_url=self.url, timeout=5, headers=bearer(self.key)) as client:
            while not self.stop.is_set():
                try:
                    response = client.post("/v1/responses", json={"model": self.model, "input": "hi",
                                                                  "stream": i % 2 == 0})
                    response.read()
                except httpx.HTTPError:
                    self.errors += 1
                    continue
                if response.status_code == 200 and response.text.rstrip().endswith(("}", "[DONE]")):
                    self.answered.append(response.headers["x-gateway-request-id"])

    def wait_for(self, count: int, timeout: float = 30.0) -> None:
        eventually(lambda: len(self.answered) >= count, timeout=timeout, interval=0.02,
                   message=f"only {len(self.answered)} answered requests (wanted {count}, errors {self.errors})")


def missing_rows(ids: list[str]) -> set[str]:
    found: set[str] = set()
    for start in range(0, len(ids), 500):
        found |= set(RequestLog.objects.filter(request_id__in=ids[start:start + 500])
                     .values_list("request_id", flat=True))
    return set(ids) - found


def assert_all_rows_arrive(ids: list[str], timeout: float = 30.0) -> None:
    eventually(lambda: not missing_rows(ids), timeout=timeout, interval=0.2,
               message="rows missing for answered requests")


def kill9(server: GatewayServer) -> None:
    server.proc.kill()
    server.proc.wait(10)
    server.proc = None
    server.stop()


def test_kill_9_under_load_loses_no_row(fake_azure, azure_route, make_key, tmp_path):
    dep = azure_route(fake_azure, wait=False)
    key = make_key()
    # A slow flush (1 s), so rows are certainly queued and not yet written when the process dies.
    env = {"GATEWAY_LOG_JOURNAL_DIR": str(tmp_path / "journal"), "GATEWAY_LOG_FLUSH_SECONDS": "1.0"}
    server = GatewayServer(database_url=server_database_url(), workdir=tmp_path, name="victim", env=env).start()
    try:
        wait_until_served(server.url, dep.group.name)
        with Load(server.url, key, dep.group.name) as load:
            load.wait_for(300)
            kill9(server)
        answered = list(load.answered)
    finally:
        server.stop()
    assert answered and missing_rows(answered), "the writer had flushed everything: this test proves nothing"
    assert os.listdir(tmp_path / "journal"), "no journal left behind by the killed process"

    successor = GatewayServer(database_url=server_database_url(), workdir=tmp_path, name="successor", env=env).start()
    try:
        assert_all_rows_arrive(answered)
        eventually(lambda: not [n for n in os.listdir(tmp_path / "journal") if n.startswith("journal-")],
                   timeout=10, message="the adopted journal was not deleted")
    finally:
        successor.stop()
    print(f"kill -9 under load: {len(answered)} answered, 0 rows lost")


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the outage is a cut TCP relay to PostgreSQL")
def test_kill_9_during_a_database_outage_loses_no_row(fake_azure, azure_route, make_key, tmp_path):
    dep = azure_route(fake_azure, wait=False)
    key = make_key()
    direct = server_database_url()
    relay, through_relay = relayed_database(direct)
    env = {"GATEWAY_LOG_JOURNAL_DIR": str(tmp_path / "journal")}
    server = GatewayServer(database_url=through_relay, workdir=tmp_path, name="outage", env=env).start()
    try:
        wait_until_served(server.url, dep.group.name)
        with Load(server.url, key, dep.group.name) as load:
            load.wait_for(200)
            relay.cut()  # the database is away for the server (not for this test)
            before_outage = len(load.answered)
            load.wait_for(before_outage + 400)
            kill9(server)
        answered = list(load.answered)
    finally:
        server.stop()
        relay.cut()
    during = answered[before_outage:]
    assert missing_rows(during) == set(during), "rows answered during the outage reached the database?"

    successor = GatewayServer(database_url=direct, workdir=tmp_path, name="after-outage", env=env).start()
    try:
        assert_all_rows_arrive(answered)
    finally:
        successor.stop()
    print(f"kill -9 during an outage: {len(answered)} answered ({len(during)} during the outage), 0 rows lost")
