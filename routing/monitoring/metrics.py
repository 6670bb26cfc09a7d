"""Prometheus metrics: what the gateway exports, and how finished requests become samples.

Request metrics come from the request-log row each request already produces
(routing/audit/logwriter.py). They are recorded a batch at a time on the observer's thread
(observer.py), off the event loop. A batch is first added up per label set in plain
dictionaries (histogram values are put into their buckets with `bisect`), so N requests cost N
small dictionary updates plus one write per label set that moved. In multiprocess mode each
write updates an mmap'd file and costs about 1 µs. The numbers are in the README.

Labels are bounded:
- `group` and `deployment` are names ops gave in the admin, checked against the route table.
  A name the table does not hold becomes "(other)"; no group or deployment becomes "(none)".
  A client's model name is never a label.
- `endpoint`, `outcome`, `kind` and `result` come from the gateway's own code. Each keeps at
  most MAX_VALUES distinct values per process, and more become "(other)". An upstream's error
  passed through counts as kind `upstream_<status>`, never by the code the upstream sent.

Gauges (in-flight requests, upstream calls, deployment health, log-writer queue) are set by
`sample()` from state the gateway keeps anyway. Only a value that changed is written.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import defaultdict

import orjson
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from routing.audit.logwriter import _LOG_FIELDS

NONE, OTHER = "(none)", "(other)"
MAX_VALUES = 64
INF = float("inf")
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, INF)
OVERHEAD_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, INF)
STATES = ("healthy", "cooling", "probing", "auth_failed")

_AT = {name: i for i, name in enumerate(_LOG_FIELDS)}
(ENDPOINT, STATUS, OUTCOME, GROUP, DEPLOYMENT_ID, STREAM, LATENCY, TTFB, OVERHEAD, INPUT_TOKENS, OUTPUT_TOKENS,
 ATTEMPTS, ERROR_TYPE) = (_AT[name] for name in (
    "endpoint", "status", "outcome", "group_name", "deployment_id", "stream", "latency_ms", "ttfb_ms", "overhead_ms",
    "input_tokens", "output_tokens", "attempts", "error_type"))


class Metrics:
    """The gateway's metrics. Make one per process, after multiproc.prepare(): in multiprocess
    mode an unlabelled metric opens its file when it is made."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        request = ["endpoint", "group", "deployment"]
        self.requests = Counter("gateway_requests", "Client requests, counted when they end.",
                                [*request, "status_class", "outcome"], registry=registry)
        self.errors = Counter("gateway_errors", "Requests that ended with an error, by kind.",
                              ["endpoint", "group", "kind"], registry=registry)
        self.duration = Histogram("gateway_request_duration_seconds", "Request latency, arrival to last byte.",
                                  [*request, "stream"], buckets=DURATION_BUCKETS, registry=registry)
        self.ttfb = Histogram("gateway_time_to_first_byte_seconds", "Arrival to the first byte of the answer.",
                              [*request, "stream"], buckets=DURATION_BUCKETS, registry=registry)
        self.overhead = Histogram("gateway_overhead_seconds", "Time spent in the gateway itself.",
                                  ["endpoint"], buckets=OVERHEAD_BUCKETS, registry=registry)
        self.tokens = Counter("gateway_tokens", "Tokens the upstreams reported.", ["group", "deployment", "type"],
                              registry=registry)
        self.attempts = Counter("gateway_upstream_attempts", "Upstream calls, by result.",
                                ["group", "deployment", "result"], registry=registry)
        self.in_flight = Gauge("gateway_requests_in_flight", "Requests being served.", registry=registry,
                               multiprocess_mode="livesum")
        self.upstream_in_flight = Gauge("gateway_upstream_in_flight", "Open upstream calls.",
                                        ["group", "deployment"], registry=registry, multiprocess_mode="livesum")
        self.deployment_state = Gauge("gateway_deployment_state",
                                      "1 for the state a deployment is in (the worst any live worker sees).",
                                      ["group", "deployment", "state"], registry=registry,
                                      multiprocess_mode="livemax")
        self.log_queue = Gauge("gateway_log_writer_queue_depth", "Request-log rows waiting to be written.",
                               registry=registry, multiprocess_mode="livesum")
        self.log_stalled = Gauge("gateway_log_writer_stalled", "1 while the request-log writer is stuck.",
                                 registry=registry, multiprocess_mode="livemax")


_STATUS_CLASS = {status: f"{status // 100}xx" for status in range(100, 600)}


def status_class(status) -> str:
    return _STATUS_CLASS.get(status, "other")


def observe_many(child, total: float, counts) -> None:
    """`child.observe()` for a batch already put in buckets: the sum, then each bucket's count.
    prometheus_client has no bulk observe; this uses the same values its `observe()` updates
    (checked against it in tests/unit/monitoring/test_metrics.py)."""
    child._sum.inc(total)
    for bucket, n in zip(child._buckets, counts):
        if n:
            bucket.inc(n)


