"""Helpers and fixtures for the resilience tests (test_resilience_*.py, test_two_processes.py).

- `route(...)`: one ModelGroup with its resilience knobs (max_attempts, retry_on_status,
  cooldown_*, strategy, fallbacks) and one Azure deployment per fake (per-deployment
  options: priority, weight, timeouts, rpm, tpm, speaks_compact, enabled), committed in
  one transaction, then waits until every given server lists the group.
- `AdminSession`: a real login into a *server's* /admin/ with an httpx client (GET the
  login page for the CSRF token, POST the credentials), used to read the breaker state
  the serving process shows on a deployment's change page, and to POST change forms.
- `WatchingUpstream`: a tiny aiohttp upstream (own thread) whose handlers note when the
  gateway's connection to them closes: before the first byte (`mode="hang"`) or while
  streaming (`mode="stream"`). The shared FakeUpstream has no hook for that.
- `ReasoningRefusingFake`: a FakeUpstream that answers 400 "encrypted content could not be
  decrypted" when the input carries an encrypted reasoning item (as Azure does for
  reasoning produced by another resource).
- `fake_c`: a third FakeUpstream (session server, reset per test).
"""

from __future__ import annotations

import asyncio
import html
import json
import re
import socket
import threading
import time
from typing import Any

import httpx
import pytest
from django.db import transaction

from routing.forms import CAPABILITY_FIELDS as CAPABILITIES
from routing.models import Deployment, GroupFallback, ModelGroup
from routing.services import presets_ensure
from tests.fakes import upstream_payloads as payloads
from tests.fakes.upstream import FakeUpstream, _Reject
from tests.integration.server import (
    MASTER_KEY,
    UPSTREAM_KEY,
    UPSTREAM_MODEL,
    resetting,
    start_fake,
    unique,
)

ADMIN_PASSWORD = "resilience-admin-pw-7f3a"
_password_hash: str | None = None


# ------------------------------------------------------------------------------------------ routes


def listed_models(url: str) -> set[str]:
    response = httpx.get(url + "/v1/models", headers={"Authorization": f"Bearer {MASTER_KEY}"}, timeout=5)
    assert response.status_code == 200, response.text
    return {m["id"] for m in response.json()["data"]}


def wait_served(urls, *models: str, timeout: float = 5.0) -> None:
    for url in [urls] if isinstance(urls, str) else urls:
        deadline = time.monotonic() + timeout
        while not set(models) <= listed_models(url):
            if time.monotonic() > deadline:
                raise AssertionError(f"{url} did not pick up {models} within {timeout}s")
            time.sleep(0.02)


def make_deployment(group: ModelGroup, fake: FakeUpstream | None, *, name: str, base: str | None = None,
                    upstream_model: str = UPSTREAM_MODEL, **fields) -> Deployment:
    fields.setdefault("policy", presets_ensure()["azure-responses"])
    dep = Deployment(group=group, name=name, provider="azure", api_base=base if base is not None else fake.url,
                     upstream_model=upstream_model, **fields)
    dep.api_key = UPSTREAM_KEY
    dep.save()
    return dep


def route(servers, fakes, *, name: str | None = None, strategy: str = "priority", max_attempts: int = 2,
          fallbacks: tuple[ModelGroup, ...] = (), wait: bool = True,
          **group_fields) -> tuple[ModelGroup, list[Deployment]]:
    """fakes: [fake | (fake, {deployment options})]; deployments are named dep-a, dep-b, ... in order
    and get priority 0, 1, ... unless given. Keyword options that are Deployment fields (timeouts, rpm, ...)
    apply to every deployment; the others are ModelGroup fields. Returns (group, deployments)."""
    dep_fields = {f.name for f in Deployment._meta.get_fields()}
    common = {k: group_fields.pop(k) for k in list(group_fields) if k in dep_fields and k != "enabled"}
    with transaction.atomic():
        group = ModelGroup.objects.create(name=name or unique("res"), strategy=strategy, max_attempts=max_attempts,
                                          **group_fields)
        deps = []
        for index, item in enumerate(fakes):
            fake, own = item if isinstance(item, tuple) else (item, {})
            own = {"priority": index, **common, **own}
            deps.append(make_deployment(group, fake, name=own.pop("name", f"dep-{'abcdefgh'[index]}"), **own))
        for position, fallback in enumerate(fallbacks):
            GroupFallback.objects.create(group=group, fallback=fallback, position=position)
    if wait:
        wait_served(servers, group.name)
    return group, deps


