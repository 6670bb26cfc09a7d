"""The OpenAPI 3 schema of /api/ (drf-spectacular, served at /api/schema/, docs at /api/docs/ and /api/redoc/).

- `only_management_api`: the schema describes /api/ only (the /v1 API follows OpenAI's own).
- `BearerScheme`: `Authorization: Bearer <management token or GATEWAY_MASTER_KEY>`; the admin session is
  spectacular's built-in `cookieAuth`.
- `ManagementAutoSchema`: every operation documents the errors it can answer with, in the shape of
  routing/management_api/errors.py (`Error`): 400, 401 and 403 always (a repeated query parameter is a 400
  anywhere), 404 for an object path or a paged list (a stale page or cursor), 409 for writes (a row still
  in use, a unique value taken meanwhile), 415 when it takes a body; filter parameters are marked
  `allowEmptyValue` (an empty value is no filter).
"""

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema

from routing.management_api.serializers.common import ErrorSerializer

DESCRIPTIONS = {400: "Invalid input (the `fields` say which).", 401: "No credential, or a wrong, revoked, expired or "
                "retired one.", 403: "The role may not do this (auditors only read; built-in presets are read-only).",
                404: "No such object (or page).", 409: "Conflict: still in use, or a unique value taken meanwhile.",
                415: "The body is not JSON."}


def only_management_api(endpoints):
    return [endpoint for endpoint in endpoints if endpoint[0].startswith("/api/")]


class BearerScheme(OpenApiAuthenticationExtension):
    target_class = "routing.management_api.authentication.BearerAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer",
                "description": "A management token (`gwm_…`, from `manage.py create_management_token USER`), "
                "acting with its user's role, or GATEWAY_MASTER_KEY (ops) until it is retired."}


class ManagementAutoSchema(AutoSchema):
    """Spectacular's AutoSchema plus the errors each operation can answer with (`Error`, see the docstring)."""

    def _error_statuses(self) -> list[int]:
        has_body = self.method in ("POST", "PUT", "PATCH") and self.get_request_serializer() is not None
        paged_list = self.method == "GET" and self._is_list_view() and self._get_paginator() is not None
        statuses = [400, 401, 403]
        if "{" in self.path or paged_list:
            statuses.append(404)
        if self.method in ("POST", "PUT", "PATCH", "DELETE"):
            statuses.append(409)
        if has_body:
            statuses.append(415)
        return sorted(statuses)

    def _get_filter_parameters(self):
        parameters = super()._get_filter_parameters()
        for parameter in parameters:
            parameter["allowEmptyValue"] = True  # `?group=` is no filter, as in django-filter
        return parameters

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        for code in map(str, self._error_statuses()):
            if code not in responses:
                responses[code] = self._get_response_for_code(ErrorSerializer, code, direction=direction)
                responses[code]["description"] = DESCRIPTIONS[int(code)]
        return responses
