"""Client-key and deployment limits through the real server (routing/resilience/limits.py, in-process
limiter here; the Redis-shared one is in test_two_processes.py): rpm, tpm and parallel
requests per key give an OpenAI-shaped 429 with Retry-After; a deployment at its rpm/tpm
is skipped in favour of another."""

import threading

import httpx

from tests.integration.resilience_support import attempts, post, route, served_by
from tests.integration.server import assert_openai_error, eventually


def assert_rate_limited(response: httpx.Response, what: str) -> dict:
    error = assert_openai_error(response, 429, code="rate_limit_exceeded")
    assert error["type"] == "rate_limit_error" and what in error["message"], error
    retry_after = response.headers["retry-after"]
    assert retry_after.isdigit() and 1 <= int(retry_after) <= 60, retry_after
    return error


def test_key_rpm(gateway, fake_azure, make_key, http, wait_for_log):
    group, _ = route(gateway, [fake_azure])
    key = make_key(rpm=2)
    assert [post(http, key, group.name).status_code for _ in range(2)] == [200, 200]

    response = post(http, key, group.name)
    error = assert_rate_limited(response, "requests-per-minute")
    assert "API key" in error["message"]
    assert len(fake_azure.received) == 2
    row = wait_for_log(response.headers["x-gateway-request-id"])
    assert (row.status, row.error_type, row.attempts, row.key_name) == (429, "rate_limit_exceeded", [], key.name)
    # Another key is not affected.
    assert post(http, make_key(rpm=2), group.name).status_code == 200


def test_key_max_parallel(gateway, fake_azure, make_key, http, wait_for_log):
    group, _ = route(gateway, [fake_azure])
    key = make_key(max_parallel=1)
    fake_azure.event_delay = 0.08  # 13 events: ~1 s in flight
    finished = {}

    def slow_stream():
        with httpx.Client(base_url=gateway, timeout=10) as client:
            finished["first"] = post(client, key, group.name, stream=True)

    thread = threading.Thread(target=slow_stream)
    thread.start()
    fake_azure.wait_for(1, timeout=3)
    second = post(http, key, group.name)
    assert_rate_limited(second, "parallel-requests")
    thread.join(10)
    assert finished["first"].status_code == 200
    assert finished["first"].text.rstrip().endswith("}")
    assert len(fake_azure.received) == 1

    fake_azure.event_delay = 0
    eventually(lambda: post(http, key, group.name).status_code == 200, timeout=3,
               message="the key's parallel slot was not released after its stream ended")


def test_deployment_rpm_moves_to_the_next_deployment(gateway, fake_azure, fake_azure_b, make_key, http,
                                                      wait_for_log):
    group, (a, b) = route(gateway, [(fake_azure, {"rpm": 1}), fake_azure_b], max_attempts=2)
    key = make_key()
    assert served_by(post(http, key, group.name)) == "dep-a"
    for _ in range(2):
        response = post(http, key, group.name)
        assert response.status_code == 200 and served_by(response) == "dep-b"
        row = wait_for_log(response.headers["x-gateway-request-id"])
        assert attempts(row) == [("dep-a", None, "deployment_rate_limited"), ("dep-b", 200, "")]
    assert (len(fake_azure.received), len(fake_azure_b.received)) == (1, 2)


def test_deployment_rpm_skip_is_not_an_upstream_attempt(gateway, fake_azure, fake_azure_b, make_key, http):
    """max_attempts counts "upstream calls per request" (ModelGroup.max_attempts help text). A
    deployment skipped for its own rpm limit makes no call, like a cooling one, so with
    max_attempts=1 the request must still reach the free deployment B."""
    group, _ = route(gateway, [(fake_azure, {"rpm": 1}), fake_azure_b], max_attempts=1)
    key = make_key()
    assert served_by(post(http, key, group.name)) == "dep-a"
    response = post(http, key, group.name)
    assert response.status_code == 200, (
        f"B was free but the rpm skip of A used up the only attempt: {response.status_code} {response.text}")
    assert served_by(response) == "dep-b"


def test_every_deployment_at_its_rpm(gateway, fake_azure, make_key, http, wait_for_log):
    group, _ = route(gateway, [(fake_azure, {"rpm": 1})], max_attempts=2)
    key = make_key()
    assert post(http, key, group.name).status_code == 200
    response = post(http, key, group.name)
    error = assert_rate_limited(response, "at its rate limit")
    assert group.name in error["message"]
    assert len(fake_azure.received) == 1
    row = wait_for_log(response.headers["x-gateway-request-id"])
    assert attempts(row) == [("dep-a", None, "deployment_rate_limited")]
    assert (row.status, row.error_type) == (429, "rate_limit_exceeded")


def test_key_tpm_counts_real_usage(gateway, fake_azure, make_key, http, wait_for_log):
    group, _ = route(gateway, [fake_azure])
    key = make_key(tpm=5)
    first = post(http, key, group.name, input="one two three")
    assert first.status_code == 200
    assert first.json()["usage"]["total_tokens"] > 5
    assert wait_for_log(first.headers["x-gateway-request-id"]).total_tokens == first.json()["usage"]["total_tokens"]

    def limited():
        response = post(http, key, group.name)
        return response if response.status_code == 429 else None

    response = eventually(limited, timeout=2, message="tokens over the key's tpm were not counted")
    assert_rate_limited(response, "tokens-per-minute")
    assert len(fake_azure.received) <= 2


def test_key_tpm_counts_streamed_usage(gateway, fake_azure, make_key, http):
    group, _ = route(gateway, [fake_azure])
    key = make_key(tpm=5)
    first = post(http, key, group.name, stream=True)
    assert first.status_code == 200 and "response.completed" in first.text

    def limited():
        response = post(http, key, group.name, stream=True)
        return response if response.status_code == 429 else None

    assert_rate_limited(eventually(limited, timeout=2), "tokens-per-minute")


def test_deployment_tpm_moves_to_the_next_deployment(gateway, fake_azure, fake_azure_b, make_key, http):
    group, _ = route(gateway, [(fake_azure, {"tpm": 5}), fake_azure_b], max_attempts=2)
    key = make_key()
    assert served_by(post(http, key, group.name)) == "dep-a"  # 6 tokens: over A's tpm from now on
    eventually(lambda: served_by(post(http, key, group.name)) == "dep-b", timeout=2)
    assert len(fake_azure.received) <= 2
