"""RequestLog rows, written off the hot path, and never lost or stuck.

Requests call `writer.enqueue(record)`: no wait. It builds the row fitted to its columns
(routing/audit/rows.py), appends it to this process's journal file (one `write()`,
routing/audit/journal.py) and queues it. From then on the row is accepted: it survives a
crash of the process and outages of the database.

A background task inserts queued rows every GATEWAY_LOG_FLUSH_SECONDS (sooner when a
batch fills) on a worker thread (routing/audit/store.py). A batch the database refuses
is split until the row at fault is found; that row goes to the quarantine table with the
reason, and the rows around it are written. While the database is away, batches wait
and are tried again with backoff; past MAX_BACKLOG rows in memory, older journal
segments are read back from disk later instead of being held.

`await writer.start()` (lifespan startup) adopts the journals of processes that ended
(crashed, killed, or shut down before their last rows were in) and an old-style spool
file, and starts the task; `enqueue` also starts it. `await writer.close()` (lifespan
shutdown) writes what it can within its deadline; the rest stays in the journal for
the next start. `writer.health()` says whether it keeps up (for /readyz and /metrics).
"""

import asyncio
import dataclasses
import logging
import os
import time
from datetime import datetime, timezone

import orjson
from django.conf import settings

from routing import dbthread
from routing.audit import rows, store
from routing.audit.journal import Journal, Segment

log = logging.getLogger(__name__)
MAX_BACKLOG = 200_000  # rows held in memory; more stay in the journal files until there is room


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


_LOG_FIELDS = tuple(f.name for f in dataclasses.fields(LogRecord)
                    if f.name not in ("remember_response", "reasoning_ids", "row"))


def build_entry(record: LogRecord) -> list:
    """[log row, [affinity rows]] for `record`: never raises (a record that cannot be built at
    all still gets a row that says so)."""
    builder = rows.builder(_LOG_FIELDS)
    try:
        if not record.deployment_id or not (record.reasoning_ids or record.remember_response):
            return [builder.row(record), []]
        return [builder.row(record),
                builder.affinities(record, settings.GATEWAY["RESPONSE_AFFINITY_TTL_SECONDS"])]
    except Exception as exc:  # a bug, not bad data: keep the request's row anyway
        log.exception("request log row for %s could not be built", getattr(record, "request_id", "?"))
        stub = LogRecord(request_id=str(getattr(record, "request_id", "") or "req_unknown"),
                         created_at=datetime.now(timezone.utc), method=str(getattr(record, "method", "")),
                         endpoint=str(getattr(record, "endpoint", "")), path=str(getattr(record, "path", "")),
                         status=getattr(record, "status", 0), error_type="log_row_unbuildable",
                         error_message=f"{type(exc).__name__}: {exc}")
        return [builder.row(stub), []]


