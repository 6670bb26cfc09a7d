"""routing/monitoring/views.py and readiness.py without a server: failures answer 503, never a
500; a hung database check is bounded and shared; /metrics access rules."""

import threading
import time

import orjson
import pytest
from django.test import RequestFactory

from routing.monitoring import readiness, views


@pytest.fixture
def rf():
    return RequestFactory()


async def test_readyz_that_cannot_check_says_not_ready(rf, monkeypatch):
    async def broken():
        raise RuntimeError("bug")

    monkeypatch.setattr(readiness, "checks", broken)
    response = await views.readyz(rf.get("/readyz"))
    assert response.status_code == 503 and orjson.loads(response.content) == {"status": "not_ready",
                                                                               "failed": ["readyz"]}


async def test_metrics_that_cannot_be_collected_answer_503(rf, monkeypatch):
    monkeypatch.setattr(views.observer, "exposition", lambda: 1 / 0)
    response = await views.metrics(rf.get("/metrics", REMOTE_ADDR="127.0.0.1"))
    assert response.status_code == 503


@pytest.mark.parametrize(("address", "allowed"), [("127.0.0.1", True), ("::1", True), ("::ffff:127.0.0.1", True),
                                                  ("10.0.0.8", False), ("", False), ("not-an-ip", False)])
def test_without_a_token_only_loopback_may_scrape(rf, settings, address, allowed):
    settings.GATEWAY = {**settings.GATEWAY, "METRICS_TOKEN": ""}
    refused = views._refusal(rf.get("/metrics", REMOTE_ADDR=address))
    assert (refused is None) == allowed and (allowed or refused.status_code == 403)


def test_with_a_token_loopback_needs_it_too(rf, settings):
    settings.GATEWAY = {**settings.GATEWAY, "METRICS_TOKEN": "s3cret-token"}
    assert views._refusal(rf.get("/metrics", REMOTE_ADDR="127.0.0.1")).status_code == 401
    assert views._refusal(rf.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret-tokenX")).status_code == 401
    assert views._refusal(rf.get("/metrics", HTTP_AUTHORIZATION="bearer s3cret-token", REMOTE_ADDR="10.0.0.8")) is None


async def test_a_hung_database_check_is_bounded_and_shared():
    release, calls = threading.Event(), []

    def hung() -> float:
        calls.append(1)
        release.wait(10)
        return 1.0

    check = readiness.DatabaseCheck(probe=hung)
    started = time.monotonic()
    assert await check(timeout=0.2) == {"ok": False, "error": "timeout"}
    assert await check(timeout=0.2) == {"ok": False, "error": "timeout"}
    assert time.monotonic() - started < 2 and len(calls) == 1, "probes while one hangs share it"
    release.set()
    assert (await check(timeout=2))["ok"]


async def test_a_failed_database_check_names_the_error_only():
    def refused() -> float:
        raise ConnectionRefusedError("connection to server at 10.1.2.3, port 5432 refused")

    result = await readiness.DatabaseCheck(probe=refused)()
    assert result == {"ok": False, "error": "ConnectionRefusedError"}
