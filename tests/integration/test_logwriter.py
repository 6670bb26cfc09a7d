"""routing/audit/logwriter.py (+ store.py) on the real database (PostgreSQL when DATABASE_URL
points to it): values a client or an upstream controls reach the table fitted to their
columns; a row the database still refuses is quarantined and the rows around it are
written; journaled rows of a process that ended are written by the next one."""

import os
import uuid
from datetime import datetime, timezone

import orjson
import pytest
from django.db import connection

from routing import dbthread
from routing.audit import logwriter, store
from routing.audit.logwriter import _LOG_FIELDS, LogRecord, LogWriter, build_entry
from routing.models import RequestLog, RequestLogQuarantine, ResponseAffinity

pytestmark = pytest.mark.django_db(transaction=True)  # the writer's threads must see (and commit) rows
postgres_only = pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's own refusals")


def record(**kw) -> LogRecord:
    rid = "req_" + uuid.uuid4().hex
    base = dict(request_id=rid, created_at=datetime(2026, 11, 25, 12, 0, 0, 123456, tzinfo=timezone.utc),
                method="POST", endpoint="responses", path="/v1/responses", status=200, stream=True,
                key_name="team-a", group_name="g", deployment_id=7, deployment_name="east", input_tokens=3,
                output_tokens=5, total_tokens=8, policy_changes=[{"action": "drop", "path": "stream_options"}],
                attempts=[{"deployment": "east", "status": 200}], response_id="resp_" + rid)
    return LogRecord(**{**base, **kw})


def write(*records, quarantine_file="/nonexistent/q.jsonl") -> store.BatchResult:
    return store.write_batch([build_entry(r) for r in records], _LOG_FIELDS, quarantine_file)


@pytest.fixture(autouse=True)
def _close_writer_connections():
    """The writer's worker threads keep database connections; close them, or PostgreSQL cannot
    drop the test database at the end ("being accessed by other users")."""
    yield
    import threading

    from django.db import connections

    from routing import dbthread

    barrier = threading.Barrier(dbthread._pool._max_workers)

    def close() -> None:
        connections.close_all()
        barrier.wait(5)  # one call per pool thread

    for future in [dbthread._pool.submit(close) for _ in range(dbthread._pool._max_workers)]:
        future.result()
    dbthread._idle.executor.submit(connections.close_all).result()


@pytest.fixture
def journal_dir(settings, tmp_path):
    settings.GATEWAY = {**settings.GATEWAY, "LOG_JOURNAL_DIR": str(tmp_path / "journal"), "LOG_FLUSH_SECONDS": 60.0,
                        "LOG_SPOOL_FILE": str(tmp_path / "spool.jsonl")}
    return tmp_path / "journal"


def test_batch_roundtrip_and_retry_is_harmless():
    first, second = record(), record(status=499, client_disconnected=True, error_type="client_disconnected")
    write(first, second)
    write(first, second)  # a retried batch
    assert RequestLog.objects.filter(request_id__in=[first.request_id, second.request_id]).count() == 2
    row = RequestLog.objects.get(request_id=first.request_id)
    assert row.created_at == first.created_at
    assert row.policy_changes == [{"action": "drop", "path": "stream_options"}]
    assert (row.stream, row.total_tokens, row.deployment_name) == (True, 8, "east")
    assert RequestLog.objects.get(request_id=second.request_id).client_disconnected is True


def test_affinities_for_responses_and_reasoning_items():
    rec = record(remember_response=True, reasoning_ids=["rs_1", "rs_2"])
    write(rec, record())
    rows = dict(ResponseAffinity.objects.values_list("response_id", "deployment_id"))
    assert rows == {rec.response_id: 7, "rs_1": 7, "rs_2": 7}
    assert ResponseAffinity.objects.get(response_id="rs_1").expires_at > rec.created_at


def test_values_from_clients_and_upstreams_fit_their_columns():
    """The triggers that stopped the log on PostgreSQL, in one batch with a normal row."""
    poison = [
        record(method="UNSUBSCRIBE", path="/v1/\x00"),
        record(path="/v1/" + "a" * 400),
        record(group_name="gpt\x00", policy_changes=[{"action": "rewrite", "path": "model", "from": "gpt\x00"}]),
        record(response_id="resp_" + "r" * 300, upstream_request_id="x" * 300, remember_response=True),
        record(error_type="upstream_500", error_message="boom\x00 \ud800", attempts=[{"error": "nul\x00"}]),
        record(input_tokens=2**40, total_tokens=2**63, latency_ms=float("nan")),
    ]
    normal = record()
    result = write(*poison, normal)
    assert result.quarantined == 0
    rows = {r.request_id: r for r in RequestLog.objects.all()}
    assert set(rows) == {r.request_id for r in [*poison, normal]}
    assert rows[poison[0].request_id].method == "UNSUBSCRI…"
    assert rows[poison[0].request_id].path == "/v1/\\x00"
    assert len(rows[poison[1].request_id].path) == 300
    assert rows[poison[2].request_id].policy_changes[0]["from"] == "gpt\\x00"
    assert rows[poison[3].request_id].response_id.endswith("…[305 chars]")
    assert not ResponseAffinity.objects.exists()  # an id that does not fit is not remembered
    assert rows[poison[4].request_id].error_message == "boom\\x00 \\ud800"
    assert rows[poison[5].request_id].input_tokens > 0 and rows[poison[5].request_id].latency_ms is None


