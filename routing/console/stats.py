"""Dashboard numbers, aggregated by the database (reads only).

Per group and per deployment over a window: requests, errors, error rate, latency and TTFB percentiles, tokens
in and out; and requests/errors per time bucket for the chart. Each is one GROUP BY over the rows in the window
(`created_at` index). Percentiles are PostgreSQL's `percentile_cont(f) WITHIN GROUP (ORDER BY x)`, whose
calls over the same column share one sort; SQLite (the development database) gets the same function as a
small aggregate registered on each connection (`register_sqlite_functions`).

An "error" is a row with status >= 400 or an error type (a stream that broke after its 200), the same
condition as the log's "has error" filter and its partial index.
"""

import math
from datetime import datetime, timedelta

from django.db import NotSupportedError
from django.db.models import Aggregate, Count, FloatField, Q, Sum
from django.db.models.functions import Trunc

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


class Percentile(Aggregate):
    """The continuous percentile (interpolated, like PostgreSQL's percentile_cont) of a numeric column."""

    name = "Percentile"
    output_field = FloatField()

    def __init__(self, expression, fraction: float):
        self.fraction = float(fraction)
        super().__init__(expression)

    def as_sql(self, compiler, connection, **extra):
        inner, params = compiler.compile(self.get_source_expressions()[0])
        if connection.vendor == "postgresql":
            return f"percentile_cont({self.fraction!r}) WITHIN GROUP (ORDER BY {inner})", params
        if connection.vendor == "sqlite":
            return f"gw_percentile({inner}, {self.fraction!r})", params
        raise NotSupportedError("Percentile needs PostgreSQL or SQLite.")


class _SqlitePercentile:
    def __init__(self) -> None:
        self.values: list[float] = []
        self.fraction = 0.5

    def step(self, value, fraction) -> None:
        self.fraction = fraction
        if value is not None:
            self.values.append(value)

    def finalize(self):
        return percentile_cont(sorted(self.values), self.fraction)


def percentile_cont(ordered: list[float], fraction: float) -> float | None:
    if not ordered:
        return None
    position = fraction * (len(ordered) - 1)
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def register_sqlite_functions(sender, connection, **kwargs) -> None:
    """connection_created receiver (routing.apps): gw_percentile(x, fraction) on SQLite connections."""
    if connection.vendor == "sqlite":
        connection.connection.create_aggregate("gw_percentile", 2, _SqlitePercentile)


METRICS = {
    "requests": Count("id"),
    "errors": Count("id", filter=ERROR),
    "latency_p50": Percentile("latency_ms", 0.5),
    "latency_p95": Percentile("latency_ms", 0.95),
    "latency_p99": Percentile("latency_ms", 0.99),
    "ttfb_p50": Percentile("ttfb_ms", 0.5),
    "ttfb_p95": Percentile("ttfb_ms", 0.95),
    "tokens_in": Sum("input_tokens"),
    "tokens_out": Sum("output_tokens"),
}


def _with_rate(rows: list[dict]) -> list[dict]:
    for row in rows:
        row["error_rate"] = row["errors"] / row["requests"] if row["requests"] else 0.0
        row["error_pct"] = round(100 * row["error_rate"], 2)
    return rows


def window_rows(*, since: datetime, until: datetime, group: str = ""):
    rows = RequestLog.objects.filter(created_at__gte=since, created_at__lt=until)
    return rows.filter(group_name=group) if group else rows


def by_group(*, since: datetime, until: datetime, group: str = "") -> list[dict]:
    rows = window_rows(since=since, until=until, group=group)
    return _with_rate(list(rows.values("group_name").annotate(**METRICS).order_by("-requests", "group_name")))


def by_deployment(*, since: datetime, until: datetime, group: str = "") -> list[dict]:
    rows = window_rows(since=since, until=until, group=group).exclude(deployment_id=None)
    grouped = rows.values("group_name", "deployment_id", "deployment_name").annotate(**METRICS)
    return _with_rate(list(grouped.order_by("-requests", "deployment_name")))


def series(*, since: datetime, until: datetime, bucket: str, group: str = "") -> list[dict]:
    rows = window_rows(since=since, until=until, group=group).annotate(t=Trunc("created_at", bucket))
    return list(rows.values("t").annotate(requests=Count("id"), errors=Count("id", filter=ERROR)).order_by("t"))


def totals(rows: list[dict]) -> dict:
    requests = sum(r["requests"] for r in rows)
    errors = sum(r["errors"] for r in rows)
    rate = errors / requests if requests else 0.0
    return {"requests": requests, "errors": errors, "error_rate": rate, "error_pct": round(100 * rate, 2),
            "tokens_in": sum(r["tokens_in"] or 0 for r in rows), "tokens_out": sum(r["tokens_out"] or 0 for r in rows)}


