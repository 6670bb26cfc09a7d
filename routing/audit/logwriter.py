"""RequestLog rows, written off the hot path.

Requests call `writer.enqueue(record)`: a list append, never a wait. A background task
batches records into the database every GATEWAY_LOG_FLUSH_SECONDS (or sooner when a
batch fills). Rows are never dropped: a failed batch is retried with backoff (inserts
ignore request ids already written, so a retry cannot duplicate); a backlog past
MAX_BACKLOG, and whatever is still queued when shutdown's flush deadline passes, goes
to a JSON-lines spool file, which the next writer start replays.
"""

import asyncio
import dataclasses
import functools
import logging
import operator
import os
from datetime import datetime, timedelta, timezone

import orjson
from django.conf import settings

from routing import dbthread

log = logging.getLogger(__name__)
MAX_BACKLOG = 200_000


@dataclasses.dataclass(slots=True)
class LogRecord:
    request_id: str
    created_at: datetime
    method: str
    endpoint: str
    path: str
    status: int = 0
    stream: bool = False
    key_id: int | None = None
    key_name: str = ""
    group_name: str = ""
    deployment_id: int | None = None
    deployment_name: str = ""
    provider: str = ""
    upstream_status: int | None = None
    latency_ms: float | None = None
    ttfb_ms: float | None = None
    overhead_ms: float | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    total_tokens: int | None = None
    cached_tokens: int | None = None
    reasoning_tokens: int | None = None
    served_group: str = ""
    policy_changes: list = dataclasses.field(default_factory=list)
    attempts: list = dataclasses.field(default_factory=list)
    response_id: str = ""
    upstream_request_id: str = ""
    error_type: str = ""
    error_message: str = ""
    outcome: str = ""  # models.Outcome; set where it is known, else derived in Call.done()
    rejected_param: str = ""
    client_disconnected: bool = False
    bytes_out: int = 0
    remember_response: bool = False  # write response_id → deployment affinity
    reasoning_ids: list = dataclasses.field(default_factory=list)  # also remembered → deployment
    row: tuple | None = None  # the INSERT parameters, built at enqueue time (see LogWriter.enqueue)


_LOG_FIELDS = [f.name for f in dataclasses.fields(LogRecord)
               if f.name not in ("remember_response", "reasoning_ids", "row")]
_AFFINITY_FIELDS = ["response_id", "deployment_id", "group_name", "created_at", "expires_at"]
_values = operator.attrgetter(*_LOG_FIELDS)
_CREATED, _POLICY, _ATTEMPTS = (_LOG_FIELDS.index(n) for n in ("created_at", "policy_changes", "attempts"))


def _sqlite_timestamp(value: datetime) -> str:
    """What Django stores in SQLite for an aware UTC datetime: naive ISO text."""
    return value.astimezone(timezone.utc).replace(tzinfo=None).isoformat(" ")


def _json_text(value) -> str:
    return orjson.dumps(value).decode()


@functools.cache
def _adapters():
    """(timestamp, json) adapters for the configured database, equivalent to what the ORM
    would store: SQLite keeps both as text; psycopg takes aware datetimes as they are and
    casts JSON text (sent untyped) into jsonb."""
    from django.db import connection

    if connection.vendor == "sqlite":
        return _sqlite_timestamp, _json_text
    if connection.vendor == "postgresql":
        return (lambda value: value), _json_text
    ops = connection.ops
    return ops.adapt_datetimefield_value, (lambda value: ops.adapt_json_value(value, None))


def _row(r: LogRecord) -> tuple:
    """The INSERT parameters for one record: a few microseconds (the ORM's per-field
    adaptation took ~27 µs, on the event loop, for every request)."""
    ts, js = _adapters()
    row = list(_values(r))
    row[_CREATED], row[_POLICY], row[_ATTEMPTS] = ts(row[_CREATED]), js(row[_POLICY]), js(row[_ATTEMPTS])
    return tuple(row)


def _insert_sql(table: str, columns: list[str]) -> str:
    """One INSERT for a batch, idempotent on the unique key (a retried batch is harmless)."""
    cols = ", ".join(f'"{c}"' for c in columns)
    marks = ", ".join(["%s"] * len(columns))
    return f'INSERT INTO "{table}" ({cols}) VALUES ({marks}) ON CONFLICT DO NOTHING'


