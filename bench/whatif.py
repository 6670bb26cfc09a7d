"""What-if runs: the gateway's own ASGI app with a process-level tweak, to size a cost.

    python -m bench.run --whatif autogc            # uvicorn serves bench.whatif:application

Nothing here changes the product; each switch answers "how much does X cost?" by removing
or changing X in the benchmark's gateway process only (WHATIF=comma,separated):

- `autogc`: CPython's automatic cyclic collection (after the start-up freeze) instead of
  routing/collector.py's clock-driven one.
- `gcthresh`: `autogc` with the thresholds in GC_THRESHOLDS ("700,10,10" is CPython's default).
- `nolog`: request-log records are built but never written (`writer.enqueue` is a no-op):
  the cost of the log writer, which also makes the log-row check fail by design.
- `nojournal`: log rows are not appended to the crash-safe journal (routing/audit/journal.py):
  the journal's share of the log writer's cost (rows are still written to the database).
- `nometrics`: no metrics and no per-request log lines: the observer (routing/monitoring/
  observer.py) is never started, so the log writer hands it no rows and no thread records
  anything; only the API handler's in-flight count (two integer updates) stays.
- `gcstats`: no change; prints per 5 s the count, total and longest pause of each
  collector generation to the gateway log (bench/results/gateway.log).

The layers the design card puts on the hot path, each swapped for what it would be
without the gateway's tuning (README, "Performance"):
- `stockhandler`: /v1 served by Django's stock `get_asgi_application()`, with the admin's
  middleware, instead of routing.api.handler.ApiHandler.
- `stocknomw`: Django's stock ASGIHandler with an empty middleware list (its per-request
  signal and close thread hops remain).
- `adrfdispatch`: DRF's `initial()` run through `sync_to_async`, as adrf's own
  `async_dispatch` does, instead of on the event loop.
- `httpcore`: httpx's default transport instead of the aiohttp transport.
"""

import collections
import gc
import os
import threading
import time

from gateway.asgi import application

__all__ = ["application"]  # what uvicorn serves

SWITCHES = frozenset(filter(None, os.environ.get("WHATIF", "").split(",")))
KNOWN = {"autogc", "nolog", "nojournal", "gcstats", "gcthresh", "stockhandler", "stocknomw", "adrfdispatch",
         "httpcore", "nometrics"}
if SWITCHES - KNOWN:
    raise SystemExit(f"unknown WHATIF switch(es): {', '.join(sorted(SWITCHES - KNOWN))}")

if "stockhandler" in SWITCHES or "stocknomw" in SWITCHES:
    from django.core.handlers.asgi import ASGIHandler
    from django.core.handlers.exception import convert_exception_to_response

    import gateway.asgi

    class _NoMiddleware(ASGIHandler):
        def load_middleware(self, is_async=False):
            self._view_middleware, self._template_response_middleware, self._exception_middleware = [], [], []
            self._middleware_chain = convert_exception_to_response(self._get_response_async)

    gateway.asgi.api_app = gateway.asgi.admin_app if "stockhandler" in SWITCHES else _NoMiddleware()
if "adrfdispatch" in SWITCHES:
    from asgiref.sync import sync_to_async

    from routing.api.base import GatewayView

    _initial = GatewayView.initial

    def _no_initial(self, request, *args, **kwargs):
        pass

    _prepare = GatewayView.prepare

    async def _prepare_then_initial_in_a_thread(self, request):
        await _prepare(self, request)
        await sync_to_async(_initial)(self, request)

    GatewayView.prepare = _prepare_then_initial_in_a_thread
    GatewayView.initial = _no_initial
if "httpcore" in SWITCHES:
    import httpx

    from routing.providers import mock
    from routing.upstream import client as upstream_client

    def _httpcore_client():
        if upstream_client._client is None:
            limits = httpx.Limits(max_connections=1000, max_keepalive_connections=1000)
            upstream_client._client = httpx.AsyncClient(limits=limits, mounts={mock.ORIGIN: mock.Transport()},
                                                        follow_redirects=False, trust_env=False, timeout=None)
        return upstream_client._client

    upstream_client.client = _httpcore_client
if "autogc" in SWITCHES or "gcthresh" in SWITCHES:
    from routing import collector

    def _freeze_only() -> None:
        collector.freeze_startup()
        if "gcthresh" in SWITCHES:
            gc.set_threshold(*(int(x) for x in os.environ["GC_THRESHOLDS"].split(",")))

    collector.start = _freeze_only
if "nolog" in SWITCHES:
    from routing.audit.logwriter import writer

    writer.enqueue = lambda record: None
if "nojournal" in SWITCHES:
    from routing.audit.journal import Journal

    Journal.append = lambda self, line: None
if "nometrics" in SWITCHES:
    from routing.monitoring.observer import observer

    observer.start = lambda **kwargs: None
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
