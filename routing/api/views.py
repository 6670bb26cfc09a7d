"""The /v1 endpoints: thin DRF views that read the request and hand over to `forwarding`.

Each returns a Django response: an `HttpResponse` with the upstream's bytes and a
Content-Length for JSON, a `StreamingHttpResponse` (forwarding.response.SseResponse)
relaying the upstream's events as they arrive for streams. Errors are raised and become
OpenAI-shaped answers in `base.gateway_exception_handler`; every request is logged once.
"""

import orjson
from rest_framework.permissions import AllowAny

from routing import errors
from routing.api import parsing
from routing.api.base import GatewayView
from routing.api.permissions import InGroup
from routing.bridge import is_bridged_id
from routing.forwarding import model_call, stored
from routing.forwarding.call import json_response


class ModelCallView(GatewayView):
    """POST /v1/responses, /v1/chat/completions, /v1/responses/compact, /v1/responses/input_tokens."""

    http_method_names = ["post"]
    op_path = ""  # the path the upstream call takes, relative to the API root

    async def post(self, request):
        raw, body = parsing.json_body(request)
        model = parsing.model_name(body)
        group = await parsing.group_for(model, request.routes)
        self.check_object_permissions(request, InGroup(group.name, errors.model_not_found(model)))
        self.call.record.group_name = group.name
        return await model_call.model_call(
            self.call, request.user, group, request.routes, raw, body, op_path=self.op_path, endpoint=self.endpoint,
            query=parsing.forwarded_query(request.META.get("QUERY_STRING", "")),
            forwarded=parsing.forwarded_headers(request.META))


class StoredResponseView(GatewayView):
    """GET/DELETE /v1/responses/{id}, POST /v1/responses/{id}/cancel, GET /v1/responses/{id}/input_items:
    sent to the deployment that created the response."""

    http_method_names = ["get", "delete"]
    suffix = ""  # "", "/cancel" or "/input_items"

    def endpoint_for(self, method: str) -> str:
        return self.endpoint if self.suffix else f"responses.{method.lower()}"

    async def get(self, request, response_id: str):
        return await self._forward(request, response_id)

    async def post(self, request, response_id: str):
        return await self._forward(request, response_id)

    async def delete(self, request, response_id: str):
        return await self._forward(request, response_id)

    async def _forward(self, request, response_id: str):
        response_id = parsing.response_id(response_id)
        query = parsing.forwarded_query(request.META.get("QUERY_STRING", ""))
        stream = request.method == "GET" and not self.suffix and parsing.query_flag(query, "stream")
        if is_bridged_id(response_id):  # answered through the Chat bridge: the gateway holds it
            row = await stored.bridged_response(response_id)
            self.check_object_permissions(request, InGroup(row.group_name, errors.response_not_found(response_id)))
            return await stored.bridged_call(self.call, row, method=request.method, suffix=self.suffix, query=query,
                                             stream=stream)
        dep = await stored.deployment_for(response_id, request.user, request.routes)
        self.check_object_permissions(request, InGroup(dep.group_name, errors.response_not_found(response_id)))
        return await stored.response_call(
            self.call, dep, request.routes, response_id=response_id, method=request.method, suffix=self.suffix,
            query=query, stream=stream, forwarded=parsing.forwarded_headers(request.META))


class ModelsView(GatewayView):
    """GET /v1/models: the groups this key may use."""

    http_method_names = ["get"]
    endpoint = "models"

    async def get(self, request):
        key = request.user
        data = [{"id": g.name, "object": "model", "created": g.created, "owned_by": "gateway"}
                for g in request.routes.groups.values() if key.may_use(g.name)]
        self.call.done(200)
        return self.call.headers(json_response(orjson.dumps({"object": "list", "data": data}), 200))


class UnknownEndpointView(GatewayView):
    """Anything else under /v1/: a 404 in the OpenAI shape (logged), key or no key."""

    authentication_classes = []
    permission_classes = [AllowAny]
    http_method_names = ["get", "post", "put", "patch", "delete", "head", "options", "trace"]

    async def prepare(self, request) -> None:
        pass

    async def _unknown(self, request, *args, **kwargs):
        raise errors.unknown_endpoint(request.method, request.path)

    get = post = put = patch = delete = head = options = trace = _unknown
