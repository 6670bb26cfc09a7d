"""Failover through the real server (routing/forwarding/attempts.py, routing/upstream/relay.py, routing/resilience/breaker.py),
one switchable fault per test: what the client sees, which fakes were called how often, the
log row's attempts, and the breaker state the serving process shows in its admin.

(test_failover.py already covers a streamed 503 failover, an unreachable deployment, a final
4xx and "no retry once the stream started"; these add the cases it does not.)
"""

import time
from email.utils import formatdate

import pytest

from tests.integration.resilience_support import admin_on, attempts, post, route, served_by  # noqa: F401
from tests.integration.server import assert_openai_error, parse_sse


def test_500_fails_over_and_counts_towards_cooldown(gateway, fake_azure, fake_azure_b, make_key, http,
                                                    wait_for_log, admin_on):
    group, (a, b) = route(gateway, [fake_azure, fake_azure_b], cooldown_failures=2, cooldown_seconds=30)
    fake_azure.fail_status = 500
    key = make_key()
    admin = admin_on(gateway)

    response = post(http, key, group.name)
    assert response.status_code == 200, response.text
    assert response.json()["object"] == "response" and response.json()["status"] == "completed"
    assert served_by(response) == "dep-b"
    assert (len(fake_azure.received), len(fake_azure_b.received)) == (1, 1)
    assert fake_azure.last().json == fake_azure_b.last().json == {"model": "gpt-5.5-prod", "input": "hi"}
    row = wait_for_log(response.headers["x-gateway-request-id"])
    assert attempts(row) == [("dep-a", 500, ""), ("dep-b", 200, "")]
    assert (row.status, row.deployment_name, row.upstream_status, row.error_type) == (200, "dep-b", 200, "")
    assert row.served_group == ""
    health = admin.health(a)
    assert health.startswith("healthy\n") and "last error: HTTP 500" in health, health  # 1 of 2 failures
    assert admin.state(b) == "healthy"

    # The second failure within the window cools A; from then on A is skipped without a call.
    assert served_by(post(http, key, group.name)) == "dep-b"
    assert len(fake_azure.received) == 2
    health = admin.health(a)
    assert health.startswith("cooling\n") and "last error: HTTP 500" in health, health
    for _ in range(3):
        response = post(http, key, group.name)
        assert response.status_code == 200 and served_by(response) == "dep-b"
        assert attempts(wait_for_log(response.headers["x-gateway-request-id"])) == [("dep-b", 200, "")]
    assert len(fake_azure.received) == 2 and len(fake_azure_b.received) == 5


def test_429_retry_after_cools_for_exactly_that_long(gateway, fake_azure, fake_azure_b, make_key, http,
                                                    wait_for_log, admin_on):
    # cooldown_seconds is far longer than Retry-After: the deployment must come back after Retry-After.
    group, (a, b) = route(gateway, [fake_azure, fake_azure_b], cooldown_failures=5, cooldown_seconds=60)
    fake_azure.fail_status, fake_azure.fail_times, fake_azure.retry_after = 429, 1, "2"
    key = make_key()
    admin = admin_on(gateway)

    sent = time.monotonic()
    response = post(http, key, group.name)
    assert response.status_code == 200 and served_by(response) == "dep-b"
    row = wait_for_log(response.headers["x-gateway-request-id"])
    assert attempts(row) == [("dep-a", 429, ""), ("dep-b", 200, "")]
    health = admin.health(a)
    assert health.startswith("cooling\n") and "last error: HTTP 429" in health, health

    # While Retry-After runs, A is not called (one 429 cools it: Retry-After is explicit).
    while time.monotonic() - sent < 1.5:
        response = post(http, key, group.name)
        assert response.status_code == 200 and served_by(response) == "dep-b"
        time.sleep(0.1)
    assert len(fake_azure.received) == 1

    # Then A is used again (A has priority) and is healthy after that successful probe.
    while True:
        response = post(http, key, group.name)
        assert response.status_code == 200
        if served_by(response) == "dep-a":
            break
        assert time.monotonic() - sent < 3.5, "A was still skipped long after its Retry-After"
        time.sleep(0.05)
    assert time.monotonic() - sent >= 2.0
    assert len(fake_azure.received) == 2
    assert admin.state(a) == "healthy"
    assert served_by(post(http, key, group.name)) == "dep-a"


