"""Dashboard numbers, aggregated by the database (reads only).

Per group and per deployment over a window: requests, errors, error rate, latency and TTFB percentiles, tokens
in and out; and requests/errors per time bucket for the chart. Three GROUP BY queries over the window's rows
(`created_at` index), each a hash aggregate the database can run in parallel:
1. per deployment and latency bucket: requests, errors, tokens;
2. per deployment and TTFB bucket: requests;
3. per time bucket: requests, errors.
Percentiles come from the buckets: each is 2% wide on a log scale (bucket = floor(ln(ms) × 50)), and a percentile
is reported as its bucket's geometric middle, so it is within 1% of the exact value. Exact percentiles
(`percentile_cont`) need every group's values sorted: on a million rows that took 2–4 s where this takes well
under one (bench/console_log.py). Group figures merge their deployments' buckets, so they are as exact.

An "error" is a row with status >= 400 or an error type (a stream that broke after its 200), the same
condition as the log's "has error" filter and its partial index.
"""

import math
from collections import defaultdict
from datetime import datetime, timedelta

from django.db.models import Case, Count, F, IntegerField, Q, Sum, Value, When
from django.db.models.functions import Floor, Ln, Trunc

from routing.models import RequestLog

ERROR = Q(status__gte=400) | ~Q(error_type="")
WINDOWS = {  # name -> (length, chart bucket)
    "15m": (timedelta(minutes=15), "minute"),
    "1h": (timedelta(hours=1), "minute"),
    "6h": (timedelta(hours=6), "hour"),
    "24h": (timedelta(hours=24), "hour"),
    "7d": (timedelta(days=7), "day"),
    "30d": (timedelta(days=30), "day"),
}
DEFAULT_WINDOW = "24h"
BUCKETS_PER_E = 50  # log-scale buckets per factor e (2.0% wide)
ZERO_BUCKET = -(10**6)  # 0 ms (ln is undefined there)
KEYS = ("group_name", "deployment_id", "deployment_name")
PERCENTILES = {"latency": (0.5, 0.95, 0.99), "ttfb": (0.5, 0.95)}


def bucket_of(field: str):
    """floor(ln(ms) × BUCKETS_PER_E) as SQL; NULL when the value is missing."""
    return Case(When(**{f"{field}__gt": 0}, then=Floor(Ln(F(field)) * BUCKETS_PER_E)),
                When(**{field: 0}, then=Value(ZERO_BUCKET)), default=None, output_field=IntegerField())


def bucket_value(bucket: int) -> float:
    """The geometric middle of a bucket, in ms."""
    return 0.0 if bucket == ZERO_BUCKET else math.exp((bucket + 0.5) / BUCKETS_PER_E)


def percentile(histogram: dict[int, int], fraction: float) -> float | None:
    """Nearest-rank percentile of a {bucket: count} histogram; None when it is empty."""
    total = sum(histogram.values())
    if not total:
        return None
    rank, seen = max(1, math.ceil(fraction * total)), 0
    for bucket in sorted(histogram):
        seen += histogram[bucket]
        if seen >= rank:
            return bucket_value(bucket)
    raise AssertionError("unreachable: the ranks add up to the total")


def window_rows(*, since: datetime, until: datetime, group: str = ""):
    rows = RequestLog.objects.filter(created_at__gte=since, created_at__lt=until)
    return rows.filter(group_name=group) if group else rows


class _Totals:
    __slots__ = ("requests", "errors", "tokens_in", "tokens_out", "latency", "ttfb")

    def __init__(self) -> None:
        self.requests = self.errors = self.tokens_in = self.tokens_out = 0
        self.latency: dict[int, int] = defaultdict(int)
        self.ttfb: dict[int, int] = defaultdict(int)

    def merge(self, other: "_Totals") -> None:
        self.requests += other.requests
        self.errors += other.errors
        self.tokens_in += other.tokens_in
        self.tokens_out += other.tokens_out
        for mine, theirs in ((self.latency, other.latency), (self.ttfb, other.ttfb)):
            for bucket, count in theirs.items():
                mine[bucket] += count

    def row(self, **keys) -> dict:
        rate = self.errors / self.requests if self.requests else 0.0
        row = {**keys, "requests": self.requests, "errors": self.errors, "error_rate": rate,
               "error_pct": round(100 * rate, 2), "tokens_in": self.tokens_in, "tokens_out": self.tokens_out}
        for name, fractions in PERCENTILES.items():
            histogram = getattr(self, name)
            for fraction in fractions:
                row[f"{name}_p{round(fraction * 100)}"] = percentile(histogram, fraction)
        return row


def summary(*, since: datetime, until: datetime, group: str = "") -> dict[str, list[dict]]:
    """{"groups": [...], "deployments": [...]}: one row each, busiest first (two queries)."""
    rows = window_rows(since=since, until=until, group=group)
    per_deployment: dict[tuple, _Totals] = defaultdict(_Totals)
    latency = (rows.annotate(b=bucket_of("latency_ms")).values(*KEYS, "b")
               .annotate(n=Count("id"), e=Count("id", filter=ERROR), i=Sum("input_tokens"), o=Sum("output_tokens"))
               .order_by())
    for r in latency:
        totals = per_deployment[tuple(r[k] for k in KEYS)]
        totals.requests += r["n"]
        totals.errors += r["e"]
        totals.tokens_in += r["i"] or 0
        totals.tokens_out += r["o"] or 0
        if r["b"] is not None:
            totals.latency[r["b"]] += r["n"]
    ttfb = (rows.filter(ttfb_ms__isnull=False).annotate(b=bucket_of("ttfb_ms")).values(*KEYS, "b")
            .annotate(n=Count("id")).order_by())
    for r in ttfb:
        per_deployment[tuple(r[k] for k in KEYS)].ttfb[r["b"]] += r["n"]
    per_group: dict[str, _Totals] = defaultdict(_Totals)
    for (group_name, _, _), totals in per_deployment.items():
        per_group[group_name].merge(totals)
    deployments = [t.row(group_name=g, deployment_id=d, deployment_name=n)
                   for (g, d, n), t in per_deployment.items() if d is not None]
    groups = [t.row(group_name=g) for g, t in per_group.items()]
    deployments.sort(key=lambda r: (-r["requests"], r["deployment_name"]))
    groups.sort(key=lambda r: (-r["requests"], r["group_name"]))
    return {"groups": groups, "deployments": deployments}


def series(*, since: datetime, until: datetime, bucket: str, group: str = "") -> list[dict]:
    rows = window_rows(since=since, until=until, group=group).annotate(t=Trunc("created_at", bucket))
    return list(rows.values("t").annotate(requests=Count("id"), errors=Count("id", filter=ERROR)).order_by("t"))


def totals(rows: list[dict]) -> dict:
    requests = sum(r["requests"] for r in rows)
    errors = sum(r["errors"] for r in rows)
    rate = errors / requests if requests else 0.0
    return {"requests": requests, "errors": errors, "error_rate": rate, "error_pct": round(100 * rate, 2),
            "tokens_in": sum(r["tokens_in"] or 0 for r in rows), "tokens_out": sum(r["tokens_out"] or 0 for r in rows)}
