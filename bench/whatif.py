"""What-if runs: the gateway's own ASGI app with a process-level tweak, to size a cost.

    python -m bench.run --whatif gcfreeze          # uvicorn serves bench.whatif:application

Nothing here changes the product; each switch answers "how much does X cost?" by removing
or changing X in the benchmark's gateway process only (WHATIF=comma,separated):

- `gcfreeze`: `gc.freeze()` after start-up, so the cyclic collector stops rescanning the
  ~80k long-lived objects (Django, models, modules) on every generation-2 collection.
- `nogc`: the cyclic collector off altogether (reference counting still frees memory).
- `nolog`: request-log records are built but never written (`writer.enqueue` is a no-op):
  the cost of the log writer, which also makes the log-row check fail by design.
- `nojournal`: log rows are not appended to the crash-safe journal (routing/audit/journal.py):
  the journal's share of the log writer's cost (rows are still written to the database).
- `gcstats`: no change; prints per 5 s the count, total and longest pause of each
  collector generation to the gateway log (bench/results/gateway.log).
"""

import collections
import gc
import os
import threading
import time

from gateway.asgi import application

__all__ = ["application"]  # what uvicorn serves

SWITCHES = frozenset(filter(None, os.environ.get("WHATIF", "").split(",")))
KNOWN = {"gcfreeze", "nogc", "nolog", "nojournal", "gcstats"}
if SWITCHES - KNOWN:
    raise SystemExit(f"unknown WHATIF switch(es): {', '.join(sorted(SWITCHES - KNOWN))}")

if "nolog" in SWITCHES:
    from routing.audit.logwriter import writer

    writer.enqueue = lambda record: None
if "nojournal" in SWITCHES:
    from routing.audit.journal import Journal

    Journal.append = lambda self, line: None
if "gcfreeze" in SWITCHES:
    gc.collect()
    gc.freeze()
if "nogc" in SWITCHES:
    gc.disable()
if "gcstats" in SWITCHES:
    _started: dict[str, float] = {}
    _stats: dict[int, list] = collections.defaultdict(lambda: [0, 0.0, 0.0])  # gen → count, total s, max s

    def _on_gc(phase: str, info: dict) -> None:
        if phase == "start":
            _started["t"] = time.perf_counter()
            return
        took = time.perf_counter() - _started.get("t", time.perf_counter())
        entry = _stats[info["generation"]]
        entry[0], entry[1], entry[2] = entry[0] + 1, entry[1] + took, max(entry[2], took)

    def _report() -> None:
        while True:
            time.sleep(5)
            line = {gen: {"n": n, "total_ms": round(t * 1000, 1), "max_ms": round(m * 1000, 2)}
                    for gen, (n, t, m) in sorted(_stats.items())}
            _stats.clear()
            print(f"GCSTATS {line} tracked objects {len(gc.get_objects())}", flush=True)

    gc.callbacks.append(_on_gc)
    threading.Thread(target=_report, name="bench-gcstats", daemon=True).start()
print(f"bench.whatif: {sorted(SWITCHES) or 'no switch'}", flush=True)