def attempts(row) -> list[tuple]:
    """(deployment name, status, error) per attempt of a RequestLog row."""
    return [(a["deployment"], a["status"], a["error"]) for a in row.attempts]


def post(client: httpx.Client, key, model: str, **body) -> httpx.Response:
    return client.post("/v1/responses", json={"model": model, "input": "hi", **body},
                       headers={"Authorization": f"Bearer {getattr(key, 'secret', key)}"})


def served_by(response: httpx.Response) -> str:
    """The deployment name from x-gateway-deployment ("<id>:<name>")."""
    return response.headers.get("x-gateway-deployment", ":").split(":", 1)[1]


# ------------------------------------------------------------------------------------------ admin


def superuser():
    """A superuser row with a precomputed password hash (hashing costs ~0.3 s each time)."""
    global _password_hash
    from django.contrib.auth.hashers import make_password
    from django.contrib.auth.models import User

    if _password_hash is None:
        _password_hash = make_password(ADMIN_PASSWORD)
    return User.objects.create(username=unique("ops"), password=_password_hash, is_staff=True, is_superuser=True)


class AdminSession:
    """A browser-like admin session on one gateway server process."""

    def __init__(self, base_url: str, username: str, password: str = ADMIN_PASSWORD) -> None:
        self.client = httpx.Client(base_url=base_url, timeout=10, follow_redirects=False)
        login = self.client.get("/admin/login/", params={"next": "/admin/"})
        assert login.status_code == 200, login.text[:500]
        response = self.client.post("/admin/login/", data={
            "csrfmiddlewaretoken": self._form_token(login.text), "username": username, "password": password,
            "next": "/admin/"})
        assert response.status_code == 302 and response.headers["location"] == "/admin/", \
            f"admin login failed: {response.status_code} {response.text[:500]}"

    @staticmethod
    def _form_token(page: str) -> str:
        found = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
        assert found, "no CSRF token in the page"
        return found.group(1)

    def change_page(self, dep: Deployment) -> str:
        response = self.client.get(f"/admin/routing/deployment/{dep.pk}/change/")
        assert response.status_code == 200, response.status_code
        return response.text

    def health(self, dep: Deployment) -> str:
        """The "Health" read-only field of the deployment's change page, as plain text lines."""
        page = self.change_page(dep)
        found = re.search(r'field-health_detail.*?<div class="readonly">(.*?)</div>', page, re.S)
        assert found, "no health field on the deployment change page"
        return html.unescape(re.sub(r"<br\s*/?>", "\n", found.group(1))).strip()

    def state(self, dep: Deployment) -> str:
        return self.health(dep).split("\n", 1)[0]

    def change_deployment(self, dep: Deployment, **changes) -> httpx.Response:
        """POST the deployment's change form with its current values updated by `changes`."""
        page = self.change_page(dep)
        dep.refresh_from_db()
        data = {
            "csrfmiddlewaretoken": self._form_token(page), "group": dep.group_id, "name": dep.name,
            "provider": dep.provider, "api_base": dep.api_base, "upstream_model": dep.upstream_model,
            "api_version": dep.api_version, "new_api_key": "", "weight": dep.weight, "priority": dep.priority,
            "rpm": dep.rpm or "", "tpm": dep.tpm or "", "connect_timeout": dep.connect_timeout,
            "first_byte_timeout": dep.first_byte_timeout, "idle_timeout": dep.idle_timeout,
            "total_timeout": dep.total_timeout, "policy": dep.policy_id or "",
            **{name: {None: "unknown", True: "true", False: "false"}[getattr(dep, name)] for name in CAPABILITIES},
            "collect_stream_usage": "on" if dep.collect_stream_usage else None,
            "enabled": "on" if dep.enabled else None,
            "_save": "Save",
        }
        data.update(changes)
        return self.client.post(f"/admin/routing/deployment/{dep.pk}/change/",
                                data={k: v for k, v in data.items() if v is not None})

    def close(self) -> None:
        self.client.close()


@pytest.fixture
def admin_on():
    """admin_on(server_url) -> AdminSession logged in as a fresh superuser (closed after the test)."""
    sessions: list[AdminSession] = []

    def make(url: str) -> AdminSession:
        user = superuser()
        session = AdminSession(url, user.username)
        sessions.append(session)
        return session

    yield make
    for session in sessions:
        session.close()


# ------------------------------------------------------------------------------------------ upstreams


def has_encrypted_reasoning(body: Any) -> bool:
    items = body.get("input") if isinstance(body, dict) else None
    return isinstance(items, list) and any(
        isinstance(i, dict) and i.get("type") == "reasoning" and i.get("encrypted_content") for i in items)