def test_retry_after_as_http_date(gateway, fake_azure, fake_azure_b, make_key, http, wait_for_log):
    group, _ = route(gateway, [fake_azure, fake_azure_b], cooldown_failures=5, cooldown_seconds=60)
    fake_azure.fail_status, fake_azure.fail_times = 429, 1
    fake_azure.retry_after = formatdate(time.time() + 3, usegmt=True)  # "Wed, 25 Nov 2026 16:40:13 GMT"
    key = make_key()
    response = post(http, key, group.name)
    assert response.status_code == 200 and served_by(response) == "dep-b"
    for _ in range(3):
        assert served_by(post(http, key, group.name)) == "dep-b"
    assert len(fake_azure.received) == 1


def test_every_deployment_429_passes_the_upstream_answer_and_retry_after(gateway, fake_azure, fake_azure_b,
                                                                        make_key, http, wait_for_log):
    group, _ = route(gateway, [fake_azure, fake_azure_b], cooldown_failures=5)
    fake_azure.fail_status = fake_azure_b.fail_status = 429
    fake_azure.retry_after = fake_azure_b.retry_after = "12"  # longer than a same-deployment retry waits
    key = make_key()
    response = post(http, key, group.name)
    assert response.status_code == 429
    assert response.headers["retry-after"] == "12"
    assert response.json()["error"]["code"] == "429" and "Try again in 12 seconds" in response.json()["error"]["message"]
    row = wait_for_log(response.headers["x-gateway-request-id"])
    assert attempts(row) == [("dep-a", 429, ""), ("dep-b", 429, "")]
    assert (row.status, row.error_type, row.deployment_name) == (429, "upstream_429", "dep-b")
    # A is cooled for its Retry-After; B, then the last usable deployment, is not (a gateway-made 503
    # would help nobody): an immediate retry skips A and asks B again.
    again = post(http, key, group.name)
    assert again.status_code == 429
    assert (len(fake_azure.received), len(fake_azure_b.received)) == (1, 2)


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_single_deployment_retried_after_backoff(stream, gateway, fake_azure, make_key, http, wait_for_log):
    group, (a,) = route(gateway, [fake_azure], max_attempts=2)
    fake_azure.fail_status, fake_azure.fail_times = 500, 1

    started = time.monotonic()
    response = post(http, make_key(), group.name, stream=stream)
    elapsed = time.monotonic() - started
    assert response.status_code == 200, response.text
    if stream:
        assert parse_sse(response.text)[-1].event == "response.completed"
    else:
        assert response.json()["status"] == "completed"
    assert len(fake_azure.received) == 2
    assert elapsed >= 0.12, f"retried the same deployment without backoff ({elapsed:.3f}s)"
    assert elapsed < 2.0
    row = wait_for_log(response.headers["x-gateway-request-id"])
    assert attempts(row) == [("dep-a", 500, ""), ("dep-a", 200, "")]
    assert (row.status, row.deployment_name, row.error_type) == (200, "dep-a", "")


def test_single_deployment_gives_up_after_max_attempts(gateway, fake_azure, make_key, http, wait_for_log):
    group, _ = route(gateway, [fake_azure], max_attempts=3, cooldown_failures=10)
    fake_azure.fail_status = 503
    response = post(http, make_key(), group.name)
    assert response.status_code == 503  # the upstream's last answer, passed through
    assert response.json()["error"]["code"] == "503"
    assert len(fake_azure.received) == 3
    row = wait_for_log(response.headers["x-gateway-request-id"])
    assert attempts(row) == [("dep-a", 503, "")] * 3
    assert (row.status, row.upstream_status, row.error_type, row.deployment_name) == (503, 503, "upstream_503", "dep-a")


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_hanging_deployment_fails_over_at_first_byte_timeout(stream, gateway, fake_azure, fake_azure_b, make_key,
                                                             http, wait_for_log, admin_on):
    group, (a, b) = route(gateway, [fake_azure, fake_azure_b], first_byte_timeout=0.5, cooldown_failures=1)
    fake_azure.hang_seconds = 3
    started = time.monotonic()
    response = post(http, make_key(), group.name, stream=stream)
    elapsed = time.monotonic() - started
    assert response.status_code == 200 and served_by(response) == "dep-b"
    assert 0.45 < elapsed < 1.5, elapsed
    row = wait_for_log(response.headers["x-gateway-request-id"])
    assert attempts(row) == [("dep-a", None, "first_byte_timeout"), ("dep-b", 200, "")]
    health = admin_on(gateway).health(a)
    assert health.startswith("cooling\n") and "last error: first_byte_timeout" in health, health