def _write(records: list[LogRecord]) -> None:
    """Write a batch with `executemany` on prebuilt statements: the ORM's bulk_create (a
    model instance and per-field compilation per row) was a fifth of the gateway's CPU
    time at a thousand requests a second."""
    from django.db import connection, transaction

    from routing.models import RequestLog, ResponseAffinity

    rows = [r.row or _row(r) for r in records]
    ts = _adapters()[0]
    ttl = timedelta(seconds=settings.GATEWAY["RESPONSE_AFFINITY_TTL_SECONDS"])
    affinities = [
        (rid, r.deployment_id, r.group_name, ts(r.created_at), ts(r.created_at + ttl))
        for r in records if r.deployment_id
        for rid in ([r.response_id] if r.remember_response and r.response_id else []) + r.reasoning_ids
    ]
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.executemany(_insert_sql(RequestLog._meta.db_table, _LOG_FIELDS), rows)
        if affinities:
            cursor.executemany(_insert_sql(ResponseAffinity._meta.db_table, _AFFINITY_FIELDS), affinities)


class LogWriter:
    def __init__(self) -> None:
        self._pending: list[LogRecord] = []
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task | None = None
        self._closing = False

    def enqueue(self, record: LogRecord) -> None:
        # The row is built here, a few microseconds per request, rather than by the writer
        # thread: a thread building hundreds of rows at once holds the GIL for milliseconds
        # and those pauses showed up as the gateway's latency tail.
        record.row = _row(record)
        self._pending.append(record)
        if self._task is None or self._task.done():
            self._start()
        elif len(self._pending) >= settings.GATEWAY["LOG_BATCH_SIZE"] and self._wake is not None:
            self._wake.set()

    def _start(self) -> None:
        self._wake = asyncio.Event()
        self._replay_spool()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="requestlog-writer")

    async def _run(self) -> None:
        backoff = 0.5
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), settings.GATEWAY["LOG_FLUSH_SECONDS"])
            except TimeoutError:
                pass
            self._wake.clear()
            while self._pending:
                ok = await self._flush_once(background=True)
                if not ok:
                    if len(self._pending) > MAX_BACKLOG:
                        self._spool(self._pending[: len(self._pending) - MAX_BACKLOG])
                        del self._pending[: len(self._pending) - MAX_BACKLOG]
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, 10.0)
                    break
                backoff = 0.5

    async def _flush_once(self, background: bool = False) -> bool:
        size = settings.GATEWAY["LOG_BATCH_SIZE"]
        batch = self._pending[:size]
        try:
            if background and len(self._pending) <= 4 * size:  # routine: when the CPU is free
                await dbthread.run_background(_write, batch)
            else:  # falling behind, or shutting down
                await dbthread.run(_write, batch)
        except Exception:
            log.exception("request log batch of %d failed; will retry", len(batch))
            return False
        del self._pending[: len(batch)]
        return True

    async def close(self, timeout: float = 10.0) -> None:
        """Flush everything (shutdown). What cannot be written in time is spooled."""
        if self._task is not None:
            self._task.cancel()
            self._task = None
        deadline = asyncio.get_running_loop().time() + timeout
        while self._pending and asyncio.get_running_loop().time() < deadline:
            if not await self._flush_once():
                await asyncio.sleep(0.2)
        if self._pending:
            self._spool(self._pending)
            self._pending = []

    async def drain(self) -> None:
        """Write what is queued now (tests and benchmarks)."""
        while self._pending:
            if not await self._flush_once():
                await asyncio.sleep(0.1)

    # --- spool file: the last resort that keeps rows when the database is away ---
    def _spool(self, records: list[LogRecord]) -> None:
        path = settings.GATEWAY["LOG_SPOOL_FILE"]
        with open(path, "ab") as fh:
            for r in records:
                fields = {f.name: getattr(r, f.name) for f in dataclasses.fields(r) if f.name != "row"}
                fh.write(orjson.dumps(fields) + b"\n")
        log.error("spooled %d request log rows to %s", len(records), path)

    def _replay_spool(self) -> None:
        path = settings.GATEWAY["LOG_SPOOL_FILE"]
        if not os.path.exists(path):
            return
        taken = path + f".replay-{os.getpid()}"
        try:
            os.replace(path, taken)
        except OSError:
            return
        with open(taken, "rb") as fh:
            for line in fh:
                if line.strip():
                    data = orjson.loads(line)
                    data["created_at"] = datetime.fromisoformat(data["created_at"]).astimezone(timezone.utc)
                    self._pending.append(LogRecord(**data))
        os.remove(taken)


writer = LogWriter()
