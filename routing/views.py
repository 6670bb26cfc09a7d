"""Thin async views: read the request, authenticate, hand over, render errors.

These are Django async class-based views rather than DRF/adrf APIViews: adrf's
dispatch runs DRF's `initial()` through `sync_to_async` (a hop through one shared
thread on every request) and DRF's content negotiation must be disabled here anyway
(it answers 406 to `Accept: text/event-stream`). Nothing else of DRF would act on
these bodies, which are forwarded as bytes. See README "Design decisions".
"""

import asyncio
import logging

import orjson
from django.http import HttpResponse
from django.views import View

from . import auth, errors, forward, lifecycle, routes
from .calls import Call
from .errors import GatewayError
from .requests import forwarded_query, group_for, json_body

log = logging.getLogger(__name__)


class GatewayView(View):
    endpoint = ""

    def http_method_not_allowed(self, request, *args, **kwargs):
        async def not_allowed():
            return Call(request.method, self.endpoint, request.path).fail(
                GatewayError(405, f"Method {request.method} is not allowed on {request.path}.",
                             code="method_not_allowed"))
        return not_allowed()

    async def handle(self, request, work):
        endpoint = "responses.delete" if request.method == "DELETE" and self.endpoint == "responses.get" else self.endpoint
        call = Call(request.method, endpoint, request.path)
        try:
            snap = await routes.table.get()
            key = await auth.authenticate(request.META, snap)
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


class ModelCallView(GatewayView):
    """POST /v1/responses, /v1/chat/completions, /v1/responses/compact, /v1/responses/input_tokens."""

    op_path = ""

    async def post(self, request):
        async def work(call, key, snap):
            raw, body = json_body(request)
            group = await group_for(body, key, snap)
            call.record.group_name = group.name
            return await forward.model_call(call, key, group, snap, raw, body, op_path=self.op_path,
                                            endpoint=self.endpoint, query=forwarded_query(request), meta=request.META)
        return await self.handle(request, work)


class StoredResponseView(GatewayView):
    """GET/DELETE /v1/responses/{id}, POST …/cancel, GET …/input_items."""

    suffix = ""

    async def _call(self, request, response_id: str):
        async def work(call, key, snap):
            return await lifecycle.response_call(call, key, snap, response_id=response_id, method=request.method,
                                                 suffix=self.suffix, query=forwarded_query(request),
                                                 meta=request.META, raw=None)
        return await self.handle(request, work)

    async def get(self, request, response_id: str):
        return await self._call(request, response_id)

    async def delete(self, request, response_id: str):
        return await self._call(request, response_id)

    async def post(self, request, response_id: str):
        return await self._call(request, response_id)


class ModelsView(GatewayView):
    endpoint = "models"

    async def get(self, request):
        async def work(call, key, snap):
            data = [{"id": g.name, "object": "model", "created": g.created, "owned_by": "gateway"}
                    for g in snap.groups.values() if key.may_use(g.name)]
            call.done(200)
            return call.headers(HttpResponse(orjson.dumps({"object": "list", "data": data}),
                                             content_type="application/json"))
        return await self.handle(request, work)


class NotFoundView(GatewayView):
    endpoint = "unknown"

    async def get(self, request, rest=""):
        return Call(request.method, self.endpoint, request.path).fail(
            GatewayError(404, f"Unknown endpoint {request.method} {request.path}.", code="unknown_endpoint"))

    post = put = patch = delete = get
