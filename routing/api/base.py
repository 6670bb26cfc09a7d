"""The DRF base view of /v1/*: authentication, permissions, negotiation and errors the
OpenAI way, every outcome one log row.

`GatewayView` is adrf's async `APIView` with DRF's own extension points filled in:
- `GatewayKeyAuthentication` (client keys from the in-memory snapshot) and
  `HasGatewayKey` / `GroupAccess` permissions;
- `NeverRefuse` content negotiation: streaming is decided by the body's `"stream"`, never
  by `Accept` (the openai SDK sends `application/json` when it streams, Codex sends
  `text/event-stream`), so no request is ever answered 406;
- no parsers: bodies are read as bytes and parsed once with orjson (the client's bytes
  are forwarded untouched when the policy changes nothing);
- `gateway_exception_handler`: every error, DRF's or ours, becomes the OpenAI shape
  `{"error": {"message", "type", "param", "code"}}` with its status, and is logged;
  nothing unexpected ever reaches the client as a traceback or a 500 page.

One change to adrf's `async_dispatch`: DRF's `initial()` (negotiation, authentication,
permissions, throttles) runs on the event loop instead of through `sync_to_async` — a
thread hop per request that protected nothing, since everything it does here is an
in-memory lookup. The one awaitable step, getting a route snapshot fresh enough for the
key presented, runs just before it (`authentication.prepare`). DRF instantiates every
authenticator, permission, parser and renderer class on each request (permissions twice);
ours hold no state, so each view class keeps one set (`get_*` overrides).
"""

import asyncio
import functools
import logging

from adrf.views import APIView
from django.http import Http404
from rest_framework import exceptions
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.renderers import JSONRenderer

from routing import errors
from routing.api import authentication
from routing.api.authentication import GatewayKeyAuthentication
from routing.api.permissions import GroupAccess, HasGatewayKey
from routing.forwarding.call import Call

log = logging.getLogger(__name__)


class NeverRefuse(BaseContentNegotiation):
    def select_parser(self, request, parsers):
        return parsers[0] if parsers else None

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


def _gateway_error(exc: Exception, view) -> errors.GatewayError:
    if isinstance(exc, errors.GatewayError):
        return exc
    if isinstance(exc, exceptions.NotAuthenticated):
        return errors.unauthorized("You didn't provide an API key. Send it as 'Authorization: Bearer <key>' or in "
                                   "an 'api-key' header.")
    if isinstance(exc, exceptions.AuthenticationFailed):
        return errors.unauthorized(str(exc.detail))
    if isinstance(exc, exceptions.MethodNotAllowed):
        return errors.GatewayError(405, f"Method {view.request.method} is not allowed on {view.request.path}.",
                                   code="method_not_allowed")
    if isinstance(exc, (exceptions.NotFound, Http404)):
        return errors.unknown_endpoint(view.request.method, view.request.path)
    if isinstance(exc, exceptions.PermissionDenied):
        return errors.GatewayError(403, str(exc.detail), type="permission_error", code="permission_denied")
    if isinstance(exc, exceptions.Throttled):
        return errors.rate_limited(str(exc.detail), int(exc.wait or 1))
    if isinstance(exc, exceptions.APIException):
        return errors.GatewayError(exc.status_code, str(exc.detail), code=str(exc.default_code))
    log.error("internal error on %s %s (%s)", view.request.method, view.request.path, view.call.request_id,
              exc_info=exc)
    return errors.GatewayError(500, "The gateway failed to handle this request; it has been logged as "
                               f"{view.call.request_id}.", type="server_error", code="internal_error")


def gateway_exception_handler(exc: Exception, context: dict):
    view = context["view"]
    return view.call.fail(_gateway_error(exc, view))


@functools.cache
def _instances(view_class: type, attribute: str) -> list:
    return [klass() for klass in getattr(view_class, attribute)]


class GatewayView(APIView):
    authentication_classes = [GatewayKeyAuthentication]
    permission_classes = [HasGatewayKey, GroupAccess]
    content_negotiation_class = NeverRefuse
    parser_classes = []
    renderer_classes = [JSONRenderer]
    throttle_classes = []
    endpoint = "unknown"  # the log row's name for what was called (set per route with as_view())
    view_is_async = True  # every handler is async; Django would otherwise recompute this on every request

    @property
    def default_response_headers(self) -> dict:
        return {}  # no `Allow` / `Vary: Accept` on a proxy's answers

    def endpoint_for(self, method: str) -> str:
        return self.endpoint

    def get_exception_handler(self):
        return gateway_exception_handler

    def get_authenticators(self):
        return _instances(type(self), "authentication_classes")

    def get_permissions(self):
        return _instances(type(self), "permission_classes")

    def get_parsers(self):
        return _instances(type(self), "parser_classes")

    def get_renderers(self):
        return _instances(type(self), "renderer_classes")

    def get_throttles(self):
        return _instances(type(self), "throttle_classes")

    async def prepare(self, request) -> None:
        """Async work before DRF's synchronous `initial()`: the route snapshot for this request."""
        request.routes = await authentication.prepare(request.META)

    async def async_dispatch(self, request, *args, **kwargs):
        self.args, self.kwargs = args, kwargs
        self.call = Call(request.method, self.endpoint_for(request.method), request.path)
        request = self.request = self.initialize_request(request, *args, **kwargs)
        self.headers = self.default_response_headers
        try:
            await self.prepare(request)
            self.initial(request, *args, **kwargs)  # in-memory only: on the loop, no thread hop
            key = request.user
            if key is not None:
                self.call.record.key_id, self.call.record.key_name = key.id, key.name
            method = request.method.lower()
            handler = getattr(self, method, None) if method in self.http_method_names else None
            if handler is None:
                raise exceptions.MethodNotAllowed(request.method)
            response = await handler(request, *args, **kwargs)
        except asyncio.CancelledError:  # the client went away before the response started
            self.call.client_left()
            raise
        except Exception as exc:
            response = self.handle_exception(exc)
        response = self.finalize_response(request, response, *args, **kwargs)
        # DRF's request refers to itself and to this view (parser_context): a reference cycle that
        # only the cyclic collector could free, taking every request's objects with it into the
        # oldest generation (full collections of those paused the process for ~30 ms at load).
        request.parser_context = None
        self.request = self.headers = None
        return response
