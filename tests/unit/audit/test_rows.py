"""routing/audit/rows.py: every value fits its column, with limits read from the models."""

import math
from datetime import datetime, timezone

import orjson
import pytest
from django.db import connection
from hypothesis import given, settings
from hypothesis import strategies as st

from routing.audit.logwriter import _LOG_FIELDS, LogRecord
from routing.audit.rows import JSON_LIMIT, TEXT_LIMIT, builder, clean_json, clean_text
from routing.models import RequestLog, ResponseAffinity

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc)


def record(**kw) -> LogRecord:
    return LogRecord(**{"request_id": "req_1", "created_at": NOW, "method": "POST", "endpoint": "responses",
                        "path": "/v1/responses", "status": 200, **kw})


def row_of(rec: LogRecord) -> dict:
    return dict(zip(_LOG_FIELDS, builder(_LOG_FIELDS).row(rec)))


def max_length(name: str) -> int:
    return RequestLog._meta.get_field(name).max_length


def test_nul_and_lone_surrogates_are_escaped():
    assert clean_text("a\x00b") == "a\\x00b"
    assert clean_text("x\ud800y") == "x\\ud800y"
    clean_text("x\ud800y").encode("utf-8")  # now valid UTF-8
    assert clean_text("héllo ✓") == "héllo ✓"  # valid text is untouched


def test_clipping_keeps_the_limit_and_says_so():
    assert clean_text("UNSUBSCRIBE", 10) == "UNSUBSCRI…"
    long = clean_text("x" * 1000, 200)
    assert len(long) == 200 and long.endswith("…[1000 chars]")
    assert clean_text("\x00" * 100, 40) == ("\\x00" * 10)[:39] + "…"  # escaped first, then clipped


@settings(max_examples=200, deadline=None)
@given(st.text(), st.integers(min_value=1, max_value=400))
def test_any_text_fits(value, limit):
    out = clean_text(value, limit)
    assert len(out) <= limit and "\x00" not in out
    out.encode("utf-8")


def test_limits_come_from_the_model_fields():
    row = row_of(record(method="UNSUBSCRIBE", path="/v1/" + "a" * 500, group_name="g" * 1000,
                        response_id="resp_" + "r" * 400, upstream_request_id="u" * 300,
                        error_type="e" * 500, error_message="m" * 100_000, rejected_param="p" * 201))
    for name in ("method", "path", "group_name", "response_id", "upstream_request_id", "error_type", "rejected_param"):
        assert len(row[name]) == max_length(name), name
        assert row[name].endswith("…") or "…[" in row[name], name
    assert len(row["error_message"]) == TEXT_LIMIT


def clamp(value: int, internal_type: str) -> int:
    low, high = connection.ops.integer_field_range(internal_type)
    return min(max(value, low), high)


def test_integers_are_clamped_to_the_column_range_and_odd_numbers_dropped():
    row = row_of(record(input_tokens=2**70, output_tokens=-(2**70), total_tokens=True, cached_tokens="7",
                        latency_ms=math.nan, ttfb_ms=math.inf, status=70_000, bytes_out=None))
    assert row["input_tokens"] == clamp(2**70, "IntegerField") < 2**70
    assert row["output_tokens"] == clamp(-(2**70), "IntegerField") > -(2**70)
    assert row["total_tokens"] == 1 and row["cached_tokens"] is None
    assert row["latency_ms"] is None and row["ttfb_ms"] is None
    assert row["status"] == clamp(70_000, "PositiveSmallIntegerField")
    assert row["bytes_out"] == 0  # NOT NULL column


def test_json_columns_hold_no_nul_escape_and_stay_bounded():
    changes = [{"action": "rewrite", "path": "model", "from": "gpt\x00evil", "to": "x\ud800", "k\x00": 1}]
    row = row_of(record(policy_changes=changes, attempts=[{"error": "z" * (2 * JSON_LIMIT)}]))
    assert "\\u0000" not in row["policy_changes"]
    assert orjson.loads(row["policy_changes"]) == [
        {"action": "rewrite", "path": "model", "from": "gpt\\x00evil", "to": "x\\ud800", "k\\x00": 1}]
    attempts = orjson.loads(row["attempts"])
    assert attempts[0]["truncated"] is True and len(row["attempts"]) <= JSON_LIMIT


@pytest.mark.parametrize("value", [{1: object()}, [[[[[]]]]] * 3, {"n": 2**100}, {"f": math.nan}, list(range(10))])
def test_clean_json_never_raises(value):
    orjson.loads(clean_json(value))


def test_deep_nesting_becomes_text():
    deep = []
    for _ in range(300):
        deep = [deep]
    assert isinstance(orjson.loads(clean_json(deep)), list)


def test_affinities_skip_ids_that_do_not_fit():
    ok, too_long, nul = "resp_ok", "resp_" + "x" * 300, "rs_\x00"
    rec = record(deployment_id=7, group_name="g", response_id=ok, remember_response=True,
                 reasoning_ids=[too_long, nul, "rs_fine"])
    rows = builder(_LOG_FIELDS).affinities(rec, 60)
    assert [r[0] for r in rows] == [ok, "rs_fine"]
    assert ResponseAffinity._meta.get_field("response_id").max_length == 200  # what "fit" means here


def test_remap_fills_columns_an_old_journal_did_not_have():
    b = builder(_LOG_FIELDS)
    old_fields = [f for f in _LOG_FIELDS if f not in ("outcome", "rejected_param")]
    full = dict(zip(_LOG_FIELDS, b.row(record(outcome="completed"))))
    remapped = dict(zip(_LOG_FIELDS, b.remap(old_fields, [full[f] for f in old_fields])))
    assert remapped["outcome"] == "" and remapped["request_id"] == "req_1" and remapped["status"] == 200
