"""Routing strategies through the real server (routing/router.py): which fake receives the
traffic under priority, weighted, least_busy and lowest_latency, and how failures move it."""

import threading

import httpx

from tests.integration.resilience_support import attempts, post, route, served_by


def test_priority_sticks_to_the_first_until_it_fails(gateway, fake_azure, fake_azure_b, make_key, http,
                                                     wait_for_log):
    group, _ = route(gateway, [(fake_azure, {"priority": 0}), (fake_azure_b, {"priority": 1})], strategy="priority",
                     cooldown_failures=3, cooldown_seconds=30)
    key = make_key()
    assert {served_by(post(http, key, group.name)) for _ in range(8)} == {"dep-a"}
    assert (len(fake_azure.received), len(fake_azure_b.received)) == (8, 0)

    fake_azure.fail_status = 500
    rows = []
    for _ in range(5):
        response = post(http, key, group.name)
        assert response.status_code == 200 and served_by(response) == "dep-b"
        rows.append(attempts(wait_for_log(response.headers["x-gateway-request-id"])))
    # A is still tried first until its third failure cools it; then B directly.
    assert rows == [[("dep-a", 500, ""), ("dep-b", 200, "")]] * 3 + [[("dep-b", 200, "")]] * 2
    assert (len(fake_azure.received), len(fake_azure_b.received)) == (11, 5)


def test_weighted_spreads_by_weight(gateway, fake_azure, fake_azure_b, make_key, http):
    group, _ = route(gateway, [(fake_azure, {"weight": 1}), (fake_azure_b, {"weight": 9})], strategy="weighted")
    key = make_key()
    served = [served_by(post(http, key, group.name)) for _ in range(60)]
    a, b = served.count("dep-a"), served.count("dep-b")
    assert a + b == 60 and (len(fake_azure.received), len(fake_azure_b.received)) == (a, b)
    assert b >= 42, f"weights 1:9 but B served only {b} of 60"  # expected 54; P(b < 42) < 1e-5


def test_weight_zero_only_serves_when_alone(gateway, fake_azure, fake_azure_b, make_key, http):
    group, _ = route(gateway, [(fake_azure, {"weight": 0}), (fake_azure_b, {"weight": 1})], strategy="weighted")
    key = make_key()
    assert {served_by(post(http, key, group.name)) for _ in range(20)} == {"dep-b"}
    fake_azure_b.fail_status = 500
    response = post(http, key, group.name)
    assert response.status_code == 200 and served_by(response) == "dep-a"


def test_least_busy_avoids_the_deployment_with_a_stream_in_flight(gateway, fake_azure, fake_azure_b, make_key,
                                                                  http):
    group, _ = route(gateway, [fake_azure, fake_azure_b], strategy="least_busy")
    key = make_key()
    fake_azure.event_delay = fake_azure_b.event_delay = 0.08  # streams stay open ~1 s; JSON answers are instant
    busy = {}
    opened = threading.Event()

    def slow_stream():
        with httpx.Client(base_url=gateway, timeout=10) as client:
            with client.stream("POST", "/v1/responses", json={"model": group.name, "input": "hi", "stream": True},
                               headers={"Authorization": f"Bearer {key.secret}"}) as response:
                busy["name"] = served_by(response)
                opened.set()
                response.read()

    thread = threading.Thread(target=slow_stream)
    thread.start()
    assert opened.wait(5)
    other = {"dep-a": "dep-b", "dep-b": "dep-a"}[busy["name"]]
    served = [served_by(post(http, key, group.name)) for _ in range(6)]
    thread.join(10)
    assert served == [other] * 6


def test_lowest_latency_prefers_the_faster_deployment(gateway, fake_azure, fake_azure_b, make_key, http):
    group, _ = route(gateway, [fake_azure, fake_azure_b], strategy="lowest_latency")
    key = make_key()
    fake_azure.hang_seconds = 0.25
    first_two = {served_by(post(http, key, group.name)) for _ in range(2)}
    assert first_two == {"dep-a", "dep-b"}  # each unmeasured deployment is measured once
    assert [served_by(post(http, key, group.name)) for _ in range(6)] == ["dep-b"] * 6
    assert len(fake_azure.received) == 1
