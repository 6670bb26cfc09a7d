"""routing/monitoring/metrics.py: request-log rows become the right samples, with bounded labels.

The test process has no PROMETHEUS_MULTIPROC_DIR, so prometheus_client keeps values in memory
and each test reads its own registry through the text format (prometheus_client.parser).
Multiprocess files are tested in test_multiproc.py."""

import random
from datetime import datetime, timezone

import pytest
from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from routing.audit.logwriter import LogRecord, build_entry
from routing.config.snapshots import DeploymentSnap, GroupSnap, RouteSnapshot
from routing.monitoring.metrics import DURATION_BUCKETS, MAX_VALUES, Metrics, Recorder, observe_many

EAST = DeploymentSnap(id=7, name="east", group_name="gpt", provider="azure", api_base="", upstream_model="m",
                      api_version="", api_key="secret")
WEST = DeploymentSnap(id=8, name="west", group_name="gpt", provider="azure", api_base="", upstream_model="m",
                      api_version="", api_key="secret")
ROUTES = RouteSnapshot(version=1, groups={"gpt": GroupSnap(id=1, name="gpt", strategy="weighted", max_attempts=2,
                                                           deployments=(EAST, WEST))},
                       keys_by_hash={}, deployments={7: EAST, 8: WEST})


def row(**kw) -> tuple:
    base = dict(request_id="req_x", created_at=datetime(2026, 12, 1, tzinfo=timezone.utc), method="POST",
                endpoint="responses", path="/v1/responses", status=200, outcome="completed", group_name="gpt",
                deployment_id=7, deployment_name="east", latency_ms=120.0, ttfb_ms=40.0, overhead_ms=0.8,
                input_tokens=3, output_tokens=5,
                attempts=[{"deployment_id": 7, "deployment": "east", "group": "gpt", "status": 200, "error": ""}])
    return tuple(build_entry(LogRecord(**{**base, **kw}))[0])


def samples(registry) -> dict:
    text = generate_latest(registry).decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(found: dict, name: str, **labels) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture
def recorder():
    registry = CollectorRegistry()
    rec = Recorder(Metrics(registry), lambda: ROUTES)
    rec.registry = registry
    return rec


def test_requests_errors_tokens_and_attempts_are_counted_per_label_set(recorder):
    failed_over = [{"deployment_id": 8, "deployment": "west", "group": "gpt", "status": None,
                    "error": "connect_timeout"},
                   {"deployment_id": 7, "deployment": "east", "group": "gpt", "status": 200, "error": ""}]
    recorder.record([row(), row(stream=True), row(attempts=failed_over)])
    recorder.record([row(status=400, outcome="upstream_error", error_type="invalid_prompt", input_tokens=None,
                         output_tokens=None,
                         attempts=[{"deployment_id": 7, "deployment": "east", "group": "gpt", "status": 400}]),
                     row(status=404, outcome="rejected", error_type="model_not_found", group_name="",
                         deployment_id=None, deployment_name="", attempts=[], input_tokens=None,
                         output_tokens=None, ttfb_ms=None)])
    got = samples(recorder.registry)
    ok = dict(endpoint="responses", group="gpt", deployment="east")
    assert value(got, "gateway_requests_total", **ok, status_class="2xx", outcome="completed") == 3
    assert value(got, "gateway_requests_total", **ok, status_class="4xx", outcome="upstream_error") == 1
    assert value(got, "gateway_requests_total", endpoint="responses", group="(none)", deployment="(none)",
                 status_class="4xx", outcome="rejected") == 1
    # The upstream's own error code is not a label: its status is.
    assert value(got, "gateway_errors_total", endpoint="responses", group="gpt", kind="upstream_400") == 1
    assert value(got, "gateway_errors_total", endpoint="responses", group="(none)", kind="model_not_found") == 1
    assert not any("invalid_prompt" in str(key) for key in got)
    assert value(got, "gateway_tokens_total", group="gpt", deployment="east", type="input") == 9
    assert value(got, "gateway_tokens_total", group="gpt", deployment="east", type="output") == 15
    assert value(got, "gateway_upstream_attempts_total", group="gpt", deployment="east", result="2xx") == 3
    assert value(got, "gateway_upstream_attempts_total", group="gpt", deployment="east", result="4xx") == 1
    assert value(got, "gateway_upstream_attempts_total", group="gpt", deployment="west",
                 result="connect_timeout") == 1
    assert value(got, "gateway_request_duration_seconds_count", **ok, stream="false") == 3
    assert value(got, "gateway_request_duration_seconds_count", **ok, stream="true") == 1
    assert value(got, "gateway_request_duration_seconds_bucket", **ok, stream="false", le="0.1") == 0
    assert value(got, "gateway_request_duration_seconds_bucket", **ok, stream="false", le="0.25") == 3
    assert value(got, "gateway_time_to_first_byte_seconds_sum", **ok, stream="false") == pytest.approx(0.12)
    assert value(got, "gateway_overhead_seconds_count", endpoint="responses") == 5


