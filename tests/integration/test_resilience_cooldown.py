"""Cooldown and probing through the real server (resilience/breaker.py via forwarding/attempts.py):
failures within the window cool a deployment, a cooling deployment is skipped without an
upstream call, and after the cooldown exactly one probe goes through; its outcome decides
healthy or cooling again."""

import threading
import time

import httpx
import pytest

from routing.models import ParamPolicy, PolicyRule
from routing.services import presets_ensure
from tests.integration.resilience_support import admin_on, attempts, post, route  # noqa: F401
from tests.integration.server import assert_openai_error, eventually, unique

COOLDOWN = dict(max_attempts=1, cooldown_failures=2, cooldown_window=60, cooldown_seconds=2)
# Deployment A (priority 0) on fake_azure is the one cooled; B (priority 1) on fake_azure_b is a healthy
# spare, since the breaker never cools the last usable deployment of a group (test_resilience_breaker_rules).


def cool_down(http, key, group, fake, wait_for_log):
    """Two failing requests: the second one cools A. Returns a time just before the cooling began
    (when the second request was sent)."""
    fake.fail_status = 500
    for _ in range(2):
        sent = time.monotonic()
        response = post(http, key, group.name)
        assert response.status_code == 500, response.text
        assert attempts(wait_for_log(response.headers["x-gateway-request-id"])) == [("dep-a", 500, "")]
    return sent


def served_by_spare(http, key, group, wait_for_log) -> None:
    response = post(http, key, group.name)
    assert response.status_code == 200, response.text
    assert attempts(wait_for_log(response.headers["x-gateway-request-id"])) == [("dep-b", 200, "")]


def test_cooldown_skips_then_one_probe_restores(gateway, fake_azure, fake_azure_b, make_key, http, wait_for_log,
                                                admin_on):
    group, (a, _) = route(gateway, [fake_azure, fake_azure_b], **COOLDOWN)
    key = make_key()
    admin = admin_on(gateway)
    cooled = cool_down(http, key, group, fake_azure, wait_for_log)
    assert len(fake_azure.received) == 2
    health = admin.health(a)
    assert health.startswith("cooling\n") and "last error: HTTP 500" in health, health

    # Cooling: A is skipped without an upstream call; the spare answers.
    served_by_spare(http, key, group, wait_for_log)
    assert len(fake_azure.received) == 2

    # After cooldown_seconds the next request probes A; it succeeds, so A is healthy again.
    fake_azure.fail_status = None
    while time.monotonic() - cooled < 1.8:
        served_by_spare(http, key, group, wait_for_log)
        time.sleep(0.1)
    assert len(fake_azure.received) == 2
    deadline = time.monotonic() + 2
    while True:
        response = post(http, key, group.name)
        assert response.status_code == 200
        if attempts(wait_for_log(response.headers["x-gateway-request-id"]))[0][0] == "dep-a":
            break
        assert time.monotonic() < deadline, "no probe after the cooldown"
        time.sleep(0.05)
    assert time.monotonic() - cooled >= 2.0
    assert admin.state(a) == "healthy"
    for _ in range(3):  # and stays usable: one success resets the failure count
        assert served(post(http, key, group.name), wait_for_log) == "dep-a"
    assert len(fake_azure.received) == 6


def served(response, wait_for_log) -> str:
    assert response.status_code == 200, response.text
    return attempts(wait_for_log(response.headers["x-gateway-request-id"]))[-1][0]


def test_failed_probe_cools_again_at_once(gateway, fake_azure, fake_azure_b, make_key, http, wait_for_log, admin_on):
    group, (a, _) = route(gateway, [fake_azure, fake_azure_b], max_attempts=1, cooldown_failures=2,
                          cooldown_window=60, cooldown_seconds=1)
    key = make_key()
    cool_down(http, key, group, fake_azure, wait_for_log)
    admin = admin_on(gateway)
    eventually(lambda: admin.state(a).startswith("cooldown over"), timeout=5)  # on the gateway's clock

    response = post(http, key, group.name)  # the probe: still failing
    assert response.status_code == 500
    assert len(fake_azure.received) == 3
    # One failed probe is enough (no new count to cooldown_failures): cooling again, skipped.
    served_by_spare(http, key, group, wait_for_log)
    assert len(fake_azure.received) == 3
    assert admin.state(a) == "cooling"