def test_a_refused_row_is_quarantined_and_the_rest_written(tmp_path):
    good = [record() for _ in range(9)]
    bad = record()
    entries = [build_entry(r) for r in good[:4]] + [build_entry(bad)] + [build_entry(r) for r in good[4:]]
    entries[4][0][_LOG_FIELDS.index("status")] = None  # NOT NULL on every database
    result = store.write_batch(entries, _LOG_FIELDS, str(tmp_path / "q.jsonl"))
    assert result.quarantined == 1
    assert set(RequestLog.objects.values_list("request_id", flat=True)) == {r.request_id for r in good}
    (q,) = RequestLogQuarantine.objects.all()
    assert q.request_id == bad.request_id and "status" in q.reason.lower() and bad.request_id in q.raw


@postgres_only
def test_postgresql_refusing_a_nul_is_quarantined_not_retried_forever(tmp_path):
    entries = [build_entry(record()) for _ in range(3)]
    entries[1][0][_LOG_FIELDS.index("error_message")] = "raw\x00nul"  # as if nothing had normalised it
    result = store.write_batch(entries, _LOG_FIELDS, str(tmp_path / "q.jsonl"))
    ids = [entry[0][_LOG_FIELDS.index("request_id")] for entry in entries]
    assert result.quarantined == 1 and RequestLog.objects.filter(request_id__in=ids).count() == 2
    (q,) = RequestLogQuarantine.objects.all()
    assert "0x00" in q.reason or "nul" in q.reason.lower() and "\\x00" in q.raw


async def test_writer_keeps_going_past_a_bad_row_and_says_so(journal_dir):
    writer = LogWriter()
    records = [record() for _ in range(5)]
    for r in records:
        writer.enqueue(r)
    writer._pending[2][0][0][_LOG_FIELDS.index("status")] = None  # sabotage one queued row
    await writer.drain()
    await writer.close()
    written = set(await _ids(*records))
    assert written == {r.request_id for i, r in enumerate(records) if i != 2}
    health = writer.health()
    assert health["quarantined"] == 1 and health["queue_depth"] == 0 and health["ok"]
    assert health["last_success_at"] and "status" in health["last_error"].lower()
    assert _journal_files(journal_dir) == []


async def test_rows_of_an_ended_process_are_written_by_the_next(journal_dir):
    dead = LogWriter()
    records = [record(group_name="g\x00") for _ in range(4)]
    for r in records:
        dead.enqueue(r)
    dead._task.cancel()  # the process ends before its writer flushed: the kernel closes its files
    for seg in dead.journal().segments:
        os.close(seg.fd)
    assert len(_journal_files(journal_dir)) == 1 and not await _ids(*records)

    successor = LogWriter()
    await successor.start()
    await successor.drain()
    assert set(await _ids(*records)) == {r.request_id for r in records}
    assert _journal_files(journal_dir) == []
    await successor.close()


async def test_a_backlog_past_the_limit_waits_on_disk_and_comes_back(journal_dir, monkeypatch):
    monkeypatch.setattr(logwriter, "MAX_BACKLOG", 10)
    writer = LogWriter()
    records = [record() for _ in range(40)]
    for i, r in enumerate(records):
        writer.enqueue(r)
        if i % 10 == 9:
            writer.journal().rotate()
    writer._spill_if_over()
    assert len(writer._pending) <= 10 and writer.health()["segments_waiting_on_disk"] >= 3
    await writer.drain()
    assert set(await _ids(*records)) == {r.request_id for r in records}
    await writer.close()
    assert _journal_files(journal_dir) == []


async def test_a_writer_behind_writes_at_once_and_a_routine_batch_waits_for_idle_cpu(journal_dir, settings,
                                                                                   monkeypatch):
    settings.GATEWAY = {**settings.GATEWAY, "LOG_BATCH_SIZE": 5}
    patience = []
    run_background = dbthread.run_background

    async def recorded(fn, *args, **kwargs):
        patience.append(kwargs.get("patience", "default"))
        return await run_background(fn, *args, **kwargs)

    monkeypatch.setattr(dbthread, "run_background", recorded)
    writer = LogWriter()
    records = [record() for _ in range(25)]  # over 4 batches queued: behind
    for r in records:
        writer.enqueue(r)
    writer._task.cancel()
    while writer._pending:
        assert await writer._flush_once(background=True)
    assert patience == [0, 0.5, 0.5, 0.5, 0.5]
    assert set(await _ids(*records)) == {r.request_id for r in records}
    await writer.close()


async def test_the_old_spool_file_is_replayed(journal_dir, settings):
    old = record()
    fields = {k: getattr(old, k) for k in LogRecord.__dataclass_fields__ if k != "row"}
    with open(settings.GATEWAY["LOG_SPOOL_FILE"], "wb") as fh:
        fh.write(orjson.dumps(fields) + b"\n" + b"{not json\n")
    writer = LogWriter()
    await writer.start()
    await writer.drain()
    assert await _ids(old) == [old.request_id]
    assert not os.path.exists(settings.GATEWAY["LOG_SPOOL_FILE"])
    assert await _quarantined() == 1  # the unreadable line is kept, not dropped
    await writer.close()


async def _query(fn):
    """Run an ORM query from an async test, then close that thread's connection (see above)."""
    from asgiref.sync import sync_to_async
    from django.db import connections

    def run():
        try:
            return fn()
        finally:
            connections.close_all()

    return await sync_to_async(run)()


async def _ids(*records) -> list[str]:
    """The request ids of these records that have rows (other rows may come and go: the session's
    gateway server writes into the same database, late when the machine is busy)."""
    wanted = [r.request_id for r in records]
    return await _query(lambda: list(RequestLog.objects.filter(request_id__in=wanted)
                                     .values_list("request_id", flat=True)))


async def _quarantined() -> int:
    return await _query(RequestLogQuarantine.objects.count)


def _journal_files(directory) -> list[str]:
    return sorted(n for n in os.listdir(directory) if n.startswith("journal-")) if directory.exists() else []
