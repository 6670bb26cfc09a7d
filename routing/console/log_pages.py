"""Request-log pages: CSV export of the filtered list, and the dashboard.

The export streams: rows are read in keyset pages (created_at, id) of EXPORT_CHUNK, each fetched off the event
loop, so memory stays flat and no OFFSET walks the table. It stops after EXPORT_MAX_ROWS rows (the
`X-Export-Row-Limit` header says so; narrow the filter for more).
"""

import csv
import io
import json

from asgiref.sync import sync_to_async
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import StreamingHttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone

from routing import selectors
from routing.admin.common import page_context
from routing.admin.log_filters import parse_instant
from routing.console import stats
from routing.models import ModelGroup

EXPORT_CHUNK = 2000
EXPORT_MAX_ROWS = 1_000_000
EXPORT_COLUMNS = ("created_at", "request_id", "outcome", "status", "upstream_status", "key_name", "group_name",
                  "served_group", "deployment_name", "provider", "method", "endpoint", "stream", "latency_ms",
                  "ttfb_ms", "overhead_ms", "input_tokens", "output_tokens", "total_tokens", "cached_tokens",
                  "reasoning_tokens", "error_type", "error_message", "rejected_param", "response_id",
                  "upstream_request_id", "client_disconnected", "bytes_out", "policy_changes")
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def cell(value) -> str:
    """A CSV cell a spreadsheet will not run: text starting like a formula gets a leading apostrophe."""
    if value is None:
        return ""
    if isinstance(value, (list, dict)):
        value = json.dumps(value, ensure_ascii=False, sort_keys=True)
    text = value.isoformat() if hasattr(value, "isoformat") else str(value)
    return "'" + text if isinstance(value, str) and text.startswith(FORMULA_START) else text


def csv_line(values) -> str:
    buffer = io.StringIO()
    csv.writer(buffer).writerow(values)
    return buffer.getvalue()


async def csv_rows(queryset, limit: int):
    """Header, then the rows newest first, read EXPORT_CHUNK at a time by keyset on (created_at, id)."""
    yield csv_line(EXPORT_COLUMNS)
    ordered = queryset.order_by("-created_at", "-id")
    last, sent = None, 0
    while sent < limit:
        page_qs = ordered
        if last is not None:
            page_qs = ordered.filter(Q(created_at__lt=last[0]) | Q(created_at=last[0], id__lt=last[1]))
        size = min(EXPORT_CHUNK, limit - sent)
        rows = await sync_to_async(list)(page_qs.values_list("id", *EXPORT_COLUMNS)[:size])
        if not rows:
            return
        yield "".join(csv_line(cell(v) for v in row[1:]) for row in rows)
        sent += len(rows)
        last = (rows[-1][1], rows[-1][0])
        if len(rows) < size:
            return


def export_csv(model_admin, request):
    if not model_admin.has_view_permission(request):
        raise PermissionDenied
    changelist = model_admin.get_changelist_instance(request)  # the list's own filters and search
    queryset = changelist.get_queryset(request)
    response = StreamingHttpResponse(csv_rows(queryset, EXPORT_MAX_ROWS), content_type="text/csv; charset=utf-8")
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    response["Content-Disposition"] = f'attachment; filename="request-log-{stamp}.csv"'
    response["X-Export-Row-Limit"] = str(EXPORT_MAX_ROWS)
    return response


def dashboard(model_admin, request):
    """Per group and deployment over a window: requests, error rate, latency and TTFB percentiles, tokens."""
    if not model_admin.has_view_permission(request):
        raise PermissionDenied
    window = request.GET.get("window", stats.DEFAULT_WINDOW)
    if window not in stats.WINDOWS:
        window = stats.DEFAULT_WINDOW
    length, bucket = stats.WINDOWS[window]
    until = parse_instant(request.GET.get("until", "")) or timezone.now()
    since = until - length
    group = request.GET.get("group", "")[:200].replace("\x00", "")
    numbers = stats.dashboard(since=since, until=until, bucket=bucket, group=group)
    groups, deployments, series = numbers["groups"], numbers["deployments"], numbers["series"]
    chart = {
        "series": {"labels": [row["t"].strftime("%Y-%m-%d %H:%M") for row in series],
                   "requests": [row["requests"] for row in series], "errors": [row["errors"] for row in series]},
        "latency": {"labels": [f"{d['group_name']} → {d['deployment_name']}" for d in deployments[:20]],
                    **{k: [round(d[k] or 0, 1) for d in deployments[:20]]
                       for k in ("latency_p50", "latency_p95", "latency_p99", "ttfb_p50", "ttfb_p95")}},
        "tokens": {"labels": [g["group_name"] or "(none)" for g in groups[:20]],
                   "tokens_in": [g["tokens_in"] or 0 for g in groups[:20]],
                   "tokens_out": [g["tokens_out"] or 0 for g in groups[:20]]},
    }
    return TemplateResponse(request, "console/dashboard.html", page_context(
        model_admin, request, "Dashboard", None, window=window, windows=list(stats.WINDOWS), since=since,
        until=until, group=group, group_names=list(ModelGroup.objects.values_list("name", flat=True)[:300]),
        groups=groups, deployments=deployments, totals=stats.totals(groups), chart=chart,
        rejected=selectors.rejected_params(), sampled_pct=round(100 * numbers["sampled"], 1) if numbers["sampled"] else None))
