"""The real gateway in a real server process, plus small client-side helpers.

`GatewayServer` runs `python -m uvicorn gateway.asgi:application` (uvloop, httptools,
lifespan on) on a free port against the pytest-django *test* database, waits until
`/healthz` answers, and stops it with SIGTERM (the lifespan shutdown flushes the
request-log writer) — so integration tests exercise exactly what production runs.

The server's output (stdout + stderr) goes to a file; `log_since(offset)` lets the
fixtures attach the part written during a failed test to its report.

Below the server: the constants and small helpers the test modules share (SSE parsing,
the OpenAI error-shape assertion, polling).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx

ROOT = Path(__file__).resolve().parents[2]
MASTER_KEY = "sk-gw-master-test-only-3c9d2f41a8e6"
MAX_BODY_BYTES = 1_000_000
UPSTREAM_KEY = "upstream-secret"  # what the fake upstreams accept in `api-key`
UPSTREAM_MODEL = "gpt-5.5-prod"  # the Azure deployment name routes rewrite `model` to
CANARY_MODEL = "gpt-5.5-canary"  # a second deployment name the fakes know
API_VERSION_PREVIEW = "2025-04-01-preview"  # an Azure api-version (the `/openai/responses?api-version=` URLs)


def free_port() -> int:
    """A TCP port nothing listens on right now (also: an upstream that refuses connections)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_database_url() -> str:
    """DATABASE_URL of the database this test process uses (call after django_db_setup:
    pytest-django has then switched the connection to the test database)."""
    from django.db import connection

    sd = connection.settings_dict
    if sd["ENGINE"] == "django.db.backends.sqlite3":
        return "sqlite:///" + str(Path(sd["NAME"]).resolve())
    # Not SQLite: the settings came from DATABASE_URL. Keep its scheme, credentials, host and
    # options; swap in the test database's name.
    parts = urlsplit(os.environ["DATABASE_URL"])
    return urlunsplit(parts._replace(path="/" + sd["NAME"]))




def encryption_keys() -> str:
    """The GATEWAY_ENCRYPTION_KEY value that decrypts what this process encrypts."""
    from django.conf import settings

    return ",".join(k for k in settings.GATEWAY["ENCRYPTION_KEYS"] if k)