class LogWriter:
    def __init__(self) -> None:
        self._pending: list[tuple[list, Segment | None]] = []  # (entry, its journal segment)
        self._journal: Journal | None = None
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task | None = None
        self._flushing: asyncio.Lock | None = None  # one batch at a time (the task, close() and drain())
        self._started_at = time.time()
        self._waiting_since = self._started_at  # when the queue last went from empty to not empty
        self.on_row = None  # called with each accepted row, e.g. the observer's deque.append (routing/monitoring)
        self.last_success_at: float | None = None
        self.last_error = ""
        self.last_error_at: float | None = None
        self.quarantined = 0
        self.written = 0

    # --- the request path ---------------------------------------------------------------------------------------

    def enqueue(self, record: LogRecord) -> None:
        # The row is built here, a few microseconds per request, rather than by the writer
        # thread: a thread building hundreds of rows at once holds the GIL for milliseconds
        # and those pauses showed up as the gateway's latency tail.
        entry = build_entry(record)
        record.row = tuple(entry[0])
        if self.on_row is not None:
            self.on_row(record.row)
        self._accept(entry)
        if self._task is None or self._task.done():
            self._start_task()
        elif len(self._pending) >= settings.GATEWAY["LOG_BATCH_SIZE"] and self._wake is not None:
            self._wake.set()

    def _accept(self, entry: list) -> None:
        try:
            segment = self.journal().append(orjson.dumps(entry) + b"\n")
        except Exception as exc:  # never the request's problem: the row still goes to the database
            log.exception("request log row not journaled")
            self.journal().error, segment = store.describe(exc), None
        if not self._pending:
            self._waiting_since = time.time()
        self._pending.append((entry, segment))

    def journal(self) -> Journal:
        if self._journal is None:
            self._journal = Journal(settings.GATEWAY["LOG_JOURNAL_DIR"], list(_LOG_FIELDS))
        return self._journal

    # --- lifecycle ----------------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Lifespan startup: take over ended processes' journals and the old spool file, start writing."""
        self.journal().adopt_orphans()
        unreadable = self._replay_spool()
        if unreadable:
            await dbthread.run(_quarantine_lines, unreadable, "the old spool file", self._quarantine_file())
            self.quarantined += len(unreadable)
        if self._task is None or self._task.done():
            self._start_task()
        self._wake.set()

    def _start_task(self) -> None:
        self._wake = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="requestlog-writer")

    async def _run(self) -> None:
        backoff = 0.5
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), settings.GATEWAY["LOG_FLUSH_SECONDS"])
            except TimeoutError:
                pass
            self._wake.clear()
            try:
                await self._maintain()
                while self._pending:
                    if not await self._flush_once(background=True):
                        self._spill_if_over()
                        await asyncio.sleep(backoff)
                        backoff = min(backoff * 2, 10.0)
                        break
                    backoff = 0.5
                    await self._maintain()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # never let the writer die: note it, wait, go on
                log.exception("request log writer error")
                self._error(exc)
                await asyncio.sleep(backoff)

    async def _flush_once(self, background: bool = False) -> bool:
        if self._flushing is None:
            self._flushing = asyncio.Lock()
        async with self._flushing:
            return await self._flush_locked(background)

    async def _flush_locked(self, background: bool) -> bool:
        size = settings.GATEWAY["LOG_BATCH_SIZE"]
        batch = self._pending[:size]
        if not batch:
            return True
        job = (_sync_and_write, self.journal() if settings.GATEWAY["LOG_JOURNAL_FSYNC"] else None,
               [entry for entry, _ in batch], self._quarantine_file())
        try:
            if background:  # routine: when the CPU is free; falling behind: at once, at a low CPU weight
                result = await dbthread.run_background(*job, patience=0.5 if len(self._pending) <= 4 * size else 0)
            else:  # shutting down, or drain()
                result = await dbthread.run(*job)
        except store.DatabaseAway as exc:
            log.warning("request log: database unavailable, %d rows wait (%s)", len(self._pending), exc)
            self._error(exc)
            return False
        except Exception as exc:
            log.exception("request log batch of %d failed; will retry", len(batch))
            self._error(exc)
            return False
        del self._pending[: len(batch)]
        journal = self.journal()
        for _, segment in batch:
            journal.done(segment)
        journal.rotate()
        self.written += len(batch) - result.quarantined
        self.quarantined += result.quarantined
        self.last_success_at = time.time()
        if result.errors:
            self._error(RuntimeError("quarantined: " + result.errors[-1]))
        return True

    def _error(self, exc: BaseException) -> None:
        self.last_error, self.last_error_at = store.describe(exc)[:1000], time.time()

    def _quarantine_file(self) -> str:
        return os.path.join(settings.GATEWAY["LOG_JOURNAL_DIR"], f"quarantine-{os.getpid()}.jsonl")

    async def _maintain(self) -> None:
        """Adopt ended processes' journals now and then; read rows kept on disk back when there is room."""
        journal = self.journal()
        if journal.scan_due():
            journal.adopt_orphans()
        room = 2 * settings.GATEWAY["LOG_BATCH_SIZE"]
        for segment in journal.unloaded():
            if len(self._pending) >= room:
                break
            fields, entries, bad = await dbthread.run(journal.read, segment)
            if bad:
                await dbthread.run(_quarantine_lines, bad, segment.path, self._quarantine_file())
                self.quarantined += len(bad)
            entries = _remapped(fields, entries)
            if entries and not self._pending:
                self._waiting_since = time.time()
            self._pending.extend((entry, segment) for entry in entries)
            journal.loaded_now(segment, len(entries))

    def _spill_if_over(self) -> None:
        if len(self._pending) <= MAX_BACKLOG:
            return
        journal = self.journal()
        journal.rotate()
        spill: set[int] = set()
        kept = len(self._pending)
        for segment in journal.segments:  # oldest first
            if kept <= MAX_BACKLOG // 2:
                break
            if segment.loaded and segment is not journal.current and segment.outstanding:
                spill.add(id(segment))
                kept -= segment.outstanding
                journal.spill(segment)
        if spill:
            self._pending = [p for p in self._pending if p[1] is None or id(p[1]) not in spill]
            log.warning("request log backlog: %d rows kept in memory, the rest wait in the journal", kept)

    async def close(self, timeout: float = 10.0) -> None:
        """Flush everything (shutdown). What cannot be written in time stays in the journal."""
        if self._task is not None:
            self._task.cancel()
            self._task = None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        try:
            while loop.time() < deadline:
                await self._maintain()
                if not self._pending:
                    break
                if not await self._flush_once():
                    await asyncio.sleep(0.2)
        finally:
            left = len(self._pending)
            kept = self.journal().close()
            self._journal, self._pending = None, []
            if left or kept:
                log.error("request log: %d queued rows not written at shutdown; %d journal segment(s) kept in %s "
                          "for the next start", left, kept, settings.GATEWAY["LOG_JOURNAL_DIR"])

    async def drain(self) -> None:
        """Write what is queued now (tests and benchmarks)."""
        await self._maintain()
        while self._pending:
            if not await self._flush_once():
                await asyncio.sleep(0.1)
            await self._maintain()

    def health(self) -> dict:
        """Does the writer keep up? For readiness and metrics: cheap, no I/O, callable from any thread.

        Stalled (`ok` false) means: rows are waiting, in memory or in journal segments on disk,
        and none has been written for GATEWAY_LOG_STALL_SECONDS, counted from the last batch
        written or, when the queue was empty until then, from when the first of them arrived.
        A writer with nothing to write is never stalled, however long ago its last batch was.
        """
        now = time.time()
        journal = self._journal
        on_disk = len(journal.unloaded()) if journal else 0
        since = max(self.last_success_at or 0.0, self._waiting_since)
        stalled = bool(self._pending or on_disk) and now - since > settings.GATEWAY["LOG_STALL_SECONDS"]
        return {
            "ok": not stalled,
            "queue_depth": len(self._pending),
            "segments_waiting_on_disk": on_disk,
            "last_success_at": self.last_success_at,
            "last_error": self.last_error,
            "last_error_at": self.last_error_at,
            "quarantined": self.quarantined,
            "written": self.written,
            "journal_error": journal.error if journal else "",
        }

    # --- the spool file of earlier versions: replayed once, through the journal ---

    def _replay_spool(self) -> list[bytes]:
        """Journal the rows of an old spool file; returns its unreadable lines."""
        path, unreadable = settings.GATEWAY["LOG_SPOOL_FILE"], []
        if not os.path.exists(path):
            return unreadable
        taken = path + f".replay-{os.getpid()}"
        try:
            os.replace(path, taken)
        except OSError:
            return unreadable
        with open(taken, "rb") as fh:
            for line in fh:
                if not line.strip():
                    continue
                try:
                    data = orjson.loads(line)
                    data.pop("row", None)
                    data["created_at"] = datetime.fromisoformat(data["created_at"]).astimezone(timezone.utc)
                    self._accept(build_entry(LogRecord(**data)))
                except Exception:
                    unreadable.append(line.rstrip(b"\n"))
        os.remove(taken)
        return unreadable


def _sync_and_write(journal: Journal | None, entries: list, quarantine_file: str) -> store.BatchResult:
    if journal is not None:
        journal.sync()
    return store.write_batch(entries, _LOG_FIELDS, quarantine_file)


def _quarantine_lines(lines: list[bytes], source: str, quarantine_file: str) -> None:
    for line in lines:
        store.quarantine_raw(line.decode("utf-8", "replace"), f"unreadable line in {os.path.basename(source)}",
                             "", quarantine_file)


def _remapped(fields: list[str] | None, entries: list) -> list:
    """Entries of a journal written with other columns (an older version) mapped to today's."""
    if fields is None or tuple(fields) == _LOG_FIELDS:
        return entries
    return [[rows.builder(_LOG_FIELDS).remap(fields, row), affinities] for row, affinities in entries]


writer = LogWriter()
