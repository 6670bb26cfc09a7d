"""Fixtures for integration tests: the real gateway server, fake upstreams, route factories.

- `gateway_server` (session): one uvicorn subprocess serving gateway.asgi against the
  pytest-django test database (see server.py). `gateway` (per test) is its base URL and
  pulls in `transactional_db`: rows must be committed to be visible to the server (and
  the server's RequestLog rows to us). pytest-django empties the tables after each
  such test, which also removes the migration-seeded "azure-responses" preset and the
  RouteVersion row; `gateway` recreates the row with a fresh, ever-growing version so
  the server never mistakes this test's routes for the previous test's (a version that
  restarted at 1 after the flush could equal the one the server already has).
- `fake_azure`, `fake_azure_b` (servers per session, reset per test): FakeUpstream in
  Azure mode knowing the deployments "gpt-5.5-prod" and "gpt-5.5-canary".
- `azure_route(fake, ...)` creates a ModelGroup (unique name = the public model) and an
  Azure deployment pointing at `fake` with the "azure-responses" preset policy
  (`azure_group([fake, ...])`: one group, several deployments, committed together), and
  waits until the server lists it, so tests do not depend on the lookup-miss refresh
  (test_route_refresh.py tests that on its own; `wait=False` skips the wait).
  `make_key(*groups)` makes a client key, `sdk(key)` an OpenAI SDK client for the gateway,
  `http` a plain httpx client, `wait_for_log(request_id)` polls for the RequestLog row.
- On PostgreSQL the end-of-test flush is retried when it deadlocks with the server's
  log writer (see `_flush_retries_on_deadlock`).
- When a test fails, the server output written during it is attached to the report.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import httpx
import openai
import pytest
from django.db import transaction

from routing.models import ApiKey, Deployment, ModelGroup, ParamPolicy, RequestLog, RouteVersion
from routing.services import api_key_create, presets_ensure
from tests.fakes.upstream import FakeUpstream
from tests.integration.server import (
    MASTER_KEY,
    UPSTREAM_KEY,
    UPSTREAM_MODEL,
    GatewayServer,
    resetting,
    server_database_url,
    start_fake,
    unique,
)

_DEFAULT = object()


# ------------------------------------------------------------------------------------------ server


@pytest.fixture(scope="session")
def gateway_server(django_db_setup, django_db_blocker, tmp_path_factory):
    with django_db_blocker.unblock():
        database_url = server_database_url()
    server = GatewayServer(database_url=database_url, workdir=tmp_path_factory.mktemp("gateway"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session", autouse=True)
def _flush_retries_on_deadlock():
    """On PostgreSQL the end-of-test flush (one TRUNCATE of every table) can deadlock with
    the server's log writer, whose transaction inserts RequestLog then ResponseAffinity
    rows for a request that just ended: PostgreSQL aborts one of them. The flush runs in a
    transaction, so trying it again is safe (the writer retries its batch by design)."""
    from django.core.management.base import CommandError
    from django.test import TransactionTestCase

    original = TransactionTestCase._fixture_teardown

    def fixture_teardown(self):
        for attempt in range(10):
            try:
                return original(self)
            except CommandError as exc:
                if attempt == 9 or "deadlock" not in str(exc.__cause__).lower():
                    raise
                time.sleep(0.05)

    TransactionTestCase._fixture_teardown = fixture_teardown
    yield
    TransactionTestCase._fixture_teardown = original


def _fresh_route_version() -> None:
    # Single statements, no read-then-write transaction: on SQLite such a transaction fails at
    # once with "database is locked" when the server's log writer committed in between.
    version = time.time_ns() // 1000
    if not RouteVersion.objects.filter(pk=1).update(version=version):
        RouteVersion.objects.create(pk=1, version=version)


@pytest.fixture
def gateway(request, gateway_server, transactional_db) -> str:
    """Base URL of the running gateway (no trailing slash)."""
    assert gateway_server.running, "the gateway server died:\n" + gateway_server.log_since(0)
    request.node._gateway_log = (gateway_server, gateway_server.log_offset())
    _fresh_route_version()
    return gateway_server.url


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.failed and hasattr(item, "_gateway_log"):
        server, offset = item._gateway_log
        report.sections.append(("gateway server output", server.log_since(offset) or "(nothing)"))
    return report


@pytest.fixture
def master_key() -> str:
    return MASTER_KEY


# ------------------------------------------------------------------------------------------ upstreams


@pytest.fixture(scope="session")
def _fake_azure_server():
    fake = start_fake()
    yield fake
    fake.stop()


@pytest.fixture(scope="session")
def _fake_azure_b_server():
    fake = start_fake()
    yield fake
    fake.stop()


@pytest.fixture
def fake_azure(_fake_azure_server) -> FakeUpstream:
    yield from resetting(_fake_azure_server)  # e.g. no hang_seconds left for the next test


@pytest.fixture
def fake_azure_b(_fake_azure_b_server) -> FakeUpstream:
    yield from resetting(_fake_azure_b_server)


# ------------------------------------------------------------------------------------------ factories


def _listed_models(gateway: str) -> set[str]:
    response = httpx.get(gateway + "/v1/models", headers={"Authorization": f"Bearer {MASTER_KEY}"}, timeout=5)
    assert response.status_code == 200, response.text
    return {m["id"] for m in response.json()["data"]}


def wait_until_served(gateway: str, *models: str, timeout: float = 5.0) -> None:
    """Block until the server's route table lists `models` (GET /v1/models with the master key)."""
    deadline = time.monotonic() + timeout
    while not set(models) <= _listed_models(gateway):
        if time.monotonic() > deadline:
            raise AssertionError(f"the gateway did not pick up {models} within {timeout}s")
        time.sleep(0.02)