def test_names_the_route_table_does_not_hold_are_never_labels(recorder):
    """A client's model name, or a group deleted since, is "(other)"; ops' names pass."""
    recorder.record([row(group_name="gpt-5-from-a-client\x00", deployment_id=999, deployment_name="gone"),
                     row(attempts=[{"deployment_id": 999, "deployment": "gone", "group": "old", "status": 200}])])
    got = samples(recorder.registry)
    assert value(got, "gateway_requests_total", endpoint="responses", group="(other)", deployment="(other)",
                 status_class="2xx", outcome="completed") == 1
    assert value(got, "gateway_upstream_attempts_total", group="(other)", deployment="(other)", result="2xx") == 1
    assert not any("client" in str(key) or "gone" in str(key) for key in got)


def test_label_values_from_code_are_capped(recorder):
    recorder.record([row(status=500, outcome="internal_error", error_type=f"kind_{i}") for i in range(MAX_VALUES + 5)])
    kinds = {dict(labels)["kind"] for name, labels in samples(recorder.registry) if name == "gateway_errors_total"}
    assert len(kinds) == MAX_VALUES + 1 and "(other)" in kinds


def test_bulk_observe_equals_prometheus_clients_own():
    rng = random.Random(5)
    values = [rng.choice([0.0, 0.005, 0.01, 1.0, 600.0, 601.0]) if i % 5 == 0 else rng.expovariate(2.0)
              for i in range(2000)]
    one, bulk = CollectorRegistry(), CollectorRegistry()
    reference = Histogram("h", "h", ["x"], buckets=DURATION_BUCKETS, registry=one).labels("a")
    for v in values:
        reference.observe(v)
    counts = [0] * len(DURATION_BUCKETS)
    for v in values:
        counts[next(i for i, bound in enumerate(DURATION_BUCKETS) if v <= bound)] += 1
    observe_many(Histogram("h", "h", ["x"], buckets=DURATION_BUCKETS, registry=bulk).labels("a"), sum(values), counts)
    assert samples(one).keys() == samples(bulk).keys()
    for key, expected in samples(one).items():
        assert samples(bulk)[key] == pytest.approx(expected), key


def test_gauges_follow_the_route_table(recorder):
    states = {7: "cooling", 8: "healthy"}
    recorder.sample(in_flight=3, upstream_in_flight={7: 2}, health=states.get, queue_depth=12, stalled=False)
    got = samples(recorder.registry)
    assert value(got, "gateway_requests_in_flight") == 3
    assert value(got, "gateway_log_writer_queue_depth") == 12
    assert value(got, "gateway_log_writer_stalled") == 0
    assert value(got, "gateway_upstream_in_flight", group="gpt", deployment="east") == 2
    assert value(got, "gateway_deployment_state", group="gpt", deployment="east", state="cooling") == 1
    assert value(got, "gateway_deployment_state", group="gpt", deployment="east", state="healthy") == 0
    assert value(got, "gateway_deployment_state", group="gpt", deployment="west", state="healthy") == 1

    recorder.routes = lambda: RouteSnapshot(version=2, groups={}, keys_by_hash={}, deployments={8: WEST})
    recorder.sample(in_flight=0, upstream_in_flight={}, health=states.get, queue_depth=0, stalled=True)
    got = samples(recorder.registry)
    assert value(got, "gateway_deployment_state", group="gpt", deployment="east", state="cooling") == 0
    assert value(got, "gateway_upstream_in_flight", group="gpt", deployment="east") == 0
    assert value(got, "gateway_log_writer_stalled") == 1