class Recorder:
    """Turns batches of request-log rows into samples. Not thread-safe: one caller at a time."""

    def __init__(self, metrics: Metrics, routes) -> None:
        self.m = metrics
        self.routes = routes  # () -> RouteSnapshot | None: the names labels may use
        self._children: dict = {}
        self._seen: dict[str, set] = defaultdict(set)
        self._gauges: dict = {}

    def bounded(self, label: str, value: str) -> str:
        seen = self._seen[label]
        if value in seen:
            return value
        if len(seen) >= MAX_VALUES or not isinstance(value, str):
            return OTHER
        seen.add(value)
        return value

    def record(self, rows) -> None:
        snap = self.routes()
        groups = snap.groups if snap is not None else {}
        deps = snap.deployments if snap is not None else {}
        requests, errors, tokens, attempts = defaultdict(int), defaultdict(int), defaultdict(int), defaultdict(int)
        timings: dict[tuple, list] = {}  # (endpoint, group, deployment, stream) → duration and TTFB buckets
        overhead: dict[str, list] = {}
        bounded, endpoints, outcomes = self.bounded, self._seen["endpoint"], self._seen["outcome"]
        n = len(DURATION_BUCKETS)
        for row in rows:  # a few µs per row: keep this loop flat
            endpoint, status, outcome, name, dep_id = (row[ENDPOINT], row[STATUS], row[OUTCOME], row[GROUP],
                                                       row[DEPLOYMENT_ID])
            if endpoint not in endpoints:
                endpoint = bounded("endpoint", endpoint)
            if outcome not in outcomes:
                outcome = bounded("outcome", outcome)
            group = name if name in groups else OTHER if name else NONE
            dep = deps.get(dep_id)
            deployment = dep.name if dep is not None else NONE if dep_id is None else OTHER
            requests[endpoint, group, deployment, _STATUS_CLASS.get(status, "other"), outcome] += 1
            if status >= 400 or row[ERROR_TYPE]:
                errors[endpoint, group, self._kind(row)] += 1
            key = (endpoint, group, deployment, "true" if row[STREAM] else "false")
            acc = timings.get(key)
            if acc is None:
                acc = timings[key] = [0.0, [0] * n, 0.0, [0] * n]
            if (ms := row[LATENCY]) is not None:
                acc[0] += ms / 1000
                acc[1][bisect_left(DURATION_BUCKETS, ms / 1000)] += 1
            if (ms := row[TTFB]) is not None:
                acc[2] += ms / 1000
                acc[3][bisect_left(DURATION_BUCKETS, ms / 1000)] += 1
            if (ms := row[OVERHEAD]) is not None:
                acc = overhead.get(endpoint)
                if acc is None:
                    acc = overhead[endpoint] = [0.0, [0] * len(OVERHEAD_BUCKETS)]
                acc[0] += ms / 1000
                acc[1][bisect_left(OVERHEAD_BUCKETS, ms / 1000)] += 1
            if row[INPUT_TOKENS]:
                tokens[group, deployment, "input"] += row[INPUT_TOKENS]
            if row[OUTPUT_TOKENS]:
                tokens[group, deployment, "output"] += row[OUTPUT_TOKENS]
            if row[ATTEMPTS] != "[]":
                for attempt in orjson.loads(row[ATTEMPTS]):
                    if isinstance(attempt, dict):
                        attempts[self._attempt_labels(attempt, deps)] += 1
        for metric, counts in ((self.m.requests, requests), (self.m.errors, errors), (self.m.tokens, tokens),
                               (self.m.attempts, attempts)):
            for labels, count in counts.items():
                self._child(metric, labels).inc(count)
        for labels, (duration_sum, durations, ttfb_sum, ttfbs) in timings.items():
            observe_many(self._child(self.m.duration, labels), duration_sum, durations)
            if any(ttfbs):
                observe_many(self._child(self.m.ttfb, labels), ttfb_sum, ttfbs)
        for endpoint, (total, counts) in overhead.items():
            observe_many(self._child(self.m.overhead, (endpoint,)), total, counts)

    def _kind(self, row) -> str:
        status = row[STATUS]
        if row[OUTCOME] == "upstream_error":  # the upstream's own error, passed through: its code is not ours
            return self.bounded("kind", f"upstream_{status}")
        return self.bounded("kind", row[ERROR_TYPE] or f"http_{status}")

    def _attempt_labels(self, attempt: dict, deps: dict) -> tuple[str, str, str]:
        dep = deps.get(attempt.get("deployment_id"))
        group, deployment = (dep.group_name, dep.name) if dep is not None else (OTHER, OTHER)
        error, status = attempt.get("error") or "", attempt.get("status")
        if error:
            result = self.bounded("result", error.partition(";")[0].strip())
        elif isinstance(status, int):
            result = "429" if status == 429 else status_class(status)
        else:
            result = "error"
        return group, deployment, result

    def _child(self, metric, labels: tuple):
        key = (metric, labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels) if labels else metric
        return child

    # --- gauges ----------------------------------------------------------------------------------------------

    def sample(self, *, in_flight: int, upstream_in_flight: dict, health, queue_depth: int, stalled: bool) -> None:
        """Set the gauges. `health(dep_id)` is one of STATES; `upstream_in_flight` maps deployment ids
        to open calls. Deployments that left the route table go back to 0."""
        snap = self.routes()
        values = {(self.m.in_flight, ()): in_flight, (self.m.log_queue, ()): queue_depth,
                  (self.m.log_stalled, ()): int(stalled)}
        for dep_id, dep in (snap.deployments.items() if snap is not None else ()):
            labels = (dep.group_name, dep.name)
            values[self.m.upstream_in_flight, labels] = upstream_in_flight.get(dep_id, 0)
            state = health(dep_id)
            for name in STATES:
                values[self.m.deployment_state, (*labels, name)] = int(name == state)
        for key in self._gauges.keys() - values.keys():  # a deployment that left the route table
            self._child(*key).set(0)
            del self._gauges[key]
        for key, value in values.items():
            if self._gauges.get(key) != value:
                self._child(*key).set(value)
                self._gauges[key] = value