@pytest.fixture
def azure_group(gateway):
    """make([fake, ...], *, group=None, ...) -> [Deployment, ...]: one Azure deployment per fake in one group.

    An item may be `(fake, {options})` for options of that deployment only (e.g. priority).

    The group (unique name unless given = the public model) and its deployments are committed in one
    transaction, then this waits until the server serves the group, so its first snapshot with the
    group holds every deployment. Deployment options: see `azure_route`."""

    def make(fakes, *, group: str | None = None, max_attempts: int = 2, strategy: str = "weighted",
             wait: bool = True, **dep_options) -> list[Deployment]:
        with transaction.atomic():
            row = ModelGroup.objects.create(name=group or unique("azure-gpt"), max_attempts=max_attempts,
                                            strategy=strategy)
            deps = []
            for item in fakes:
                fake, own = item if isinstance(item, tuple) else (item, {})
                deps.append(_deployment(row, fake, **{**dep_options, **own}))
        if wait:
            wait_until_served(gateway, row.name)
        return deps

    return make


def _deployment(group: ModelGroup, fake: FakeUpstream | None, *, name: str | None = None,
                upstream_model: str = UPSTREAM_MODEL, api_version: str = "", api_key: str = UPSTREAM_KEY,
                policy: ParamPolicy | None | object = _DEFAULT, base: str | None = None, **fields) -> Deployment:
    dep = Deployment(group=group, name=name or unique("dep"), provider="azure",
                     api_base=base if base is not None else fake.url, upstream_model=upstream_model,
                     api_version=api_version,
                     policy=presets_ensure()["azure-responses"] if policy is _DEFAULT else policy, **fields)
    dep.api_key = api_key
    dep.save()
    return dep


@pytest.fixture
def azure_route(azure_group):
    """make(fake, **options) -> Deployment: a new group (`.group.name` is the public model) with one
    Azure deployment pointing at `fake` (or at `base`). Options: group, max_attempts, strategy, wait,
    name, upstream_model ("gpt-5.5-prod"), api_version ("" = v1 URLs), api_key ("upstream-secret"),
    policy (default: the azure-responses preset), base, and any other Deployment field."""

    def make(fake: FakeUpstream | None, **options) -> Deployment:
        return azure_group([fake], **options)[0]

    return make


@dataclass
class ClientKey:
    row: ApiKey
    secret: str

    @property
    def name(self) -> str:
        return self.row.name


@pytest.fixture
def make_key(gateway):
    """make(*groups, name=None) -> ClientKey; no groups means every group."""

    def make(*groups: ModelGroup, name: str | None = None, **fields) -> ClientKey:
        row, secret = api_key_create(name=name or unique("key"), allowed_groups=list(groups), **fields)
        return ClientKey(row, secret)

    return make


@pytest.fixture
def sdk(gateway):
    """sdk(key) -> openai.OpenAI talking to the gateway (no SDK retries: every request is visible)."""
    clients: list[openai.OpenAI] = []

    def make(key: ClientKey | str, **kwargs) -> openai.OpenAI:
        secret = key.secret if isinstance(key, ClientKey) else key
        client = openai.OpenAI(base_url=gateway + "/v1", api_key=secret, max_retries=0, timeout=20, **kwargs)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def http(gateway):
    """A plain httpx client for the gateway (for what the SDK hides: raw bytes, bad input)."""
    with httpx.Client(base_url=gateway, timeout=20) as client:
        yield client


@pytest.fixture
def wait_for_log(gateway):
    """wait(request_id, timeout=5) -> RequestLog, polling until the server has written the row."""

    def wait(request_id: str, timeout: float = 5.0) -> RequestLog:
        assert request_id, "no x-gateway-request-id"
        deadline = time.monotonic() + timeout
        while True:
            row = RequestLog.objects.filter(request_id=request_id).first()
            if row is not None:
                return row
            if time.monotonic() > deadline:
                raise AssertionError(f"no RequestLog row for {request_id} after {timeout}s")
            time.sleep(0.03)

    return wait