ENCRYPTED_REFUSAL = ("The encrypted content for item rs_from_other_resource could not be verified. "
                     "Reason: Encrypted content could not be decrypted or parsed.")


class ReasoningRefusingFake(FakeUpstream):
    """Refuses encrypted reasoning it did not produce, like a different Azure resource would."""

    async def _dispatch(self, request, op, params, body):
        if op == "create" and has_encrypted_reasoning(body):
            raise _Reject(400, payloads.openai_error(ENCRYPTED_REFUSAL, param="input",
                                                     code="invalid_encrypted_content"))
        return await super()._dispatch(request, op, params, body)


@pytest.fixture(scope="session")
def _fake_c_server():
    fake = start_fake()
    yield fake
    fake.stop()


@pytest.fixture
def fake_c(_fake_c_server):
    yield from resetting(_fake_c_server)


@pytest.fixture(scope="session")
def _reasoning_fake_server():
    fake = start_fake(ReasoningRefusingFake)
    yield fake
    fake.stop()


@pytest.fixture
def reasoning_fake(_reasoning_fake_server):
    yield from resetting(_reasoning_fake_server)

    _reasoning_fake_server.reset()


def _frame(event: dict) -> bytes:
    return f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode()


class WatchingUpstream:
    """An Azure-v1-shaped upstream (`POST /openai/v1/responses`) that records when the gateway's
    connection to it closes. mode "hang": never answers (polls the transport); mode "stream":
    sends response.created, then a delta every `interval` until the connection goes away."""

    def __init__(self, mode: str, interval: float = 0.05, limit: float = 15.0) -> None:
        self.mode, self.interval, self.limit = mode, interval, limit
        self.arrived = threading.Event()
        self.closed = threading.Event()
        self.arrived_at: float | None = None
        self.closed_at: float | None = None
        self.frames_sent = 0
        self.port: int | None = None
        self._loop = asyncio.new_event_loop()
        self._thread: threading.Thread | None = None
        self._runner = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _gone(self) -> None:
        if not self.closed.is_set():
            self.closed_at = time.monotonic()
            self.closed.set()

    async def _handle(self, request):
        from aiohttp import web

        await request.read()
        self.arrived_at = time.monotonic()
        self.arrived.set()
        deadline = time.monotonic() + self.limit
        if self.mode == "hang":
            while request.transport is not None and not request.transport.is_closing():
                if time.monotonic() > deadline:
                    return web.json_response({"error": {"message": "watcher limit"}}, status=500)
                await asyncio.sleep(0.005)
            self._gone()
            return web.Response()
        resp = web.StreamResponse(status=200, headers={"Content-Type": "text/event-stream; charset=utf-8"})
        await resp.prepare(request)
        rid = "resp_watch_" + str(self.port)
        events = [{"type": "response.created", "sequence_number": 0,
                   "response": {"id": rid, "object": "response", "status": "in_progress", "model": UPSTREAM_MODEL}}]
        seq = 1
        try:
            while time.monotonic() < deadline:
                for event in events:
                    await resp.write(_frame(event))
                    self.frames_sent += 1
                events = [{"type": "response.output_text.delta", "sequence_number": seq, "item_id": "msg_1",
                           "output_index": 0, "content_index": 0, "delta": "tick "}]
                seq += 1
                end = time.monotonic() + self.interval
                while time.monotonic() < end:
                    if request.transport is None or request.transport.is_closing():
                        raise ConnectionResetError("gone")
                    await asyncio.sleep(0.005)
        except (ConnectionError, RuntimeError):
            self._gone()
        return resp

    def start(self) -> "WatchingUpstream":
        from aiohttp import web

        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        started = threading.Event()

        async def serve():
            app = web.Application()
            app.router.add_post("/openai/v1/responses", self._handle)
            self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.2)
            await self._runner.setup()
            await web.SockSite(self._runner, sock).start()

        def run():
            asyncio.set_event_loop(self._loop)
            self._loop.run_until_complete(serve())
            started.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, name=f"watching-upstream-{self.port}", daemon=True)
        self._thread.start()
        assert started.wait(5)
        return self

    def stop(self) -> None:
        async def shutdown():
            await self._runner.cleanup()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


@pytest.fixture
def watching_upstream():
    """watching_upstream(mode) -> a started WatchingUpstream (stopped after the test)."""
    started: list[WatchingUpstream] = []

    def make(mode: str, **kwargs) -> WatchingUpstream:
        watcher = WatchingUpstream(mode, **kwargs).start()
        started.append(watcher)
        return watcher

    yield make
    for watcher in started:
        watcher.stop()
