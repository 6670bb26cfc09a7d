"""What each finished request leaves for operations, handled off the event loop.

`LogWriter.enqueue` hands every request's log row, the tuple it builds anyway, to
`observer.rows.append`. That deque append is the only work on the event loop. A daemon thread
wakes every INTERVAL seconds and takes what has arrived:
- it records the request metrics, a batch at a time (metrics.Recorder.record);
- it writes the per-request log lines GATEWAY_LOG_REQUESTS asks for (request_lines.py);
- it sets the gauges from state the gateway keeps anyway: requests in flight (the API
  handler's count), upstream calls in flight (resilience/load.py), deployment health (the
  breaker) and the log writer's queue (`writer.health()`).

/metrics calls `exposition()`, which flushes first. So a scrape includes this process's
requests up to that moment, and the other workers' up to INTERVAL seconds old.

The thread runs at normal priority: a batch takes about 2.5 µs per row (README "Operations"),
and each pause is bounded by the interpreter's switch interval like any other thread. Nothing
here blocks on the database, so metrics and lines keep flowing during a database outage.
"""

import collections
import logging
import threading

from django.conf import settings

from routing.audit.logwriter import writer
from routing.config import route_table
from routing.monitoring import multiproc
from routing.monitoring.metrics import Metrics, Recorder
from routing.monitoring.request_lines import RequestLines
from routing.resilience import load
from routing.resilience.breaker import breaker

log = logging.getLogger(__name__)
INTERVAL = 1.0


def deployment_state(dep_id: int) -> str:
    state = breaker.describe(dep_id)["state"]
    return "probing" if state.startswith("cooldown over") else state


class Observer:
    def __init__(self) -> None:
        self.rows: collections.deque = collections.deque()
        self.recorder: Recorder | None = None
        self.lines: RequestLines | None = None
        self.registry = None  # in-process registry when not in multiprocess mode
        self._in_flight = lambda: 0
        self._lock = threading.Lock()  # one flush at a time (the thread, /metrics, stop())
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, *, in_flight=lambda: 0, interval: float = INTERVAL) -> None:
        """Lifespan startup. `in_flight()` returns the number of requests being served."""
        from prometheus_client import CollectorRegistry

        multiproc.prepare()
        self.registry = None if multiproc.enabled() else CollectorRegistry()
        self.recorder = Recorder(Metrics(self.registry), lambda: route_table.table.snapshot)
        self.lines = RequestLines(settings.GATEWAY["LOG_REQUESTS"])
        self._in_flight = in_flight
        writer.on_row = self.rows.append
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, args=(interval,), name="gateway-observer", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Lifespan shutdown, after the log writer's last rows: the last batch is handled here."""
        writer.on_row = None
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None
        self.flush()

    def _run(self, interval: float) -> None:
        while not self._stop.wait(interval):
            self.flush()

    def flush(self) -> None:
        """Handle every row that has arrived, and set the gauges. Never raises."""
        if self.recorder is None:
            return
        with self._lock:
            pop = self.rows.popleft
            batch = [pop() for _ in range(len(self.rows))]  # only this lock's holder pops
            if batch:
                for step in (self.recorder.record, self.lines.emit):
                    try:
                        step(batch)
                    except Exception:
                        log.exception("request metrics or log lines for %d requests failed", len(batch))
            try:
                health = writer.health()
                self.recorder.sample(in_flight=self._in_flight(), upstream_in_flight=dict(load.stats.inflight),
                                     health=deployment_state, queue_depth=health["queue_depth"],
                                     stalled=not health["ok"])
            except Exception:
                log.exception("gauges not sampled")

    def exposition(self) -> bytes:
        """The Prometheus text format of every worker's metrics (blocking: call it from a thread)."""
        from prometheus_client import generate_latest

        self.flush()
        if multiproc.enabled():
            return multiproc.collect()
        return generate_latest(self.registry) if self.registry is not None else b""


observer = Observer()
