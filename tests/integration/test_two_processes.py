"""Two gateway server processes sharing the database (the pytest test database: SQLite file or
PostgreSQL) and Redis (TEST_REDIS_URL, default redis://127.0.0.1:6379/15; the servers' keys carry a
prefix of this run's own, and only keys with that prefix are deleted afterwards): a key's rpm holds across both, a
route edited in one process's admin is used by the other within the refresh bound, a
`previous_response_id` sent to one reaches the deployment the other used, and a deployment one
process cooled is skipped by the other (shared health)."""

import os
import threading
import time
import uuid

import httpx
import pytest
import redis

from routing.models import RequestLog, ResponseAffinity
from tests.integration.resilience_support import admin_on, attempts, post, route, served_by  # noqa: F401 (fixture)
from tests.integration.server import GatewayServer, assert_openai_error, eventually, server_database_url

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
PREFIX = f"{os.environ.get('TEST_REDIS_PREFIX', 'gwtest:')}two-{uuid.uuid4().hex[:8]}:"
REFRESH = 1.0  # GATEWAY_ROUTE_REFRESH_SECONDS of both processes (route changes and shared health)
BOUND = REFRESH + 1.0  # propagation bound asserted: one refresh tick plus a reload and some slack


def _redis() -> redis.Redis | None:
    try:
        client = redis.Redis.from_url(REDIS_URL, socket_timeout=0.5, decode_responses=True)
        client.ping()
        return client
    except redis.RedisError:
        return None


@pytest.fixture(scope="module")
def shared_redis():
    client = _redis()
    if client is None:
        pytest.skip(f"Redis is not running at {REDIS_URL}")
    yield client  # a fresh prefix: deployment and key ids restart with every test database
    for key in client.scan_iter(match=PREFIX + "*"):
        client.delete(key)
    client.close()


@pytest.fixture(scope="module")
def two_gateways(shared_redis, django_db_setup, django_db_blocker, tmp_path_factory):
    with django_db_blocker.unblock():
        database_url = server_database_url()
    workdir = tmp_path_factory.mktemp("two-processes")
    env = {"REDIS_URL": REDIS_URL, "GATEWAY_REDIS_PREFIX": PREFIX, "GATEWAY_ROUTE_REFRESH_SECONDS": str(REFRESH)}
    servers = [GatewayServer(database_url=database_url, workdir=workdir, env=env, name=name) for name in ("a", "b")]
    try:
        for server in servers:
            server.start()
        yield servers
    finally:
        for server in servers:
            server.stop()


@pytest.fixture
def ab(two_gateways, gateway):
    """(url_a, url_b), with the test's database access (the `gateway` fixture: transactional DB, fresh
    route version) and both processes alive."""
    a, b = two_gateways
    assert a.running and b.running, a.log_since(0)[-3000:] + b.log_since(0)[-3000:]
    return a.url, b.url


@pytest.fixture
def clients(ab):
    with httpx.Client(base_url=ab[0], timeout=10) as a, httpx.Client(base_url=ab[1], timeout=10) as b:
        yield a, b


def test_key_rpm_holds_across_processes(ab, clients, fake_azure, make_key, wait_for_log):
    group, _ = route(ab, [fake_azure])
    key = make_key(rpm=3)
    a, b = clients
    assert [post(c, key, group.name).status_code for c in (a, b, a)] == [200, 200, 200]
    for client in (b, a):
        response = post(client, key, group.name)
        error = assert_openai_error(response, 429, code="rate_limit_exceeded")
        assert "requests-per-minute" in error["message"] and int(response.headers["retry-after"]) >= 1
    assert len(fake_azure.received) == 3
    # The limit is per key: another key still passes on both.
    other = make_key(rpm=3)
    assert [post(c, other, group.name).status_code for c in (a, b)] == [200, 200]


def test_key_max_parallel_and_deployment_rpm_hold_across_processes(ab, clients, fake_azure, fake_azure_b, make_key,
                                                                   wait_for_log):
    group, _ = route(ab, [(fake_azure, {"rpm": 1}), fake_azure_b], strategy="priority")
    a, b = clients
    # Deployment rpm: process A's call used dep-a's only request this minute; process B moves on to dep-b.
    assert served_by(post(a, make_key(), group.name)) == "dep-a"
    response = post(b, make_key(), group.name)
    assert response.status_code == 200 and served_by(response) == "dep-b"
    assert attempts(wait_for_log(response.headers["x-gateway-request-id"])) == [
        ("dep-a", None, "deployment_rate_limited"), ("dep-b", 200, "")]
    assert len(fake_azure.received) == 1

    # Key max_parallel=1: a stream in flight through process A blocks a second request through B.
    key = make_key(max_parallel=1)
    fake_azure_b.event_delay = 0.08  # ~1 s stream
    done = {}

    def slow_stream():
        with httpx.Client(base_url=ab[0], timeout=10) as client:
            done["first"] = post(client, key, group.name, stream=True)

    thread = threading.Thread(target=slow_stream)
    thread.start()
    fake_azure_b.wait_for(2, timeout=3)
    blocked = post(b, key, group.name)
    error = assert_openai_error(blocked, 429, code="rate_limit_exceeded")
    assert "parallel-requests" in error["message"]
    thread.join(10)
    assert done["first"].status_code == 200
    fake_azure_b.event_delay = 0
    eventually(lambda: post(b, key, group.name).status_code == 200, timeout=3,
               message="process B never saw the slot process A released")


