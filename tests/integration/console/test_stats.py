"""routing/console/stats.py on the test database (PostgreSQL or SQLite), and the dashboard page built from it."""

import json
import math
import random
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from routing.console import stats
from routing.console.stats import bucket_value, percentile
from routing.models import RequestLog

WITHIN = 0.0101  # a bucket is 2% wide and reported by its geometric middle


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


def exact(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile, the definition the buckets approximate."""
    ordered = sorted(values)
    return ordered[max(1, math.ceil(len(ordered) * fraction)) - 1]


def test_percentiles_are_within_one_percent_of_exact_on_this_database(rows):
    now = timezone.now()
    summary = stats.dashboard(since=now - timedelta(hours=24), until=now, bucket="hour")
    [g1] = [g for g in summary["groups"] if g["group_name"] == "g1"]
    for name, fraction in (("latency_p50", 0.5), ("latency_p95", 0.95), ("latency_p99", 0.99)):
        assert g1[name] == pytest.approx(exact(rows, fraction), rel=WITHIN), name
    assert g1["ttfb_p50"] == pytest.approx(exact(rows, 0.5) / 10, rel=WITHIN)
    assert (g1["requests"], g1["errors"], g1["error_rate"]) == (41, 5, pytest.approx(5 / 41))
    assert (g1["tokens_in"], g1["tokens_out"]) == (sum(range(41)), 2 * sum(range(41)))
    [east] = [d for d in summary["deployments"] if d["deployment_name"] == "east"]
    assert east["latency_p99"] == g1["latency_p99"]  # one deployment: the group's buckets are its buckets


def test_by_deployment_series_and_group_filter(rows):
    now = timezone.now()
    summary = stats.dashboard(since=now - timedelta(hours=24), until=now, bucket="hour")
    assert [(d["deployment_name"], d["requests"], d["errors"]) for d in summary["deployments"]] == [
        ("east", 41, 5), ("west", 1, 1)]
    assert summary["deployments"][1]["latency_p50"] is None  # no latency recorded: no percentile, not zero
    hourly = summary["series"]
    assert sum(b["requests"] for b in hourly) == 42 and sum(b["errors"] for b in hourly) == 6
    assert len(hourly) in (1, 2)  # 41 minutes of traffic: one or two clock hours
    only_g2 = stats.dashboard(since=now - timedelta(hours=24), until=now, bucket="hour", group="g2")
    assert [g["group_name"] for g in only_g2["groups"]] == ["g2"]


def test_group_percentiles_merge_their_deployments(db):
    for i, ms in enumerate([10.0, 20.0, 30.0, 1000.0]):
        log(f"req_a{i}", 1, latency_ms=ms, deployment_id=1, deployment_name="a")
    for i, ms in enumerate([2000.0, 3000.0]):
        log(f"req_b{i}", 1, latency_ms=ms, deployment_id=2, deployment_name="b")
    now = timezone.now()
    [g1] = stats.dashboard(since=now - timedelta(hours=1), until=now, bucket="minute")["groups"]
    assert g1["latency_p50"] == pytest.approx(30.0, rel=WITHIN)  # 3rd of 6, across both deployments
    assert g1["latency_p99"] == pytest.approx(3000.0, rel=WITHIN)


def test_big_windows_take_percentiles_from_a_sample_on_postgresql(db, monkeypatch):
    from django.db import connection

    rng = random.Random(3)
    now = timezone.now()
    RequestLog.objects.bulk_create(RequestLog(
        request_id=f"req_s{i}", created_at=now - timedelta(seconds=i), method="POST", path="/v1/responses",
        endpoint="responses", status=200, group_name="g1", deployment_id=1, deployment_name="east",
        latency_ms=rng.lognormvariate(6, 1), ttfb_ms=50.0,
        error_message=rng.randbytes(500).hex())  # wide rows: 3000 of them fill hundreds of pages to sample from
        for i in range(3000))
    monkeypatch.setattr(stats, "SAMPLE_ABOVE", 1000)
    numbers = stats.dashboard(since=now - timedelta(hours=1), until=now + timedelta(seconds=1), bucket="minute")
    [east] = numbers["deployments"]
    assert east["requests"] == 3000  # counts are never sampled
    if connection.vendor != "postgresql":
        assert numbers["sampled"] is None and east["samples"] == 3000
        return
    assert numbers["sampled"] == pytest.approx(1000 / 3000)
    assert 0 < east["samples"] < 3000  # a block sample: some rows, not all
    values = sorted(RequestLog.objects.values_list("latency_ms", flat=True))
    assert east["latency_p50"] == pytest.approx(exact(values, 0.5), rel=0.35)
    assert east["ttfb_p50"] == pytest.approx(50.0, rel=WITHIN)


def test_buckets():
    assert percentile({}, 0.5) is None
    assert percentile({stats.ZERO_BUCKET: 3}, 0.99) == 0.0
    for ms in (0.013, 1.0, 47.5, 5004.969, 3_600_000.0):
        bucket = math.floor(math.log(ms) * stats.BUCKETS_PER_E)
        assert bucket_value(bucket) == pytest.approx(ms, rel=WITHIN)
    assert percentile({1: 1, 2: 1, 3: 2}, 0.5) == bucket_value(2)
    assert percentile({1: 1, 2: 1, 3: 2}, 0.51) == bucket_value(3)


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
