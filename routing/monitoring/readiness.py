"""/readyz: can this process take traffic? Three checks, each bounded in time.

- `database`: `SELECT 1` on a connection of its own, opened for the check and closed after it,
  so a pooled connection cannot answer for a database that has gone. It runs on a thread of
  its own (never the log writer's or the admin's threads), with the driver's connect timeout
  (PostgreSQL: 2 s, plus a 2 s TCP user timeout). At most one check is in flight: probes that
  arrive meanwhile share it. Without an answer within DB_TIMEOUT the check fails with "timeout".
- `routes`: the in-memory route table has been loaded (routing/config/route_table.py). Until
  then /v1 answers 503 routes_unavailable. After that the table keeps serving, database or not.
- `log_writer`: not stalled as `LogWriter.health()` defines it. Rows have been waiting, in
  memory or in journal segments, and none has been written for GATEWAY_LOG_STALL_SECONDS (30 s).
  An idle writer is never stalled.

Only the name of an exception is reported (e.g. "OperationalError"). Its text can name hosts
and ports, so it goes to the gateway's log, once each time the check's state changes.
"""

import asyncio
import logging
import time
from concurrent.futures import Future, ThreadPoolExecutor

from routing.audit.logwriter import writer
from routing.config import route_table

log = logging.getLogger(__name__)
DB_TIMEOUT = 1.0


def ping() -> float:
    """SELECT 1 on a fresh connection to the default database; the milliseconds it took."""
    from django.db import connections
    from django.db.utils import load_backend

    base = connections["default"].settings_dict
    options = {k: v for k, v in (base.get("OPTIONS") or {}).items() if k != "pool"}
    if base["ENGINE"].endswith("postgresql"):
        import psycopg

        options.setdefault("connect_timeout", 2)  # libpq's minimum
        if psycopg.pq.version() >= 120000:
            options.setdefault("tcp_user_timeout", 2000)  # ms an unacknowledged send may wait
    elif base["ENGINE"].endswith("sqlite3"):
        options["timeout"] = DB_TIMEOUT
    connection = load_backend(base["ENGINE"]).DatabaseWrapper({**base, "OPTIONS": options}, "readyz")
    started = time.perf_counter()
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    finally:
        connection.close()
    return (time.perf_counter() - started) * 1000


class DatabaseCheck:
    def __init__(self, probe=ping) -> None:
        self.probe = probe
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gateway-readyz")
        self._running: Future | None = None
        self._was_ok: bool | None = None

    async def __call__(self, timeout: float = DB_TIMEOUT) -> dict:
        if self._running is None or self._running.done():
            self._running = self._executor.submit(self.probe)
        try:
            ms = await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(self._running)), timeout)
        except TimeoutError:
            return self._result({"ok": False, "error": "timeout"}, f"no answer within {timeout} s")
        except Exception as exc:
            return self._result({"ok": False, "error": type(exc).__name__}, f"{type(exc).__name__}: {exc}")
        return self._result({"ok": True, "ms": round(ms, 1)}, "")

    def _result(self, result: dict, detail: str) -> dict:
        if not result["ok"] and self._was_ok is not False:
            log.warning("readiness: database check failed: %s", detail)
        elif result["ok"] and self._was_ok is False:
            log.info("readiness: the database answers again")
        self._was_ok = result["ok"]
        return result


def routes() -> dict:
    snapshot = route_table.table.snapshot
    if snapshot is None:
        return {"ok": False, "error": "not loaded"}
    return {"ok": True, "version": snapshot.version}


def log_writer() -> dict:
    health = writer.health()
    result = {"ok": health["ok"], "queue_depth": health["queue_depth"],
              "segments_waiting_on_disk": health["segments_waiting_on_disk"]}
    if health["last_success_at"]:
        result["seconds_since_last_write"] = round(time.time() - health["last_success_at"], 1)
    if not health["ok"]:
        result["error"] = "stalled"
    return result


database = DatabaseCheck()


async def checks() -> dict[str, dict]:
    return {"database": await database(), "routes": routes(), "log_writer": log_writer()}
