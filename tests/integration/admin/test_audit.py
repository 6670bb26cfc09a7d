"""routing/admin/audit.py and log_filters.py: the request log is read-only, filterable, searchable, and
counted without full scans."""

from datetime import timedelta

import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from routing.models import RequestLog, ResponseAffinity
from tests.integration.admin.support import (  # noqa: F401  (fixtures)
    log_rows,
    url,
)


def test_request_log_is_read_only(admin_client, log_rows):
    row = log_rows[0]
    assert admin_client.get(url(RequestLog, "add")).status_code == 403
    assert admin_client.post(url(RequestLog, "change", row.pk), {"status": 500}).status_code == 403
    assert admin_client.post(url(RequestLog, "delete", row.pk), {"post": "yes"}).status_code == 403
    html = admin_client.get(url(RequestLog, "change", row.pk)).content.decode()
    assert "<pre>[\n  {\n    &quot;action&quot;: &quot;drop&quot;" in html
    assert "stream_options" in html and "Save" not in html
    row.refresh_from_db()
    assert row.status == 200


@pytest.mark.parametrize(("query", "expected"), [
    ("", {"req_ok", "req_fail"}),
    ("?status=200", {"req_ok"}),
    ("?status=5xx", {"req_fail"}),
    ("?status=2xx", {"req_ok"}),
    ("?group_name=gpt-4o", {"req_fail"}),
    ("?deployment_name=east", {"req_ok"}),
    ("?key_name=ci", {"req_ok", "req_fail"}),
    ("?stream__exact=1", {"req_ok"}),
    ("?client_disconnected__exact=0", {"req_ok", "req_fail"}),
    ("?endpoint=chat", set()),
    ("?q=req_fail", {"req_fail"}),
    ("?q=resp_abc", {"req_ok"}),
    ("?q=req", set()),  # exact match only: index-friendly on big tables
])
def test_request_log_filters_and_search(admin_client, log_rows, query, expected):
    response = admin_client.get(url(RequestLog, "changelist") + query)
    assert response.status_code == 200
    assert {row.request_id for row in response.context["cl"].result_list} == expected


def test_response_affinity_search(admin_client, db):
    now = timezone.now()
    for rid in ("resp_1", "resp_2"):
        ResponseAffinity.objects.create(response_id=rid, deployment_id=1, created_at=now, expires_at=now)
    response = admin_client.get(url(ResponseAffinity, "changelist") + "?q=resp_2")
    assert [r.response_id for r in response.context["cl"].result_list] == ["resp_2"]
    assert admin_client.get(url(ResponseAffinity, "add")).status_code == 403


# --- secrets are not filterable ---------------------------------------------------------------------------------

@pytest.mark.skipif(connection.vendor != "postgresql", reason="the planner's estimate exists on PostgreSQL only")
def test_unfiltered_log_list_counts_from_the_planner_estimate_on_postgresql(admin_client, log_rows, monkeypatch):
    from routing.admin import EstimatedCountPaginator

    monkeypatch.setattr(EstimatedCountPaginator, "ESTIMATE_ABOVE", 0)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE routing_requestlog")  # the estimate is now 2 rows
    RequestLog.objects.create(request_id="req_late", created_at=timezone.now(), method="GET", endpoint="models",
                              path="/v1/models", status=200)
    unfiltered = admin_client.get(url(RequestLog, "changelist")).context["cl"]
    filtered = admin_client.get(url(RequestLog, "changelist") + "?status=2xx").context["cl"]
    assert unfiltered.result_count == 2  # the estimate, stale by one row: no COUNT(*) ran
    assert filtered.result_count == 2  # req_ok + req_late, counted exactly




# --- auditors' list: columns, time range, outcome, errors, search, bounds, export ---------------------------------

@pytest.fixture
def audit_rows(db) -> dict[str, RequestLog]:
    now = timezone.now()
    common = {"method": "POST", "path": "/v1/responses", "endpoint": "responses"}
    specs = {
        "req_recent_ok": {"minutes": 5, "status": 200, "outcome": "completed", "key_name": "team-a", "group_name": "g1",
                              "deployment_name": "east", "latency_ms": 5004.969088000053, "ttfb_ms": 412.3, "input_tokens": 10,
                              "output_tokens": 1234},
        "req_recent_400": {"minutes": 20, "status": 400, "upstream_status": 400, "outcome": "upstream_error", "key_name": "team-b",
                               "group_name": "g2", "deployment_name": "west", "error_type": "unknown_parameter",
                               "error_message": "Unknown parameter: 'client_metadata'.", "latency_ms": 80.0},
        "req_broken": {"minutes": 90, "status": 200, "outcome": "broken_midstream", "key_name": "team-a", "group_name": "g1",
                           "deployment_name": "east", "error_type": "upstream_reset", "error_message": "=cmd|' /C calc'!A0",
                           "latency_ms": 1500.0},
        "req_old": {"minutes": 3 * 24 * 60, "status": 200, "outcome": "completed", "key_name": "team-c", "group_name": "g1",
                        "deployment_name": "east", "latency_ms": 30.0},
    }
    rows = {}
    for rid, spec in specs.items():
        minutes = spec.pop("minutes")
        rows[rid] = RequestLog.objects.create(request_id=rid, created_at=now - timedelta(minutes=minutes),
                                              **common, **spec)
    return rows


def listed(admin_client, query: str = "") -> list[str]:
    response = admin_client.get(url(RequestLog, "changelist") + query)
    assert response.status_code == 200, response.status_code
    return [row.request_id for row in response.context["cl"].result_list]


