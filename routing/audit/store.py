"""Writing request-log entries to the database, in a worker thread (routing.dbthread).

`write_batch(entries)` inserts with `executemany` on prebuilt `INSERT … ON CONFLICT DO
NOTHING` statements (the ORM's bulk_create was a fifth of the gateway's CPU at a
thousand requests a second; a retried batch cannot duplicate a row). It never lets one
row stop the others:

- the batch fails → does the database take a good row at all? (`database_takes_rows`)
  - no: `DatabaseAway` is raised and nothing is decided; the caller keeps the batch and
    tries again later (an outage must not send good rows to quarantine);
  - yes: the batch is split in two and each half written the same way (bisection), so
    one bad row costs about 2·log2(batch) statements;
- a single row that fails twice with the database there goes to `RequestLogQuarantine`
  (the reason, and the row as ASCII text); if even that insert fails, to a JSON-lines
  file beside the journal. Either way it is done with.

Entries are `rows.Entry`-shaped lists: [log row, [affinity rows]].
"""

from __future__ import annotations

import logging
import os

import orjson

from routing.audit.rows import TEXT_LIMIT, clean_text

log = logging.getLogger(__name__)
RAW_LIMIT = 256_000  # characters of a quarantined row's text


class DatabaseAway(Exception):
    """The database cannot be reached: nothing about the rows is known."""


def insert_sql(table: str, columns: list[str]) -> str:
    cols = ", ".join(f'"{c}"' for c in columns)
    marks = ", ".join(["%s"] * len(columns))
    return f'INSERT INTO "{table}" ({cols}) VALUES ({marks}) ON CONFLICT DO NOTHING'


def _statements(log_fields: tuple[str, ...]) -> tuple[str, str]:
    from routing.models import RequestLog, ResponseAffinity

    affinity_fields = ["response_id", "deployment_id", "group_name", "created_at", "expires_at"]
    return (insert_sql(RequestLog._meta.db_table, list(log_fields)),
            insert_sql(ResponseAffinity._meta.db_table, affinity_fields))


def _insert(entries: list, log_fields: tuple[str, ...]) -> None:
    from django.db import connection, transaction

    log_sql, affinity_sql = _statements(log_fields)
    affinities = [a for _, rows in entries for a in rows]
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.executemany(log_sql, [row for row, _ in entries])
        if affinities:
            cursor.executemany(affinity_sql, affinities)


def database_takes_rows() -> bool:
    """Does the database accept a request-log row right now? A well-formed row is inserted
    and rolled back, on a fresh connection: this tells "the database is away (down, locked,
    read-only)" from "this row is bad", whatever exception either raised."""
    from django.db import connection, transaction
    from django.utils import timezone

    from routing.models import RequestLog

    connection.close()  # a connection that just failed may be broken
    try:
        with transaction.atomic():
            RequestLog.objects.create(request_id="probe-" + os.urandom(8).hex(), created_at=timezone.now(),
                                      method="GET", endpoint="probe", path="/", status=0)
            transaction.set_rollback(True)
        return True
    except Exception:
        return False


class BatchResult:
    __slots__ = ("quarantined", "errors")

    def __init__(self) -> None:
        self.quarantined = 0
        self.errors: list[str] = []


def write_batch(entries: list, log_fields: tuple[str, ...], quarantine_file: str) -> BatchResult:
    """Write every entry or quarantine it; raise DatabaseAway when the database is not there."""
    outcome = BatchResult()
    _write(entries, log_fields, quarantine_file, outcome)
    return outcome


def _write(entries: list, log_fields, quarantine_file: str, outcome: BatchResult) -> None:
    try:
        _insert(entries, log_fields)
        return
    except Exception as exc:
        error = exc
    if not database_takes_rows():
        raise DatabaseAway(str(error)) from error
    if len(entries) > 1:
        middle = len(entries) // 2
        _write(entries[:middle], log_fields, quarantine_file, outcome)
        _write(entries[middle:], log_fields, quarantine_file, outcome)
        return
    try:  # one row: once more (a deadlock or a serialization failure is not the row's fault)
        _insert(entries, log_fields)
        return
    except Exception as exc:
        error = exc
    if not database_takes_rows():
        raise DatabaseAway(str(error)) from error
    _quarantine(entries[0], log_fields, error, quarantine_file)
    outcome.quarantined += 1
    outcome.errors.append(f"{type(error).__name__}: {error}")


def _request_id(entry, log_fields) -> str:
    try:
        return clean_text(entry[0][log_fields.index("request_id")], 40)
    except (ValueError, IndexError, TypeError):
        return ""


def describe(error: BaseException) -> str:
    return clean_text(f"{type(error).__name__}: {error}", TEXT_LIMIT)


def quarantine_raw(entry, reason: str, request_id: str, quarantine_file: str) -> None:
    """Keep an entry (or an unreadable journal line, as text) that will never be inserted."""
    from routing.models import RequestLogQuarantine

    raw = clean_text(ascii(entry), RAW_LIMIT)
    log.error("request log row %s quarantined: %s", request_id or "?", reason[:500])
    try:
        RequestLogQuarantine.objects.create(request_id=clean_text(request_id, 40), reason=reason, raw=raw)
        return
    except Exception as exc:
        log.exception("quarantine table refused the row too; writing it to %s", quarantine_file)
        reason = f"{reason}; quarantine table: {describe(exc)}"
    fd = os.open(quarantine_file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, orjson.dumps({"request_id": request_id, "reason": reason, "raw": raw}) + b"\n")
    finally:
        os.close(fd)


def _quarantine(entry, log_fields, error: BaseException, quarantine_file: str) -> None:
    quarantine_raw(entry, describe(error), _request_id(entry, log_fields), quarantine_file)
