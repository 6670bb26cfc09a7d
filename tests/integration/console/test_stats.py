"""routing/console/stats.py on the test database (PostgreSQL's percentile_cont, or the SQLite aggregate), and the
dashboard page built from it."""

import json
import random
import statistics
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from routing.console import stats
from routing.console.stats import percentile_cont
from routing.models import RequestLog


def log(rid: str, minutes_ago: float, **fields) -> RequestLog:
    base = {"method": "POST", "path": "/v1/responses", "endpoint": "responses", "status": 200, "group_name": "g1",
            "deployment_id": 1, "deployment_name": "east"}
    return RequestLog.objects.create(request_id=rid, created_at=timezone.now() - timedelta(minutes=minutes_ago),
                                     **{**base, **fields})


@pytest.fixture
def rows(db):
    rng = random.Random(7)
    latencies = [round(rng.uniform(1, 5000), 3) for _ in range(41)]
    for i, ms in enumerate(latencies):
        log(f"req_{i}", i, latency_ms=ms, ttfb_ms=ms / 10, input_tokens=i, output_tokens=2 * i,
            status=500 if i % 10 == 0 else 200)
    log("req_broken", 3, latency_ms=None, ttfb_ms=None, error_type="upstream_reset", deployment_id=2,
        deployment_name="west", group_name="g2")
    log("req_outside", 60 * 25, latency_ms=1.0)
    return latencies


def test_percentiles_match_the_reference_on_this_database(rows):
    now = timezone.now()
    [g1] = [g for g in stats.by_group(since=now - timedelta(hours=24), until=now) if g["group_name"] == "g1"]
    expected = statistics.quantiles(rows, n=100, method="inclusive")
    assert g1["latency_p50"] == pytest.approx(statistics.median(rows))
    assert g1["latency_p95"] == pytest.approx(expected[94])
    assert g1["latency_p99"] == pytest.approx(expected[98])
    assert g1["ttfb_p50"] == pytest.approx(statistics.median(rows) / 10)
    assert (g1["requests"], g1["errors"], g1["error_rate"]) == (41, 5, pytest.approx(5 / 41))
    assert (g1["tokens_in"], g1["tokens_out"]) == (sum(range(41)), 2 * sum(range(41)))


def test_by_deployment_series_and_group_filter(rows):
    now = timezone.now()
    deployments = stats.by_deployment(since=now - timedelta(hours=24), until=now)
    assert [(d["deployment_name"], d["requests"], d["errors"]) for d in deployments] == [("east", 41, 5),
                                                                                          ("west", 1, 1)]
    assert deployments[1]["latency_p50"] is None  # no latency recorded: no percentile, not zero
    hourly = stats.series(since=now - timedelta(hours=24), until=now, bucket="hour")
    assert sum(b["requests"] for b in hourly) == 42 and sum(b["errors"] for b in hourly) == 6
    assert len(hourly) in (1, 2)  # 41 minutes of traffic: one or two clock hours
    assert [g["group_name"] for g in stats.by_group(since=now - timedelta(hours=24), until=now, group="g2")] == ["g2"]


def test_percentile_reference():
    assert percentile_cont([], 0.5) is None
    assert percentile_cont([1.0], 0.99) == 1.0
    assert percentile_cont([1.0, 2.0, 3.0, 4.0], 0.5) == 2.5
    assert percentile_cont([0.0, 10.0], 0.95) == pytest.approx(9.5)


def test_dashboard_page(admin_client, rows):
    page = admin_client.get(reverse("admin:routing_requestlog_dashboard") + "?window=24h")
    html = page.content.decode()
    assert page.status_code == 200 and '<strong id="gw-total-requests">42</strong>' in html
    assert "console/vendor/chart-4.6.1.umd.min.js" in html and "cdn" not in html.lower()
    chart = json.loads(html.split('<script id="gw-chart-data" type="application/json">')[1].split("</script>")[0])
    assert sum(chart["series"]["requests"]) == 42
    assert chart["latency"]["labels"] == ["g1 → east", "g2 → west"]
    narrow = admin_client.get(reverse("admin:routing_requestlog_dashboard") + "?window=15m").content.decode()
    assert '<strong id="gw-total-requests">' in narrow and "gw-total-requests\">42<" not in narrow
    assert admin_client.get(reverse("admin:routing_requestlog_dashboard") + "?window=nope&group=%00").status_code == 200
