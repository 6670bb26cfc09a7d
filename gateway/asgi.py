"""ASGI entry point.

Two Django handlers share one URLconf: `/v1/*` (the API hot path) goes to a handler
with no middleware, everything else (admin, healthz) to the standard one. Under ASGI
each classic Django middleware runs through `sync_to_async`, a thread hop per
middleware per request, and none of them (sessions, CSRF, messages, clickjacking)
means anything for a bearer-key JSON API.

The lifespan protocol flushes the request-log writer and closes upstream pools on
shutdown, so rows queued at SIGTERM still reach the database.
"""

import logging
import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gateway.settings")

from django.core.asgi import get_asgi_application  # noqa: E402

admin_app = get_asgi_application()  # also runs django.setup()

from django.core.handlers.asgi import ASGIHandler  # noqa: E402
from django.core.handlers.exception import convert_exception_to_response  # noqa: E402

from routing import relay, routes  # noqa: E402
from routing.errors import error_body  # noqa: E402
from routing.logwriter import writer  # noqa: E402

log = logging.getLogger("gateway")


class ApiHandler(ASGIHandler):
    """Django's ASGI handler without the middleware chain."""

    def load_middleware(self, is_async: bool = False) -> None:
        self._view_middleware = []
        self._template_response_middleware = []
        self._exception_middleware = []
        self._middleware_chain = convert_exception_to_response(
            self._get_response_async if is_async else self._get_response
        )


api_app = ApiHandler()


async def lifespan(receive, send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            try:
                await routes.table.get()
            except Exception:  # the database may come up later; requests retry the load
                log.exception("initial route load failed")
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await routes.table.stop()
            await writer.close()
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


async def application(scope, receive, send):
    kind = scope["type"]
    if kind == "http":
        if scope["path"].startswith("/v1/"):
            return await api_app(scope, receive, send)
        return await admin_app(scope, receive, send)
    if kind == "lifespan":
        return await lifespan(receive, send)
    if kind == "websocket":
        return await reject_websocket(scope, receive, send)
