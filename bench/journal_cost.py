"""Micro-benchmark: what the crash-safe request log costs each request, on the event loop.

    .venv/bin/python -m bench.journal_cost            # SQLite settings (the `make run` default)
    DATABASE_URL=postgres://… .venv/bin/python -m bench.journal_cost

`writer.enqueue(record)` runs on the event loop for every request. It used to build the
INSERT row only ("before": the previous `_row`, copied below). It now fits every value to
its column (routing/audit/rows.py) and appends the entry to the journal file with one
`write()` (routing/audit/journal.py). This times each part per record (best of 7 runs of
20,000 records, a typical streamed Responses call), and the writer thread's fdatasync per
batch of 500, which is off the loop. Not a test: numbers depend on the machine.
"""

import dataclasses
import os
import tempfile
import time
from datetime import datetime, timezone

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gateway.settings")
django.setup()

import orjson  # noqa: E402

from routing.audit import logwriter  # noqa: E402
from routing.audit.journal import Journal  # noqa: E402
from routing.audit.logwriter import _LOG_FIELDS, LogRecord, build_entry  # noqa: E402

N, RUNS = 20_000, 7
_TIMESTAMP = (lambda v: v) if django.db.connection.vendor == "postgresql" else (
    lambda v: v.astimezone(timezone.utc).replace(tzinfo=None).isoformat(" "))  # what the old adapters did


def record() -> LogRecord:
    return LogRecord(
        request_id="req_0123456789abcdef0123456789abcdef", created_at=datetime.now(timezone.utc), method="POST",
        endpoint="responses", path="/v1/responses", status=200, stream=True, key_id=3, key_name="team-a",
        group_name="azure-gpt-5.5", deployment_id=7, deployment_name="east", provider="azure", upstream_status=200,
        latency_ms=812.4, ttfb_ms=301.2, overhead_ms=0.31, input_tokens=1200, output_tokens=350, total_tokens=1550,
        cached_tokens=0, reasoning_tokens=64,
        policy_changes=[{"action": "drop", "path": "stream_options", "policy": "azure-responses"},
                        {"action": "rewrite", "path": "model", "from": "azure-gpt-5.5", "to": "gpt-5.5-prod"}],
        attempts=[{"deployment_id": 7, "deployment": "east", "group": "azure-gpt-5.5", "status": 200, "error": "",
                   "ms": 301.2}],
        response_id="resp_68af0123456789abcdef", upstream_request_id="7c0e1f2a-aaaa-bbbb-cccc-0123456789ab",
        outcome="completed", bytes_out=48_213)


def old_row(r: LogRecord) -> tuple:
    """The previous `_row` (before normalisation), for comparison."""
    row = [getattr(r, f) for f in _LOG_FIELDS]
    i = _LOG_FIELDS.index("created_at")
    row[i] = _TIMESTAMP(row[i])
    for name in ("policy_changes", "attempts"):
        i = _LOG_FIELDS.index(name)
        row[i] = orjson.dumps(row[i]).decode()
    return tuple(row)


def best_us(fn, items) -> float:
    best = float("inf")
    for _ in range(RUNS):
        start = time.perf_counter()
        for item in items:
            fn(item)
        best = min(best, time.perf_counter() - start)
    return best / len(items) * 1e6


def main() -> None:
    records = [dataclasses.replace(record()) for _ in range(N)]
    entries = [build_entry(r) for r in records]
    lines = [orjson.dumps(e) + b"\n" for e in entries]
    with tempfile.TemporaryDirectory(dir=os.path.dirname(logwriter.settings.GATEWAY["LOG_JOURNAL_DIR"])) as tmp:
        journal = Journal(tmp, list(_LOG_FIELDS))
        results = {
            "before: row only (old _row)": best_us(old_row, records),
            "now: build_entry (fit every value)": best_us(build_entry, records),
            "now: orjson.dumps(entry)": best_us(orjson.dumps, entries),
            "now: journal append (one write())": best_us(journal.append, lines),
        }
        fsyncs = []
        for start in range(0, 20 * 500, 500):
            for line in lines[start:start + 500]:
                journal.append(line)
            t = time.perf_counter()
            journal.sync()
            fsyncs.append(time.perf_counter() - t)
        for seg in journal.segments:
            os.close(seg.fd)
    now = sum(v for k, v in results.items() if k.startswith("now"))
    print(f"database: {django.db.connection.vendor}; journal on {tmp.rsplit('/', 1)[0]}; {len(lines[0])} bytes/entry")
    for name, us in results.items():
        print(f"  {name:<40} {us:7.2f} µs")
    extra = now - results["before: row only (old _row)"]
    print(f"  {'now: total on the event loop':<40} {now:7.2f} µs  (+{extra:.2f})")
    fsyncs.sort()
    print(f"  fdatasync per 500-row batch (writer thread): median {fsyncs[len(fsyncs) // 2] * 1000:.2f} ms, "
          f"max {fsyncs[-1] * 1000:.2f} ms")


if __name__ == "__main__":
    main()
