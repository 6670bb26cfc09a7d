"""SQLite (the `make run` default) while the gateway serves traffic: the server's log writer
commits every GATEWAY_LOG_FLUSH_SECONDS, and route edits from another process (the admin in
another worker, `import_routes`, a shell) must still succeed. Django's admin saves inside
`transaction.atomic()`: read the object, then write it. A deferred SQLite transaction that
has read and then tries to write after another connection committed fails at once with
"database is locked" (SQLITE_BUSY_SNAPSHOT: the busy timeout does not help); with
OPTIONS["transaction_mode"] = "IMMEDIATE" it takes the write lock up front and waits."""

import threading

import httpx
import pytest
from django.db import OperationalError, connection, transaction

from routing.models import Deployment
from tests.integration.server import bearer, eventually

pytestmark = pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite only")


def test_admin_style_edits_succeed_while_traffic_is_logged(fake_azure, azure_route, make_key, gateway):
    dep = azure_route(fake_azure)
    key = make_key()
    stop = threading.Event()
    statuses: list[int] = []
    errors: list[BaseException] = []

    def traffic():
        try:
            with httpx.Client(base_url=gateway, timeout=10) as client:
                while not stop.is_set():
                    response = client.post("/v1/responses", json={"model": dep.group.name, "input": "hi"},
                                           headers=bearer(key))
                    statuses.append(response.status_code)
        except BaseException as exc:  # noqa: BLE001 (reported by the test, not lost in the thread)
            errors.append(exc)

    threads = [threading.Thread(target=traffic) for _ in range(4)]
    for thread in threads:
        thread.start()
    failures = []
    try:
        eventually(lambda: len(statuses) >= 20, timeout=10, message="no traffic reached the gateway")
        served_before = len(statuses)
        for i in range(40):
            try:
                with transaction.atomic():  # what the admin's change view does
                    row = Deployment.objects.get(pk=dep.pk)
                    stop.wait(0.01)
                    row.weight = i + 1
                    row.save()
            except OperationalError as exc:
                failures.append(str(exc))
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert errors == [] and set(statuses) == {200}, (errors, set(statuses))
    assert len(statuses) > served_before, "the edits did not overlap with logged traffic"
    assert failures == [], f"{len(failures)}/40 edits failed while the gateway logged traffic: {failures[0]}"
    assert Deployment.objects.get(pk=dep.pk).weight == 40