def test_only_one_probe_at_a_time(gateway, fake_azure, fake_azure_b, make_key, http, wait_for_log, admin_on):
    group, (a, _) = route(gateway, [fake_azure, fake_azure_b], max_attempts=1, cooldown_failures=2,
                          cooldown_window=60, cooldown_seconds=1)
    key = make_key()
    cool_down(http, key, group, fake_azure, wait_for_log)
    fake_azure.fail_status = None
    fake_azure.hang_seconds = 0.8  # a slow probe
    eventually(lambda: admin_on(gateway).state(a).startswith("cooldown over"), timeout=5)

    results = {}

    def probe():
        with httpx.Client(base_url=gateway, timeout=10) as client:
            results["probe"] = post(client, key, group.name)

    thread = threading.Thread(target=probe)
    thread.start()
    fake_azure.wait_for(3, timeout=2)  # the probe reached the upstream
    served_by_spare(http, key, group, wait_for_log)  # A is being probed: not a second caller
    thread.join(5)
    assert results["probe"].status_code == 200
    assert len(fake_azure.received) == 3
    fake_azure.hang_seconds = 0
    assert served(post(http, key, group.name), wait_for_log) == "dep-a"  # the probe succeeded: healthy again


def test_failures_outside_the_window_do_not_add_up(gateway, fake_azure, fake_azure_b, make_key, http, wait_for_log):
    group, _ = route(gateway, [fake_azure, fake_azure_b], max_attempts=1, cooldown_failures=2, cooldown_window=0.5,
                     cooldown_seconds=30)
    key = make_key()
    fake_azure.fail_status = 500
    assert post(http, key, group.name).status_code == 500
    time.sleep(0.7)
    assert post(http, key, group.name).status_code == 500  # first failure dropped out of the window
    assert post(http, key, group.name).status_code == 500  # two within 0.5 s: cooled now
    served_by_spare(http, key, group, wait_for_log)
    assert len(fake_azure.received) == 3


# ------------------------------------------------------------------ the probe slot must not leak


def test_policy_rejected_request_does_not_take_the_probe(gateway, fake_azure, make_key, http, wait_for_log):
    """After a cooldown, the first request claims the probe slot (breaker.begin) before the
    deployment's policy runs. A request the policy rejects (400, never sent upstream) must not
    leave the deployment "probing": that blocks every request for PROBE_TIMEOUT (60 s)."""
    policy = ParamPolicy.objects.create(name=unique("no-metadata"), extends=presets_ensure()["azure-responses"])
    PolicyRule.objects.create(policy=policy, action="reject", path="metadata", message="metadata is not allowed")
    group, _ = route(gateway, [(fake_azure, {"policy": policy})], max_attempts=1, cooldown_failures=2,
                     cooldown_window=60, cooldown_seconds=1)
    key = make_key()
    cooled = cool_down(http, key, group, fake_azure, wait_for_log)
    fake_azure.fail_status = None
    time.sleep(max(0.0, 1.2 - (time.monotonic() - cooled)))

    rejected = post(http, key, group.name, metadata={"a": "b"})
    assert_openai_error(rejected, 400, code="unsupported_parameter")
    assert len(fake_azure.received) == 2

    response = post(http, key, group.name)
    assert response.status_code == 200, (
        f"a policy-rejected request left the deployment unusable: {response.status_code} {response.text}")


def test_client_gone_during_probe_does_not_block_the_deployment(gateway, fake_azure, make_key, http, wait_for_log):
    """A probe whose client hangs up before the upstream answered never reports back; the
    deployment must not stay "probing" (unusable) for PROBE_TIMEOUT = 60 s because of it."""
    group, _ = route(gateway, [fake_azure], max_attempts=1, cooldown_failures=2, cooldown_window=60,
                     cooldown_seconds=1)
    key = make_key()
    cooled = cool_down(http, key, group, fake_azure, wait_for_log)
    fake_azure.fail_status = None
    fake_azure.hang_seconds = 1.0
    time.sleep(max(0.0, 1.2 - (time.monotonic() - cooled)))

    with httpx.Client(base_url=gateway, timeout=httpx.Timeout(5, read=0.3)) as impatient:
        with pytest.raises(httpx.ReadTimeout):
            post(impatient, key, group.name)
    assert len(fake_azure.received) == 3
    fake_azure.hang_seconds = 0
    time.sleep(0.3)

    response = post(http, key, group.name)
    assert response.status_code == 200, (
        f"an abandoned probe kept the deployment unusable: {response.status_code} {response.text}")
