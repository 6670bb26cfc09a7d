"""ASGI entry point.

`/v1/*` (the API hot path) goes to `routing.api.handler.ApiHandler`, Django's ASGI handler
without middleware or per-request thread hops (why: that module's docstring), and so do
`/healthz`, `/readyz` and `/metrics` (another instance, so probes never wait behind the admin);
everything else (the admin) to Django's standard handler with its middleware. All resolve
through gateway/urls.py.

The lifespan protocol flushes the request-log writer and closes upstream pools on
shutdown, so rows queued at SIGTERM still reach the database. It also starts the observer
(metrics and per-request log lines, routing/monitoring/observer.py) and stops it last.
"""

import logging
import os
import sys

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gateway.settings")
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):  # before anything imports prometheus_client, which reads it once
    from routing.monitoring.multiproc import ENV, default_dir

    os.environ[ENV] = default_dir()

from django.conf import settings  # noqa: E402
from django.core.asgi import get_asgi_application  # noqa: E402

admin_app = get_asgi_application()  # also runs django.setup()

from django.urls import Resolver404, get_resolver  # noqa: E402

from routing import collector, dbthread  # noqa: E402
from routing.api.handler import ApiHandler  # noqa: E402
from routing.audit.logwriter import writer  # noqa: E402
from routing.config import route_table  # noqa: E402
from routing.errors import error_body  # noqa: E402
from routing.monitoring.observer import observer  # noqa: E402
from routing.upstream import client as upstream_client  # noqa: E402
from routing.upstream import relay  # noqa: E402

log = logging.getLogger("gateway")
api_app = ApiHandler()
ops_app = ApiHandler()  # /healthz, /readyz, /metrics
OPS_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


def _warm_up() -> None:
    """Build what the first request would build lazily (the URL resolver's tables, the upstream
    client), so it lives with the rest of start-up, frozen out of the collector's reach."""
    resolver = get_resolver()
    for path in ("/v1/responses", "/v1/models", "/admin/"):
        try:
            resolver.resolve(path)
        except Resolver404:
            pass
    upstream_client.client()


async def lifespan(receive, send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            dbthread.start()
            await writer.start()  # adopt journals of ended processes (crash, kill -9) and write them
            observer.start(in_flight=lambda: getattr(api_app, "in_flight", 0))
            try:
                await route_table.table.get()
            except Exception:  # the database may come up later; requests retry the load
                log.exception("initial route load failed")
            _warm_up()
            collector.start()  # freezes what start-up loaded, then collects on a clock (routing/collector.py)
            # The event loop shares the GIL with the database threads. A thread holding the GIL
            # keeps it for up to the switch interval (5 ms by default) while the loop waits; with
            # the log writer at idle CPU priority (dbthread.run_background), a descheduled holder
            # would otherwise stall the loop that long.
            sys.setswitchinterval(settings.GATEWAY["GIL_SWITCH_INTERVAL"])
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            collector.stop()
            await route_table.table.stop()
            await writer.close()
            observer.stop()  # after the writer: the last requests' metrics and lines
            await relay.close_clients()
            await send({"type": "lifespan.shutdown.complete"})
            return


async def reject_websocket(scope, receive, send) -> None:
    """Clients that try a WebSocket first (Codex) get 426 at once and fall back to HTTP."""
    await receive()  # websocket.connect
    body = error_body("WebSocket is not supported on this gateway; use HTTP POST with SSE streaming.",
                      type="invalid_request_error", code="websocket_not_supported")
    if "websocket.http.response" in scope.get("extensions", {}):
        await send({"type": "websocket.http.response.start", "status": 426,
                    "headers": [(b"content-type", b"application/json"), (b"upgrade", b"HTTP/1.1")]})
        await send({"type": "websocket.http.response.body", "body": body})
    else:
        await send({"type": "websocket.close", "code": 1003})


async def _admin_with_bounded_body(scope, receive, send) -> None:
    """Django's handler reads a whole body (to a temporary file) before any view can refuse it,
    and the admin's login page takes POSTs from anyone: a body over the admin's form limit is
    refused here, from its Content-Length, or cut off once that much has arrived."""
    limit = 2 * settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    for name, value in scope["headers"]:
        if name == b"content-length" and value.isdigit() and int(value) > limit:
            body = error_body(f"Request body is larger than the {limit} byte limit.", type="invalid_request_error",
                              code="request_too_large")
            await send({"type": "http.response.start", "status": 413,
                        "headers": [(b"content-type", b"application/json"), (b"connection", b"close"),
                                    (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})
            return
    received = 0

    async def bounded_receive():
        nonlocal received
        message = await receive()
        received += len(message.get("body", b""))
        return {"type": "http.disconnect"} if received > limit else message

    await admin_app(scope, bounded_receive, send)


async def application(scope, receive, send):
    kind = scope["type"]
    if kind == "http":
        path = scope["path"]
        if path.startswith("/v1/") or path == "/v1":
            return await api_app(scope, receive, send)
        if path in OPS_PATHS:
            return await ops_app(scope, receive, send)
        return await _admin_with_bounded_body(scope, receive, send)
    if kind == "lifespan":
        return await lifespan(receive, send)
    if kind == "websocket":
        return await reject_websocket(scope, receive, send)
