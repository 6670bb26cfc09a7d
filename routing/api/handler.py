"""Django's ASGI handler for /v1/*, made lean with Django's own extension points.

`ApiHandler` is an `ASGIHandler` subclass: requests are Django `ASGIRequest`s, resolved by
the URLconf (gateway/urls.py) to the DRF views in routing/api/views.py, and responses
(`HttpResponse`, `StreamingHttpResponse`) are sent by Django's `send_response`. The admin
keeps `get_asgi_application()` and its middleware (gateway/asgi.py routes by path); another
instance serves /healthz, /readyz and /metrics (routing/monitoring/views.py).

What it does differently from the stock handler, each for a cost measured under load
(numbers in the README, "Performance"):
- **No middleware.** Each classic Django middleware runs its hooks through
  `sync_to_async`, a thread hop per hook per request. The API needs none of them: no
  session, CSRF, auth middleware or messages; the views authenticate gateway keys and
  render their own errors.
- **No thread hop per request.** The stock handler sends `request_started` with
  `asend()` (its sync receivers in a thread) and closes every response through
  `sync_to_async(response.close)`, which also sends `request_finished` — in a per-request
  `ThreadSensitiveContext`, i.e. a new thread per request. API requests send neither
  signal: their only receivers (close_old_connections, reset_queries) look after the
  database connection of the thread serving the request, and the event loop never opens
  one (database work runs on routing.dbthread's pool, which closes stale connections
  itself). Sent synchronously on the loop they still cost ~6% of the process at load
  (asgiref's context-local lookups per connection alias), for nothing. A relayed
  stream's cleanup runs on the loop instead of `response.close()`. `get_response_async`
  skips the `log_response` thread hop on 4xx/5xx: every API request has its own log row.
- **Bounded bodies.** A body over GATEWAY_MAX_BODY_BYTES is refused with 413 as soon as
  its Content-Length (or the bytes received) say so, without buffering the rest; bodies
  are kept in memory, not in a spooled temporary file.
- **Disconnects.** A client that goes away cancels the view or the stream (the upstream
  call is closed, the log row says `client_disconnected`); one that goes away during the
  upload still gets its log row.
"""

import asyncio
import io

from django.conf import settings
from django.core.handlers.asgi import ASGIHandler
from django.core.handlers.exception import convert_exception_to_response

from routing import errors
from routing.forwarding.call import Call
from routing.forwarding.response import SseResponse

MAX_LOGGED_PATH = 2000


class BodyTooLarge(Exception):
    pass


class ClientGone(Exception):
    pass


class ApiHandler(ASGIHandler):
    in_flight = 0  # requests being handled now (the in-flight gauge, routing/monitoring/observer.py)

    def load_middleware(self, is_async: bool = False) -> None:
        """The API's middleware list is empty: the chain is the view call itself."""
        self._view_middleware, self._template_response_middleware, self._exception_middleware = [], [], []
        self._middleware_chain = convert_exception_to_response(self._get_response_async)

    async def get_response_async(self, request):
        return await self._middleware_chain(request)

    async def handle(self, scope, receive, send) -> None:
        self.in_flight += 1
        try:
            try:
                body = await self._read_body(scope, receive)
            except BodyTooLarge:
                limit = settings.GATEWAY["MAX_BODY_BYTES"]
                return await self._refuse(scope, send, errors.too_large(limit))
            except ClientGone:
                call = _call(scope)
                call.record.error_message = "client disconnected while sending the request body"
                return call.client_left()
            request, error_response = self.create_request(scope, io.BytesIO(body))
            if request is None:
                error_response.close()
                return await self._refuse(scope, send, errors.bad_body("The request could not be decoded."))
            await self._serve(request, receive, send)
        finally:
            self.in_flight -= 1

    async def _read_body(self, scope, receive) -> bytes:
        limit = settings.GATEWAY["MAX_BODY_BYTES"]
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit() and int(value) > limit:
                raise BodyTooLarge
        parts, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise ClientGone
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise BodyTooLarge
            parts.append(chunk)
            if not message.get("more_body"):
                return parts[0] if len(parts) == 1 else b"".join(parts)

    async def _refuse(self, scope, send, error: errors.GatewayError) -> None:
        response = _call(scope).fail(error)
        response["Connection"] = "close"  # the rest of an oversized body is not read
        await self.send_response(response, send)

    async def _serve(self, request, receive, send) -> None:
        """Run the view and send its answer; a client disconnect cancels both."""
        task = asyncio.current_task()
        state = {"gone": False, "response": None}

        async def watch() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            state["gone"] = True
            if isinstance(state["response"], SseResponse):
                state["response"].relay.client_gone = True
            task.cancel()

        watcher = asyncio.get_running_loop().create_task(watch())
        try:
            response = state["response"] = await self.run_get_response(request)
            try:
                await self.send_response(response, send)
            finally:
                if isinstance(response, SseResponse):
                    response.relay.abandon()  # cleans up a stream that never started
        except asyncio.CancelledError:
            if not state["gone"]:
                raise
            task.uncancel()
        finally:
            watcher.cancel()


def _call(scope) -> Call:
    """A Call for a request refused before any view ran (method and path clipped for the log)."""
    path = scope.get("path", "")[:MAX_LOGGED_PATH]
    return Call(scope.get("method", "")[:16], "unknown", path)
