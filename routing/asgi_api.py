"""The ASGI app for /v1/*: a small router in front of `routing.views`.

Why not Django's request handler here: under ASGI it runs `request_started` /
`request_finished` receivers (close_old_connections) through `sync_to_async` inside a
per-request ThreadSensitiveContext, which starts a thread per request, and builds a
full HttpRequest (headers into META, a spooled body file) that a byte-forwarding proxy
does not need. Profiled at 16 concurrent clients, that machinery was the largest cost
of a request. The hot path touches no database, so none of it protects anything. The
admin keeps Django's full stack (gateway/asgi.py).

What this does: read the body (413 past GATEWAY_MAX_BODY_BYTES without buffering the
rest), route, run the handler while watching for `http.disconnect` (a client that goes
away cancels the handler: the upstream call is closed and the log row says so), send
the status, headers and body (streamed chunk by chunk when it is a stream).
"""

import asyncio
import re

from django.conf import settings

from routing import errors
from routing.api import views
from routing.errors import GatewayError
from routing.http import ApiRequest, Response

_EXACT = {
    "/v1/responses": ("responses", "responses"),
    "/v1/chat/completions": ("chat", "chat/completions"),
    "/v1/responses/compact": ("compact", "responses/compact"),
    "/v1/responses/input_tokens": ("responses.input_tokens", "responses/input_tokens"),
}
_STORED = re.compile(r"^/v1/responses/([^/]+)(/cancel|/input_items)?/?$")
_STORED_METHODS = {"": ("GET", "DELETE"), "/cancel": ("POST",), "/input_items": ("GET",)}
_STORED_ENDPOINT = {("", "GET"): "responses.get", ("", "DELETE"): "responses.delete",
                    ("/cancel", "POST"): "responses.cancel", ("/input_items", "GET"): "responses.input_items"}


def _meta(scope) -> dict[str, str]:
    meta = {"QUERY_STRING": scope.get("query_string", b"").decode("latin-1")}
    for name, value in scope["headers"]:
        key = name.decode("latin-1").upper().replace("-", "_")
        if key not in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            key = "HTTP_" + key
        meta[key] = value.decode("latin-1")
    client = scope.get("client")
    if client:
        meta["REMOTE_ADDR"] = client[0]
    return meta


async def _read_body(receive, limit: int) -> bytes | None:
    """The whole body, or None when it is larger than `limit`."""
    message = await receive()
    body = message.get("body", b"")
    if not message.get("more_body"):
        return body if len(body) <= limit else None
    parts, size = [body], len(body)
    while message.get("more_body"):
        message = await receive()
        if message["type"] == "http.disconnect":
            raise asyncio.CancelledError
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        parts.append(chunk)
    return b"".join(parts)


def _route(request: ApiRequest):
    """The coroutine that answers the request (handlers log and render their own errors)."""
    path, method = request.path, request.method
    exact = _EXACT.get(path)
    if exact is not None:
        if method != "POST":
            return None, _not_allowed(request, exact[0])
        return views.model_call(request, *exact), None
    if path == "/v1/models":
        if method != "GET":
            return None, _not_allowed(request, "models")
        return views.models(request), None
    match = _STORED.match(path)
    if match:
        response_id, suffix = match.group(1), match.group(2) or ""
        if method not in _STORED_METHODS[suffix]:
            return None, _not_allowed(request, "responses.get")
        return views.stored_response(request, _STORED_ENDPOINT[(suffix, method)], response_id, suffix), None
    return None, views.refuse(request, "unknown", GatewayError(
        404, f"Unknown endpoint {method} {path}.", code="unknown_endpoint"))


def _not_allowed(request: ApiRequest, endpoint: str) -> Response:
    return views.refuse(request, endpoint, GatewayError(
        405, f"Method {request.method} is not allowed on {request.path}.", code="method_not_allowed"))


async def _send(send, response: Response) -> None:
    await send({"type": "http.response.start", "status": response.status_code, "headers": response.raw_headers()})
    if response.stream is None:
        await send({"type": "http.response.body", "body": response.content})
        return
    async for chunk in response.stream:
        await send({"type": "http.response.body", "body": chunk, "more_body": True})
    await send({"type": "http.response.body", "body": b""})


async def app(scope, receive, send) -> None:
    meta = _meta(scope)
    limit = settings.GATEWAY["MAX_BODY_BYTES"]
    declared = meta.get("CONTENT_LENGTH", "")
    request = ApiRequest(scope["method"], scope["path"], meta, b"")
    if declared.isdigit() and int(declared) > limit:
        return await _send(send, views.refuse(request, "unknown", errors.too_large(limit)))
    body = await _read_body(receive, limit)
    if body is None:
        return await _send(send, views.refuse(request, "unknown", errors.too_large(limit)))
    request.body = body
    handler, immediate = _route(request)
    if immediate is not None:
        return await _send(send, immediate)
    await _serve(handler, receive, send)


async def _serve(handler, receive, send) -> None:
    """Run the handler and send its answer; a client disconnect cancels both."""
    task = asyncio.current_task()
    gone = False

    async def watch() -> None:
        nonlocal gone
        while (await receive())["type"] != "http.disconnect":
            pass
        gone = True
        task.cancel()

    watcher = asyncio.get_running_loop().create_task(watch())
    try:
        response = await handler
        try:
            await _send(send, response)
        finally:
            if response.abandon is not None:
                await response.abandon()  # a stream never started has no `finally` of its own to run
            if response.stream is not None:
                await response.stream.aclose()
    except asyncio.CancelledError:
        if not gone:
            raise
        task.uncancel()
    finally:
        watcher.cancel()
