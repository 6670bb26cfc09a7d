"""Thin async handlers for /v1/*: read the request, authenticate, hand over, render errors.

They take an `ApiRequest` and return a `Response` (routing/http.py); `routing.asgi_api`
routes to them. Every outcome, including client disconnects and internal bugs, is one
OpenAI-shaped answer and one log row.
"""

import asyncio
import logging

import orjson

from routing.api import authentication
from routing.api.parsing import forwarded_headers, forwarded_query, group_for, json_body
from routing.config import route_table
from routing.errors import GatewayError
from routing.forwarding import model_call as forward
from routing.forwarding import stored
from routing.forwarding.call import Call
from routing.http import ApiRequest, Response

log = logging.getLogger(__name__)


async def handle(request: ApiRequest, endpoint: str, work) -> Response:
    call = Call(request.method, endpoint, request.path)
    try:
        snap = await route_table.table.get()
        key = await authentication.authenticate(request.META, snap)
        call.record.key_id, call.record.key_name = key.id, key.name
        return await work(call, key, snap)
    except GatewayError as exc:
        return call.fail(exc)
    except asyncio.CancelledError:  # the client went away before the response started
        rec = call.record
        rec.client_disconnected, rec.error_type = True, "client_disconnected"
        rec.error_message = "client disconnected before the response started"
        call.done(499)
        raise
    except Exception:
        log.exception("internal error on %s %s (%s)", request.method, request.path, call.request_id)
        return call.fail(GatewayError(500, "The gateway failed to handle this request; it has been logged "
                                      f"as {call.request_id}.", type="server_error", code="internal_error"))


async def model_call(request: ApiRequest, endpoint: str, op_path: str) -> Response:
    """POST /v1/responses, /v1/chat/completions, /v1/responses/compact, /v1/responses/input_tokens."""
    async def work(call, key, snap):
        raw, body = json_body(request)
        group = await group_for(body, key, snap)
        call.record.group_name = group.name
        return await forward.model_call(call, key, group, snap, raw, body, op_path=op_path, endpoint=endpoint,
                                        query=forwarded_query(request), forwarded=forwarded_headers(request.META))
    return await handle(request, endpoint, work)


async def stored_response(request: ApiRequest, endpoint: str, response_id: str, suffix: str) -> Response:
    """GET/DELETE /v1/responses/{id}, POST …/cancel, GET …/input_items."""
    async def work(call, key, snap):
        return await stored.response_call(call, key, snap, response_id=response_id, method=request.method,
                                             suffix=suffix, query=forwarded_query(request), forwarded=forwarded_headers(request.META),
                                             raw=None)
    return await handle(request, endpoint, work)


async def models(request: ApiRequest) -> Response:
    """GET /v1/models: the groups this key may use."""
    async def work(call, key, snap):
        data = [{"id": g.name, "object": "model", "created": g.created, "owned_by": "gateway"}
                for g in snap.groups.values() if key.may_use(g.name)]
        call.done(200)
        return call.headers(Response(orjson.dumps({"object": "list", "data": data})))
    return await handle(request, "models", work)


def refuse(request: ApiRequest, endpoint: str, error: GatewayError) -> Response:
    """Answer before any handler ran (unknown path, wrong method, body too large)."""
    return Call(request.method, endpoint, request.path).fail(error)