class GatewayServer:
    def __init__(self, *, database_url: str, workdir: Path, env: dict[str, str] | None = None,
                 name: str = "gateway", graceful_seconds: float = 5, args: tuple[str, ...] = ()) -> None:
        self.graceful_seconds = graceful_seconds
        self.args = args  # more uvicorn options, e.g. ("--workers", "2")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.workdir = workdir
        self.log_path = workdir / f"{name}-{self.port}.log"
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "gateway.settings",
            "DATABASE_URL": database_url,
            "GATEWAY_MASTER_KEY": MASTER_KEY,
            "GATEWAY_ENCRYPTION_KEY": encryption_keys(),
            "GATEWAY_ROUTE_REFRESH_SECONDS": "0.2",
            "GATEWAY_LOG_FLUSH_SECONDS": "0.05",
            "GATEWAY_MAX_BODY_BYTES": str(MAX_BODY_BYTES),
            # Never replay (or write to) a developer's spool file into the test database.
            "GATEWAY_LOG_SPOOL_FILE": str(workdir / f"{name}-{self.port}-spool.jsonl"),
            "GATEWAY_LOG_JOURNAL_DIR": str(workdir / f"{name}-{self.port}-journal"),
            "PROMETHEUS_MULTIPROC_DIR": str(workdir / f"{name}-{self.port}-metrics"),  # its own, like a server's
            "PYTHONUNBUFFERED": "1",
            # In-process limits and breaker state: shared Redis state keyed by deployment ids
            # would leak between test runs (every new test database numbers rows from 1).
            "REDIS_URL": "",
            **(env or {}),
        }
        from django.conf import settings

        self.env.setdefault("SECRET_KEY", settings.SECRET_KEY)
        self.proc: subprocess.Popen | None = None
        self._log = None

    def start(self, timeout: float = 30.0) -> "GatewayServer":
        self._log = open(self.log_path, "ab")
        cmd = [sys.executable, "-m", "uvicorn", "gateway.asgi:application", "--host", "127.0.0.1",
               "--port", str(self.port), "--loop", "uvloop", "--http", "gateway.listener:BoundedHttpToolsProtocol",
               "--lifespan", "on",
               "--timeout-graceful-shutdown", str(self.graceful_seconds), *self.args]
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=self.env, stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gateway server exited with {self.proc.returncode}:\n{self.log_since(0)}")
            try:
                if httpx.get(self.url + "/healthz", timeout=1.0).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"gateway server did not answer /healthz in {timeout}s:\n{self.log_since(0)}")
            time.sleep(0.05)

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM (graceful: lifespan shutdown flushes the log writer), then wait; kill if stuck."""
        proc, self.proc = self.proc, None
        code = None
        if proc is not None:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    code = proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(5)
                    raise RuntimeError(f"gateway server ignored SIGTERM for {timeout}s") from None
            else:
                code = proc.returncode
        if self._log is not None:
            self._log.close()
            self._log = None
        return code

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_offset(self) -> int:
        return self.log_path.stat().st_size if self.log_path.exists() else 0

    def log_since(self, offset: int, limit: int = 20_000) -> str:
        if not self.log_path.exists():
            return ""
        with open(self.log_path, "rb") as fh:
            fh.seek(offset)
            text = fh.read().decode("utf-8", "replace")
        return text if len(text) <= limit else "…" + text[-limit:]


# ------------------------------------------------------------------------------------ client-side helpers


@dataclass
class SseEvent:
    event: str | None
    data: str

    def json(self):
        return json.loads(self.data)


def parse_sse(text: str) -> list[SseEvent]:
    """Split an SSE body into events (asserting LF framing: every frame ends with a blank line)."""
    assert text.endswith("\n\n"), f"SSE body does not end with a blank line: {text[-80:]!r}"
    events = []
    for block in text.split("\n\n")[:-1]:
        if not block or block.startswith(":"):
            continue
        event, data = None, []
        for line in block.split("\n"):
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].lstrip(" "))
        events.append(SseEvent(event, "\n".join(data)))
    return events


def assert_openai_error(response: httpx.Response, status: int, *, code: str | None = None,
                        param: str | None = None) -> dict:
    """The gateway's own errors: `{"error": {"message", "type", "param", "code"}}` with `status`."""
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert set(error) == {"message", "type", "param", "code"}, error
    assert isinstance(error["message"], str) and error["message"].strip(), error
    assert isinstance(error["type"], str) and error["type"], error
    if code is not None:
        assert error["code"] == code, error
    if param is not None:
        assert error["param"] == param, error
    return error


def unique(prefix: str) -> str:
    """A fresh name: the server caches routes, so every test uses its own model names."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def bearer(key) -> dict[str, str]:
    """Authorization header for a ClientKey (conftest) or a raw key string."""
    return {"Authorization": f"Bearer {getattr(key, 'secret', key)}"}


def eventually(check, timeout: float = 3.0, interval: float = 0.05, message: str = ""):
    """Call `check()` until it returns something truthy (returned) or `timeout` passes."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(message or f"condition not met within {timeout}s (last: {result!r})")
        time.sleep(interval)


def start_fake(cls=None):
    """A fake Azure upstream that knows both deployment names the routes use."""
    from tests.fakes.upstream import FakeUpstream

    return (cls or FakeUpstream)("azure", api_key=UPSTREAM_KEY, deployments=(UPSTREAM_MODEL, CANARY_MODEL)).start()


def resetting(fake):
    """Fixture body: a session-long fake, reset before and after each test (no switch leaks)."""
    fake.reset()
    yield fake
    fake.reset()
