"""Fallback groups through the real server (routing/forwarding/candidates.py `groups_in_order`): when a group
has nothing left, its fallback groups are tried in order, each at most once; the log row
names the group that served (`served_group`)."""

import time

from django.db import transaction

from routing.models import GroupFallback
from tests.integration.resilience_support import _fake_c_server, fake_c, post, route, served_by, wait_served  # noqa: F401 (fixtures)
from tests.integration.server import unique


def attempt_groups(row) -> list[tuple]:
    return [(a["group"], a["deployment"], a["status"]) for a in row.attempts]


def test_failing_group_falls_back(gateway, fake_azure, fake_azure_b, make_key, http, wait_for_log):
    g2, (g2_dep,) = route(gateway, [fake_azure_b], name=unique("G2"))
    g1, _ = route(gateway, [fake_azure, fake_azure], name=unique("G1"), max_attempts=2, fallbacks=(g2,))
    fake_azure.fail_status = 500
    key = make_key(g1)  # allowed to use G1 only: the fallback is the gateway's decision, not the client's

    response = post(http, key, g1.name)
    assert response.status_code == 200, response.text
    assert response.headers["x-gateway-deployment"] == f"{g2_dep.id}:dep-a"
    assert response.json()["model"] == "gpt-5.5-prod"
    assert (len(fake_azure.received), len(fake_azure_b.received)) == (2, 1)
    assert fake_azure_b.last().json == {"model": "gpt-5.5-prod", "input": "hi"}
    row = wait_for_log(response.headers["x-gateway-request-id"])
    assert attempt_groups(row) == [(g1.name, "dep-a", 500), (g1.name, "dep-b", 500), (g2.name, "dep-a", 200)]
    assert (row.group_name, row.served_group, row.deployment_id, row.status) == (g1.name, g2.name, g2_dep.id, 200)


def test_group_without_enabled_deployments_falls_back(gateway, fake_azure, fake_azure_b, make_key, http,
                                                      wait_for_log):
    g2, _ = route(gateway, [fake_azure_b], name=unique("G2"))
    g1, _ = route(gateway, [(fake_azure, {"enabled": False})], name=unique("G1"), fallbacks=(g2,))
    response = post(http, make_key(), g1.name, stream=True)
    assert response.status_code == 200
    assert fake_azure.received == [] and len(fake_azure_b.received) == 1
    row = wait_for_log(response.headers["x-gateway-request-id"])
    assert attempt_groups(row) == [(g2.name, "dep-a", 200)]
    assert (row.group_name, row.served_group, row.stream) == (g1.name, g2.name, True)


def test_fallbacks_are_tried_in_position_order(gateway, fake_azure, fake_azure_b, fake_c, make_key, http,
                                               wait_for_log):
    first, _ = route(gateway, [fake_azure_b], name=unique("first"))
    second, _ = route(gateway, [fake_c], name=unique("second"))
    g1, _ = route(gateway, [fake_azure], name=unique("G1"), max_attempts=1, fallbacks=(first, second))
    fake_azure.fail_status = fake_azure_b.fail_status = 503
    response = post(http, make_key(), g1.name)
    assert response.status_code == 200
    row = wait_for_log(response.headers["x-gateway-request-id"])
    assert [(g, s) for g, _, s in attempt_groups(row)] == [(g1.name, 503), (first.name, 503), (first.name, 503),
                                                         (second.name, 200)]
    assert row.served_group == second.name


def test_fallback_loop_terminates(gateway, fake_azure, fake_azure_b, make_key, http, wait_for_log):
    with transaction.atomic():
        g1, _ = route(gateway, [fake_azure], name=unique("G1"), max_attempts=2, wait=False, cooldown_failures=10)
        g2, _ = route(gateway, [fake_azure_b], name=unique("G2"), max_attempts=2, wait=False, cooldown_failures=10)
        GroupFallback.objects.create(group=g1, fallback=g2)
        GroupFallback.objects.create(group=g2, fallback=g1)
    wait_served(gateway, g1.name, g2.name)
    time.sleep(0.3)  # one more refresh tick: the snapshot has the links too
    fake_azure.fail_status = fake_azure_b.fail_status = 500

    started = time.monotonic()
    response = post(http, make_key(), g1.name)
    assert time.monotonic() - started < 3, "the fallback loop did not end quickly"
    assert response.status_code == 500  # the last upstream answer, passed through
    assert (len(fake_azure.received), len(fake_azure_b.received)) == (2, 2)
    row = wait_for_log(response.headers["x-gateway-request-id"])
    assert [(g, s) for g, _, s in attempt_groups(row)] == [(g1.name, 500), (g1.name, 500), (g2.name, 500),
                                                         (g2.name, 500)]
    assert row.status == 500 and row.error_type == "upstream_500"

    # Starting from the other end visits each group once as well.
    fake_azure.clear(), fake_azure_b.clear()
    response = post(http, make_key(), g2.name)
    assert response.status_code == 500
    row = wait_for_log(response.headers["x-gateway-request-id"])
    assert [g for g, _, _ in attempt_groups(row)] == [g2.name, g2.name, g1.name, g1.name]


def test_served_group_only_names_a_fallback_that_answered(gateway, fake_azure, fake_azure_b, make_key, http,
                                                          wait_for_log):
    """G1's deployment fails with 500 and its fallback G2 has nothing enabled: the client gets G1's
    answer, so the row must not claim G2 served it (served_group: "the fallback group that served
    it, when not the requested group")."""
    g2, _ = route(gateway, [(fake_azure_b, {"enabled": False})], name=unique("G2"))
    g1, (a,) = route(gateway, [fake_azure], name=unique("G1"), max_attempts=1, fallbacks=(g2,))
    fake_azure.fail_status = 500
    response = post(http, make_key(), g1.name)
    assert response.status_code == 500 and served_by(response) == "dep-a"
    row = wait_for_log(response.headers["x-gateway-request-id"])
    assert (row.deployment_id, row.group_name) == (a.id, g1.name)
    assert row.served_group == "", f"served_group={row.served_group!r} but {g1.name}'s deployment answered"