def test_every_deployment_hangs_gives_504(gateway, fake_azure, fake_azure_b, make_key, http, wait_for_log):
    group, _ = route(gateway, [fake_azure, fake_azure_b], first_byte_timeout=0.4)
    fake_azure.hang_seconds = fake_azure_b.hang_seconds = 3
    started = time.monotonic()
    response = post(http, make_key(), group.name)
    assert time.monotonic() - started < 1.5
    error = assert_openai_error(response, 504, code="upstream_timeout")
    assert error["type"] == "api_error" and "first_byte_timeout" in error["message"]
    assert (len(fake_azure.received), len(fake_azure_b.received)) == (1, 1)
    row = wait_for_log(response.headers["x-gateway-request-id"])
    assert attempts(row) == [("dep-a", None, "first_byte_timeout"), ("dep-b", None, "first_byte_timeout")]
    assert (row.status, row.error_type, row.deployment_id) == (504, "first_byte_timeout", None)
    assert "0.4s" in row.error_message  # the detail is for ops, in the log


def test_slow_first_byte_within_the_timeout_is_served(gateway, fake_azure, fake_azure_b, make_key, http,
                                                      wait_for_log):
    group, _ = route(gateway, [fake_azure, fake_azure_b], first_byte_timeout=2.0)
    fake_azure.hang_seconds = 0.4
    response = post(http, make_key(), group.name, stream=True)
    assert response.status_code == 200 and served_by(response) == "dep-a"
    assert parse_sse(response.text)[-1].event == "response.completed"
    assert fake_azure_b.received == []
    row = wait_for_log(response.headers["x-gateway-request-id"])
    assert attempts(row) == [("dep-a", 200, "")]
    assert row.attempts[0]["ms"] >= 400 and row.ttfb_ms >= 400


def test_connection_reset_before_response_fails_over(gateway, fake_azure, fake_azure_b, make_key, http,
                                                     wait_for_log):
    group, _ = route(gateway, [fake_azure, fake_azure_b])
    fake_azure.reset_before_response = True
    response = post(http, make_key(), group.name, stream=True)
    assert response.status_code == 200 and served_by(response) == "dep-b"
    assert parse_sse(response.text)[-1].event == "response.completed"
    assert (len(fake_azure.received), len(fake_azure_b.received)) == (1, 1)
    row = wait_for_log(response.headers["x-gateway-request-id"])
    assert [(name, status) for name, status, _ in attempts(row)] == [("dep-a", None), ("dep-b", 200)]
    assert row.attempts[0]["error"] != ""


def test_every_deployment_resets_gives_502(gateway, fake_azure, fake_azure_b, make_key, http, wait_for_log):
    group, _ = route(gateway, [fake_azure, fake_azure_b])
    fake_azure.reset_before_response = fake_azure_b.reset_before_response = True
    response = post(http, make_key(), group.name)
    error = assert_openai_error(response, 502, code="upstream_unreachable")
    assert error["type"] == "api_error"
    assert (len(fake_azure.received), len(fake_azure_b.received)) == (1, 1)
    row = wait_for_log(response.headers["x-gateway-request-id"])
    assert [(name, status) for name, status, _ in attempts(row)] == [("dep-a", None), ("dep-b", None)]
    assert row.status == 502 and row.error_type == row.attempts[-1]["error"]


