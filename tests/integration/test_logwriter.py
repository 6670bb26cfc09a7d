"""routing/logwriter.py: batch inserts are complete, idempotent, and write affinities."""

import uuid
from datetime import datetime, timezone

import pytest

from routing.audit.logwriter import LogRecord, _write
from routing.models import RequestLog, ResponseAffinity

pytestmark = pytest.mark.django_db


def record(**kw) -> LogRecord:
    rid = "req_" + uuid.uuid4().hex
    base = dict(request_id=rid, created_at=datetime(2026, 11, 25, 12, 0, 0, 123456, tzinfo=timezone.utc),
                method="POST", endpoint="responses", path="/v1/responses", status=200, stream=True,
                key_name="team-a", group_name="g", deployment_id=7, deployment_name="east", input_tokens=3,
                output_tokens=5, total_tokens=8, policy_changes=[{"action": "drop", "path": "stream_options"}],
                attempts=[{"deployment": "east", "status": 200}], response_id="resp_" + rid)
    return LogRecord(**{**base, **kw})


def test_batch_roundtrip_and_retry_is_harmless():
    first, second = record(), record(status=499, client_disconnected=True, error_type="client_disconnected")
    _write([first, second])
    _write([first, second])  # a retried batch
    assert RequestLog.objects.count() == 2
    row = RequestLog.objects.get(request_id=first.request_id)
    assert row.created_at == first.created_at
    assert row.policy_changes == [{"action": "drop", "path": "stream_options"}]
    assert (row.stream, row.total_tokens, row.deployment_name) == (True, 8, "east")
    assert RequestLog.objects.get(request_id=second.request_id).client_disconnected is True


def test_affinities_for_responses_and_reasoning_items():
    rec = record(remember_response=True, reasoning_ids=["rs_1", "rs_2"])
    _write([rec, record()])
    rows = dict(ResponseAffinity.objects.values_list("response_id", "deployment_id"))
    assert rows == {rec.response_id: 7, "rs_1": 7, "rs_2": 7}
    assert ResponseAffinity.objects.get(response_id="rs_1").expires_at > rec.created_at
