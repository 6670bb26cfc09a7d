"""The request log through /api/: filters, a cursor that pages stably by time while rows arrive, lookups by
request id, and nothing but reads."""

from datetime import timedelta

import pytest
from django.utils import timezone

from routing.models import RequestLog
from tests.integration.management_api.support import assert_error

T0 = timezone.now().replace(microsecond=0) - timedelta(hours=1)


def row(n: int, **fields) -> RequestLog:
    values = {"request_id": f"req_{n:04d}", "created_at": T0 + timedelta(minutes=n), "method": "POST",
              "endpoint": "responses", "path": "/v1/responses", "status": 200, "outcome": "completed",
              "key_name": "team-a", "key_id": 1, "group_name": "g1", "deployment_name": "east", "deployment_id": 1}
    return RequestLog.objects.create(**{**values, **fields})


@pytest.fixture
def rows(db):
    return [row(1), row(2, status=502, outcome="upstream_failed", deployment_name="west", deployment_id=2),
            row(3, key_name="team-b", key_id=2, group_name="g2"), row(4, status=429, outcome="rejected"),
            row(5, created_at=T0 + timedelta(minutes=4))]  # same time as row 4: ties break by id


@pytest.fixture
def auditor(api):
    return api("auditor_token")


def ids(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [r["request_id"] for r in response.json()["results"]]


@pytest.mark.parametrize("params,expected", [
    ({}, ["req_0005", "req_0004", "req_0003", "req_0002", "req_0001"]),
    ({"created_after": (T0 + timedelta(minutes=2)).isoformat(),
      "created_before": (T0 + timedelta(minutes=4)).isoformat()}, ["req_0003", "req_0002"]),
    ({"key": "team-b"}, ["req_0003"]),
    ({"key_id": 2}, ["req_0003"]),
    ({"group": "g2"}, ["req_0003"]),
    ({"deployment": "west"}, ["req_0002"]),
    ({"deployment_id": 2}, ["req_0002"]),
    ({"status": 429}, ["req_0004"]),
    ({"status_min": 400}, ["req_0004", "req_0002"]),
    ({"status_min": 400, "status_max": 499}, ["req_0004"]),
    ({"outcome": "upstream_failed"}, ["req_0002"]),
    ({"group": ""}, ["req_0005", "req_0004", "req_0003", "req_0002", "req_0001"]),  # empty: no filter
])
def test_filters(auditor, rows, params, expected):
    assert ids(auditor.get("/api/logs/", params)) == expected


@pytest.mark.parametrize("params", [{"status": "x"}, {"status": 1000}, {"created_after": "yesterday"},
                                    {"outcome": "fine"}, {"key": "nul\x00"}, {"key": "k" * 201},
                                    {"deployment_id": 2**63}, {"page_size": 1001}, {"stream": "yes"}])
def test_bad_filters_are_400(auditor, rows, params):
    assert_error(auditor.get("/api/logs/", params), 400)


def test_cursor_pages_are_stable_while_rows_arrive(auditor, rows):
    first = auditor.get("/api/logs/", {"page_size": 2})
    assert ids(first) == ["req_0005", "req_0004"]
    row(9, created_at=timezone.now())  # newer than everything: must not shift the next pages
    second = auditor.get(first.json()["next"])
    assert ids(second) == ["req_0003", "req_0002"]
    third = auditor.get(second.json()["next"])
    assert ids(third) == ["req_0001"] and third.json()["next"] is None
    assert ids(auditor.get(third.json()["previous"])) == ["req_0003", "req_0002"]
    assert_error(auditor.get("/api/logs/", {"cursor": "garbage"}), 404)


def test_a_row_by_request_id(auditor, rows):
    body = auditor.get("/api/logs/req_0002/").json()
    assert body["status"] == 502 and body["outcome"] == "upstream_failed" and body["deployment_name"] == "west"
    assert_error(auditor.get("/api/logs/req_9999/"), 404)
    assert_error(auditor.get("/api/logs/req%00x/"), 404)


def test_the_log_is_read_only(api, rows):
    ops = api("ops_token")
    assert_error(ops.post("/api/logs/", {"request_id": "req_x"}, format="json"), 405)
    assert_error(ops.delete("/api/logs/req_0001/"), 405)
    assert RequestLog.objects.count() == 5