def test_reset_is_logged_as_a_reset(gateway, fake_azure, make_key, http, wait_for_log):
    """A TCP reset before the status line is what `upstream_reset` exists for (relay.classify:
    "the upstream closed the connection without answering"); it must not fall through to the
    catch-all `upstream_error`."""
    group, _ = route(gateway, [fake_azure], max_attempts=1)
    fake_azure.reset_before_response = True
    response = post(http, make_key(), group.name)
    assert response.status_code == 502
    row = wait_for_log(response.headers["x-gateway-request-id"])
    assert attempts(row) == [("dep-a", None, "upstream_reset")]
    assert row.error_type == "upstream_reset"


def test_mid_stream_drop_is_not_retried_but_cools_the_deployment(gateway, fake_azure, fake_azure_b, make_key, http,
                                                                 wait_for_log, admin_on):
    group, (a, b) = route(gateway, [fake_azure, fake_azure_b], max_attempts=3, cooldown_failures=1)
    fake_azure.drop_after_events = 4
    key = make_key()
    response = post(http, key, group.name, stream=True)
    assert response.status_code == 200
    events = parse_sse(response.text)
    assert [e.event for e in events] == ["response.created", "response.in_progress", "response.output_item.added",
                                         "response.content_part.added", "error", "response.failed"]
    assert events[-2].json()["code"] == "upstream_disconnected"
    assert events[-1].json()["response"]["id"] == events[0].json()["response"]["id"]
    assert (len(fake_azure.received), len(fake_azure_b.received)) == (1, 0)
    row = wait_for_log(response.headers["x-gateway-request-id"])
    assert attempts(row) == [("dep-a", 200, "")]
    assert (row.status, row.error_type, row.deployment_name) == (200, "upstream_disconnected", "dep-a")

    # The broken stream counts as A's failure: cooled, the next request goes to B directly.
    health = admin_on(gateway).health(a)
    assert health.startswith("cooling\n") and "upstream_disconnected" in health, health
    response = post(http, key, group.name, stream=True)
    assert served_by(response) == "dep-b" and parse_sse(response.text)[-1].event == "response.completed"
    assert len(fake_azure.received) == 1


def test_chat_mid_stream_drop_ends_with_an_error_chunk(gateway, fake_azure, fake_azure_b, make_key, http,
                                                       wait_for_log):
    group, _ = route(gateway, [fake_azure, fake_azure_b], max_attempts=3)
    fake_azure.drop_after_events = 2
    response = http.post("/v1/chat/completions", headers={"Authorization": f"Bearer {make_key().secret}"},
                         json={"model": group.name, "messages": [{"role": "user", "content": "hi"}], "stream": True})
    assert response.status_code == 200
    events = parse_sse(response.text)
    assert len(events) == 3 and all(e.event is None for e in events)
    error = events[-1].json()["error"]
    assert error["code"] == "upstream_disconnected" and error["type"] == "api_error"
    assert "[DONE]" not in response.text
    assert (len(fake_azure.received), len(fake_azure_b.received)) == (1, 0)
    row = wait_for_log(response.headers["x-gateway-request-id"])
    assert attempts(row) == [("dep-a", 200, "")] and row.error_type == "upstream_disconnected"


@pytest.mark.parametrize("status", [401, 403])
def test_an_upstream_refusing_the_deployments_key_fails_over_and_shows_in_health(
        status, gateway, fake_azure, fake_azure_b, make_key, http, wait_for_log, admin_on):
    group, (a, b) = route(gateway, [fake_azure, fake_azure_b], max_attempts=2)
    fake_azure.fail_status = status
    response = post(http, make_key(), group.name)
    assert response.status_code == 200 and served_by(response) == "dep-b"
    row = wait_for_log(response.headers["x-gateway-request-id"])
    assert attempts(row) == [("dep-a", status, "upstream_auth_failed"), ("dep-b", 200, "")]
    admin = admin_on(gateway)
    assert admin.state(a) == "auth_failed" and admin.state(b) == "healthy"

    fake_azure_b.fail_status = status  # nothing left that accepts its key: the client is not to blame
    refused = post(http, make_key(), group.name)
    error = assert_openai_error(refused, 502, code="upstream_auth_failed")
    assert "127.0.0.1" not in error["message"]
    fake_azure.fail_status = None
    healed = post(http, make_key(), group.name)
    assert healed.status_code == 200 and admin.state(a) == "healthy"  # a success clears it