def test_admin_edit_in_one_process_is_used_by_the_other(ab, clients, fake_azure, fake_azure_b, make_key, admin_on):
    group, (dep,) = route(ab, [fake_azure])
    key = make_key()
    a, b = clients
    assert served_by(post(b, key, group.name)) == "dep-a" and len(fake_azure.received) == 1

    admin = admin_on(ab[0])  # process A's admin
    saved = admin.change_deployment(dep, api_base=fake_azure_b.url)
    assert saved.status_code == 302, saved.text[:2000]
    changed = time.monotonic()
    dep.refresh_from_db()
    assert dep.api_base == fake_azure_b.url

    def b_uses_new_base():
        assert post(b, key, group.name).status_code == 200
        return len(fake_azure_b.received) > 0

    eventually(b_uses_new_base, timeout=BOUND + 1, interval=0.05, message="process B kept the old route")
    took = time.monotonic() - changed
    assert took < BOUND, f"process B used the edited route only after {took:.2f}s"
    before = len(fake_azure.received)
    for client in (a, b, a, b):
        assert post(client, key, group.name).status_code == 200
    assert len(fake_azure.received) == before  # both processes stay on the new route


def test_previous_response_id_reaches_the_owner_through_the_other_process(ab, clients, fake_azure, fake_azure_b,
                                                                          make_key, wait_for_log):
    group, (dep_a, dep_b) = route(ab, [fake_azure, fake_azure_b], strategy="priority")  # dep-a is preferred
    key = make_key()
    a, b = clients
    fake_azure.fail_status, fake_azure.fail_times = 500, 1  # so process A's response is created on dep-b

    first = post(a, key, group.name, input="remember 42")
    assert first.status_code == 200 and served_by(first) == "dep-b"
    response_id = first.json()["id"]
    eventually(lambda: ResponseAffinity.objects.filter(response_id=response_id, deployment_id=dep_b.id).exists(),
               timeout=3, message="process A never persisted the response's deployment")
    assert served_by(post(b, key, group.name)) == "dep-a"  # without previous_response_id: priority order

    a_calls, b_calls = len(fake_azure.received), len(fake_azure_b.received)
    for stream in (False, True):
        follow = post(b, key, group.name, input="what was it?", previous_response_id=response_id, stream=stream)
        assert follow.status_code == 200, follow.text
        assert served_by(follow) == "dep-b"
        assert fake_azure_b.last().json["previous_response_id"] == response_id
        row = wait_for_log(follow.headers["x-gateway-request-id"])
        assert attempts(row) == [("dep-b", 200, "")]
    assert (len(fake_azure.received), len(fake_azure_b.received)) == (a_calls, b_calls + 2)


def test_deployment_cooled_by_one_process_is_skipped_by_the_other(ab, clients, shared_redis, fake_azure,
                                                                  fake_azure_b, make_key, wait_for_log, admin_on):
    group, (dep_a, _) = route(ab, [fake_azure, fake_azure_b], strategy="priority", cooldown_failures=1,
                              cooldown_seconds=30)
    key = make_key()
    a, b = clients
    assert served_by(post(b, key, group.name)) == "dep-a"  # B uses dep-a while it is healthy

    fake_azure.fail_status = 500
    response = post(a, key, group.name)
    cooled = time.monotonic()
    assert response.status_code == 200 and served_by(response) == "dep-b"
    assert attempts(wait_for_log(response.headers["x-gateway-request-id"])) == [("dep-a", 500, ""),
                                                                                 ("dep-b", 200, "")]
    eventually(lambda: shared_redis.hget(f"{PREFIX}health:{dep_a.id}", "state") == "cooling", timeout=1,
               message="process A did not publish the cooldown")
    assert admin_on(ab[1]).state(dep_a) == "cooling"  # B's admin shows the shared state

    # Process B has not called dep-a since; within one refresh tick it adopts the cooldown.
    time.sleep(max(0.0, BOUND - 0.5 - (time.monotonic() - cooled)))
    calls = len(fake_azure.received)
    for _ in range(4):
        response = post(b, key, group.name)
        assert response.status_code == 200 and served_by(response) == "dep-b"
        assert attempts(wait_for_log(response.headers["x-gateway-request-id"])) == [("dep-b", 200, "")]
    assert len(fake_azure.received) == calls == 2, "process B still called the deployment process A cooled"
    assert RequestLog.objects.filter(deployment_id=dep_a.id, status=500).count() == 0  # no 500 reached a client
