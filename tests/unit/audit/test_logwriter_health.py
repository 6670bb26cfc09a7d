"""routing/audit/logwriter.py `health()`: what "stalled" means (it makes /readyz answer 503).

Rows must have been waiting, with nothing written, for GATEWAY_LOG_STALL_SECONDS: counted from
the last batch written, or from when the first waiting row arrived. An idle writer never stalls."""

from datetime import datetime, timezone
from types import SimpleNamespace

import pytest

from routing.audit import logwriter
from routing.audit.logwriter import LogRecord, LogWriter, build_entry


@pytest.fixture
def clock(settings, tmp_path, monkeypatch):
    settings.GATEWAY = {**settings.GATEWAY, "LOG_JOURNAL_DIR": str(tmp_path / "journal"), "LOG_STALL_SECONDS": 30.0}
    now = SimpleNamespace(t=1_000_000.0)
    monkeypatch.setattr(logwriter, "time", SimpleNamespace(time=lambda: now.t))
    return now


def row() -> list:
    return build_entry(LogRecord(request_id="req_1", created_at=datetime.now(timezone.utc), method="POST",
                                 endpoint="responses", path="/v1/responses", status=200))


def test_an_idle_writer_is_never_stalled_and_a_new_row_is_not_late(clock):
    writer = LogWriter()
    clock.t += 3600  # an hour with no traffic and no write
    assert writer.health()["ok"]
    writer._accept(row())
    assert writer.health()["ok"], "a row that just arrived is not late"
    clock.t += 29
    assert writer.health()["ok"]
    clock.t += 2
    health = writer.health()
    assert not health["ok"] and health["queue_depth"] == 1
    writer.journal().close()


def test_a_write_restarts_the_clock_while_rows_keep_waiting(clock):
    writer = LogWriter()
    writer._accept(row())
    clock.t += 31
    assert not writer.health()["ok"]
    writer.last_success_at = clock.t  # a batch went in; others still wait
    writer._accept(row())
    assert writer.health()["ok"]
    clock.t += 31
    assert not writer.health()["ok"]
    writer._pending.clear()  # everything written
    assert writer.health()["ok"]
    writer.journal().close()
