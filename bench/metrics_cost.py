"""Micro-benchmark: what metrics and per-request log lines cost each request.

    .venv/bin/python -m bench.metrics_cost

On the event loop a request costs one `deque.append` of its log row (the writer's `on_row`
hook) and the API handler's two in-flight updates. The rest runs on the observer's thread,
a batch at a time (routing/monitoring/observer.py). This times each part per row (best of 7
runs) in prometheus_client's multiprocess mode, with mmap'd files in a temporary directory
as in the server. The mix is 2 groups, 3 deployments, 1 in 5 requests streamed, 1 in 20 an
upstream error. "per row, recorded one at a time" is the plain way, one `inc`/`observe` per
metric per request, for comparison. Not a test: the numbers depend on the machine.
`make bench --whatif nometrics` measures the cost end to end.
"""

import collections
import logging
import os
import tempfile
import time
from datetime import datetime, timezone

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gateway.settings")
os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="gateway-metrics-bench-")
django.setup()

from routing.audit.logwriter import LogRecord, build_entry  # noqa: E402
from routing.config.snapshots import DeploymentSnap, GroupSnap, RouteSnapshot  # noqa: E402
from routing.monitoring import multiproc  # noqa: E402
from routing.monitoring.metrics import DEPLOYMENT_ID, LATENCY, OVERHEAD, TTFB, Metrics, Recorder  # noqa: E402
from routing.monitoring.request_lines import RequestLines  # noqa: E402

RUNS = 7
DEPS = [DeploymentSnap(id=i, name=name, group_name=group, provider="azure", api_base="", upstream_model="m",
                       api_version="", api_key="k")
        for i, (name, group) in enumerate([("east", "gpt-5.5"), ("west", "gpt-5.5"), ("mini", "gpt-5-mini")], 1)]
ROUTES = RouteSnapshot(version=1, groups={g: GroupSnap(id=n, name=g, strategy="weighted", max_attempts=2,
                                                       deployments=tuple(d for d in DEPS if d.group_name == g))
                                          for n, g in enumerate(("gpt-5.5", "gpt-5-mini"))},
                       keys_by_hash={}, deployments={d.id: d for d in DEPS})


def rows(n: int) -> list[tuple]:
    out = []
    for i in range(n):
        dep, error = DEPS[i % 3], i % 20 == 0
        record = LogRecord(
            request_id=f"req_{i:032x}", created_at=datetime.now(timezone.utc), method="POST",
            endpoint="responses", path="/v1/responses", status=400 if error else 200, stream=i % 5 == 0,
            key_name="team-a", group_name=dep.group_name, deployment_id=dep.id, deployment_name=dep.name,
            latency_ms=800.0 + i % 300, ttfb_ms=300.0 + i % 100, overhead_ms=0.3 + (i % 7) / 10,
            input_tokens=1200, output_tokens=350, outcome="upstream_error" if error else "completed",
            error_type="invalid_prompt" if error else "",
            attempts=[{"deployment_id": dep.id, "deployment": dep.name, "group": dep.group_name,
                       "status": 400 if error else 200, "error": "", "ms": 301.2}])
        out.append(tuple(build_entry(record)[0]))
    return out


def best_us(fn, batches, per: int) -> float:
    best = float("inf")
    for _ in range(RUNS):
        start = time.perf_counter()
        for batch in batches:
            fn(batch)
        best = min(best, time.perf_counter() - start)
    return best / (len(batches) * per) * 1e6


def one_at_a_time(m: Metrics):
    """The plain way: every metric updated for every request (label children cached)."""
    children: dict = {}

    def child(metric, *labels):
        c = children.get((metric, labels))
        if c is None:
            c = children[metric, labels] = metric.labels(*labels)
        return c

    def record(batch):
        for r in batch:
            dep = ROUTES.deployments[r[DEPLOYMENT_ID]]
            child(m.requests, "responses", dep.group_name, dep.name, "2xx", "completed").inc()
            child(m.duration, "responses", dep.group_name, dep.name, "false").observe(r[LATENCY] / 1000)
            child(m.ttfb, "responses", dep.group_name, dep.name, "false").observe(r[TTFB] / 1000)
            child(m.overhead, "responses").observe(r[OVERHEAD] / 1000)
            child(m.tokens, dep.group_name, dep.name, "input").inc(1200)
            child(m.tokens, dep.group_name, dep.name, "output").inc(350)
            child(m.attempts, dep.group_name, dep.name, "2xx").inc()
    return record


def main() -> None:
    multiproc.prepare()
    metrics = Metrics()
    recorder = Recorder(metrics, lambda: ROUTES)
    sample = rows(1000)
    queue = collections.deque()
    results = {"event loop: on_row (deque.append)": best_us(lambda b: [queue.append(r) for r in b], [sample], 1000)}
    queue.clear()
    for size in (1, 10, 100, 1000):
        batches = [sample[i:i + size] for i in range(0, 1000, size)]
        results[f"observer thread: Recorder.record, batches of {size}"] = best_us(recorder.record, batches, size)
    results["observer thread: per row, recorded one at a time"] = best_us(one_at_a_time(metrics), [sample], 1000)
    logging.getLogger("gateway.requests").handlers = [logging.NullHandler()]
    logging.getLogger("gateway.requests").propagate = False
    results["observer thread: request lines, GATEWAY_LOG_REQUESTS=errors"] = best_us(
        RequestLines("errors").emit, [sample], 1000)
    results["observer thread: request lines, =all (to a null handler)"] = best_us(RequestLines("all").emit,
                                                                                  [sample], 1000)
    print(f"prometheus_client multiprocess files in {os.environ['PROMETHEUS_MULTIPROC_DIR']}")
    for name, us in results.items():
        print(f"  {name:<62} {us:6.2f} µs/row")
    start = time.perf_counter()
    for _ in range(100):
        multiproc.collect()
    print(f"  /metrics exposition (one process's files): {(time.perf_counter() - start) * 10:.2f} ms")



if __name__ == "__main__":
    main()
