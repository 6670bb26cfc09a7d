"""Dashboard numbers, aggregated by the database (reads only).

Per group and per deployment over a window: requests, errors, error rate, latency and TTFB percentiles, tokens
in and out; and requests/errors per time bucket for the chart.

1. Counts, errors and tokens: one GROUP BY (group, deployment, time bucket) over the window's rows
   (`created_at` index). Exact; the chart's series and the group totals are sums of it.
2. Percentiles: histograms per deployment, GROUP BY (group, deployment, bucket) for latency and for TTFB.
   A bucket is 2% wide on a log scale (bucket = floor(ln(ms) × 50)) and a percentile is reported as its
   bucket's geometric middle, so it is within 1% of the exact value; group percentiles merge their
   deployments' buckets. When the window holds more than SAMPLE_ABOVE rows and a large part of the table
   (PostgreSQL), the histograms are built from a block sample of about SAMPLE_ABOVE of its rows
   (`TABLESAMPLE SYSTEM`, a fixed seed), and the page says so: a deployment with a small share of the traffic
   then has few samples, shown as such.

Why not `percentile_cont`: exact percentiles need every group's values sorted. On a million rows that took
2–4 s; this takes about half a second (bench/console_log.py).

An "error" is a row with status >= 400 or an error type (a stream that broke after its 200), the same
condition as the log's "has error" filter and its partial index.
"""

import math
from collections import defaultdict
from datetime import datetime, timedelta

from django.db import connections
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
SAMPLE_ABOVE = 100_000  # rows in a window above which percentiles come from a sample (PostgreSQL)
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
    __slots__ = ("errors", "latency", "requests", "tokens_in", "tokens_out", "ttfb")

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
               "error_pct": round(100 * rate, 2), "tokens_in": self.tokens_in, "tokens_out": self.tokens_out,
               "samples": sum(self.latency.values())}
        for name, fractions in PERCENTILES.items():
            histogram = getattr(self, name)
            for fraction in fractions:
                row[f"{name}_p{round(fraction * 100)}"] = percentile(histogram, fraction)
        return row


def dashboard(*, since: datetime, until: datetime, bucket: str, group: str = "") -> dict:
    """{"groups": [...], "deployments": [...], "series": [...], "sampled": None or the sampled share (0..1)}.
    Groups and deployments busiest first; the series in time order."""
    rows = window_rows(since=since, until=until, group=group)
    per_deployment: dict[tuple, _Totals] = defaultdict(_Totals)
    per_time: dict[datetime, list[int]] = defaultdict(lambda: [0, 0])
    counted = (rows.annotate(t=Trunc("created_at", bucket)).values(*KEYS, "t")
               .annotate(n=Count("id"), e=Count("id", filter=ERROR), i=Sum("input_tokens"), o=Sum("output_tokens"))
               .order_by())
    for r in counted:
        totals = per_deployment[tuple(r[k] for k in KEYS)]
        totals.requests += r["n"]
        totals.errors += r["e"]
        totals.tokens_in += r["i"] or 0
        totals.tokens_out += r["o"] or 0
        per_time[r["t"]][0] += r["n"]
        per_time[r["t"]][1] += r["e"]
    total = sum(t.requests for t in per_deployment.values())
    sampled = None
    if total > SAMPLE_ABOVE and connections[rows.db].vendor == "postgresql":
        # A block sample reads that share of the whole table, not of the window: worth it only when the window
        # is a large part of the table (share × table < window).
        if total * total > SAMPLE_ABOVE * max(total, table_rows_estimate(rows.db)):
            sampled = max(SAMPLE_ABOVE / total, 0.01)
    for field, attr in (("latency_ms", "latency"), ("ttfb_ms", "ttfb")):
        for key, b, n in histogram(rows, field, sampled):
            if b is not None:  # a negative duration has no bucket (none is ever logged)
                getattr(per_deployment[key], attr)[b] += n
    per_group: dict[str, _Totals] = defaultdict(_Totals)
    for (group_name, _, _), totals in per_deployment.items():
        per_group[group_name].merge(totals)
    deployments = [t.row(group_name=g, deployment_id=d, deployment_name=n)
                   for (g, d, n), t in per_deployment.items() if d is not None]
    groups = [t.row(group_name=g) for g, t in per_group.items()]
    deployments.sort(key=lambda r: (-r["requests"], r["deployment_name"]))
    groups.sort(key=lambda r: (-r["requests"], r["group_name"]))
    series = [{"t": t, "requests": v[0], "errors": v[1]} for t, v in sorted(per_time.items())]
    return {"groups": groups, "deployments": deployments, "series": series, "sampled": sampled}


def table_rows_estimate(alias: str) -> int:
    """The planner's row count of the log table (pg_class.reltuples): no COUNT(*)."""
    with connections[alias].cursor() as cursor:
        cursor.execute("SELECT reltuples::bigint FROM pg_class WHERE oid = to_regclass(%s)", [RequestLog._meta.db_table])
        row = cursor.fetchone()
    return max(row[0], 0) if row else 0


def histogram(rows, field: str, sampled: float | None):
    """(deployment key, bucket, count) of `field` over `rows`: all of them, or (PostgreSQL) a block sample of
    the share `sampled` with a fixed seed, so the same window gives the same numbers."""
    bucketed = rows.filter(**{f"{field}__isnull": False}).annotate(b=bucket_of(field)).values(*KEYS, "b")
    query = bucketed.annotate(n=Count("id")).order_by()
    if sampled is None:
        return [(tuple(r[k] for k in KEYS), r["b"], r["n"]) for r in query]
    sql, params = query.query.sql_with_params()
    table = RequestLog._meta.db_table
    marker = f'FROM "{table}"'
    assert sql.count(marker) == 1, sql
    sql = sql.replace(marker, f'{marker} TABLESAMPLE SYSTEM (%s) REPEATABLE (42)')
    at = sql.index("TABLESAMPLE")
    before = sql[:at].count("%s")
    params = (*params[:before], round(100 * sampled, 4), *params[before:])
    with connections[rows.db].cursor() as cursor:
        cursor.execute(sql, params)
        return [(tuple(r[:3]), r[3], r[4]) for r in cursor.fetchall()]


def totals(rows: list[dict]) -> dict:
    requests = sum(r["requests"] for r in rows)
    errors = sum(r["errors"] for r in rows)
    rate = errors / requests if requests else 0.0
    return {"requests": requests, "errors": errors, "error_rate": rate, "error_pct": round(100 * rate, 2),
            "tokens_in": sum(r["tokens_in"] or 0 for r in rows), "tokens_out": sum(r["tokens_out"] or 0 for r in rows)}