@pytest.mark.parametrize(("query", "expected"), [
    ("?last=15m", ["req_recent_ok"]),
    ("?last=1h", ["req_recent_ok", "req_recent_400"]),
    ("?last=24h", ["req_recent_ok", "req_recent_400", "req_broken"]),
    ("?outcome=broken_midstream", ["req_broken"]),
    ("?has_error=yes", ["req_recent_400", "req_broken"]),
    ("?has_error=no", ["req_recent_ok", "req_old"]),
    ("?q=team-a", ["req_recent_ok", "req_broken"]),
    ("?q=g2", ["req_recent_400"]),
    ("?q=west", ["req_recent_400"]),
    ("?q=req_old", ["req_old"]),
    ("?q=client_meta", ["req_recent_400"]),  # error text, case-insensitive substring
    ("?q=CLIENT_META", ["req_recent_400"]),
    ("?q=ea", []),  # two characters: ids and names only, and nothing is called "ea"
    ("?q=team-a&has_error=yes", ["req_broken"]),
])
def test_time_range_outcome_error_filters_and_search(admin_client, audit_rows, query, expected):
    assert listed(admin_client, query) == expected


def test_absolute_time_range(admin_client, audit_rows):
    old = audit_rows["req_old"].created_at
    since = (old - timedelta(minutes=1)).strftime("%Y-%m-%d %H:%M:%S")
    until = (old + timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%S")
    assert listed(admin_client, f"?since={since}&until={until}") == ["req_old"]
    assert listed(admin_client, f"?until={until}") == ["req_old"]


@pytest.mark.parametrize("query", ["?last=2w", "?since=yesterday", "?until=2026-13-45"])
def test_bad_time_ranges_are_refused_not_ignored(admin_client, audit_rows, query):
    response = admin_client.get(url(RequestLog, "changelist") + query)
    assert response.status_code == 302 and "e=1" in response["Location"]


@pytest.mark.parametrize("query", ["?q=req%00x", "?group_name=g%001", "?since=2026%00", "?key_name=" + "k" * 500,
                                   "?q=" + "x" * 500])
def test_nul_bytes_and_overlong_values_never_reach_the_database(admin_client, audit_rows, query):
    response = admin_client.get(url(RequestLog, "changelist") + query)
    assert response.status_code == 400


def test_long_search_terms_within_bounds_are_searched(admin_client, audit_rows):
    assert listed(admin_client, "?q=" + "x" * 200) == []


def test_list_shows_seconds_humane_durations_and_sorts_by_latency(admin_client, audit_rows):
    html = admin_client.get(url(RequestLog, "changelist")).content.decode()
    created = audit_rows["req_recent_ok"].created_at
    assert f'{created:%H:%M:%S}<br><small>{created:%Y-%m-%d}</small>' in html
    assert "5.00 s<br><small>TTFB 412 ms</small>" in html and "10 in<br><small>1,234 out</small>" in html
    assert "5004.96" not in html
    slowest_first = listed(admin_client, "?o=-6")  # list_display[6]: latency
    assert slowest_first == ["req_recent_ok", "req_broken", "req_recent_400", "req_old"]
    detail = admin_client.get(url(RequestLog, "change", audit_rows["req_recent_ok"].pk)).content.decode()
    assert created.strftime("%Y-%m-%d %H:%M:%S UTC") in detail and "5.00 s" in detail


def test_filtered_counts_stop_at_the_cap(admin_client, audit_rows, monkeypatch):
    from routing.admin.common import EstimatedCountPaginator

    monkeypatch.setattr(EstimatedCountPaginator, "COUNT_CAP", 2)
    capped = admin_client.get(url(RequestLog, "changelist") + "?group_name=g1")
    assert capped.context["cl"].result_count == 3 and "more than 2 request logs" in capped.content.decode()
    exact = admin_client.get(url(RequestLog, "changelist") + "?group_name=g2")
    assert exact.context["cl"].result_count == 1 and "1 request log" in exact.content.decode()


def export(admin_client, query: str = "") -> list[list[str]]:
    import csv
    import io

    response = admin_client.get(reverse("admin:routing_requestlog_export") + query)
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"].startswith('attachment; filename="request-log-')
    return list(csv.reader(io.StringIO(b"".join(response).decode())))  # async content, collected


def test_csv_export_follows_the_filters_and_neutralises_formulas(admin_client, audit_rows):
    rows = export(admin_client, "?has_error=yes")
    header, body = rows[0], rows[1:]
    assert header[:4] == ["created_at", "request_id", "outcome", "status"]
    by_id = {row[1]: dict(zip(header, row)) for row in body}
    assert list(by_id) == ["req_recent_400", "req_broken"]
    assert by_id["req_broken"]["error_message"] == "'=cmd|' /C calc'!A0"
    assert by_id["req_recent_400"]["error_message"] == "Unknown parameter: 'client_metadata'."
    assert [r[1] for r in export(admin_client, "?q=team-a")[1:]] == ["req_recent_ok", "req_broken"]


def test_csv_export_pages_by_keyset_and_stops_at_its_limit(admin_client, audit_rows, monkeypatch):
    from routing.console import log_pages

    monkeypatch.setattr(log_pages, "EXPORT_CHUNK", 1)
    assert [r[1] for r in export(admin_client)[1:]] == ["req_recent_ok", "req_recent_400", "req_broken", "req_old"]
    monkeypatch.setattr(log_pages, "EXPORT_MAX_ROWS", 2)
    assert [r[1] for r in export(admin_client)[1:]] == ["req_recent_ok", "req_recent_400"]
