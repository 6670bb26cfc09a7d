"""One error shape for every /api/ failure, the gateway's OpenAI shape plus the field errors:

    {"error": {"message": "...", "type": "invalid_request_error", "param": "name", "code": "invalid",
               "fields": {"name": ["This field is required."], "rules[1].path": ["A path is required."]}}}

`type`: invalid_request_error (400, 404, 405, 406, 409, 415), authentication_error (401),
permission_error (403), server_error (500). `code`: DRF's code for the failure (`invalid`, `required`,
`not_authenticated`, `authentication_failed`, `permission_denied`, `not_found`, `parse_error`,
`method_not_allowed`, ...) or `conflict` (a row still in use, or a unique value taken meanwhile).
`param` and `message` name the first field error; `fields` has them all (`{}` for other errors).
"""

import logging

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError
from django.db.models import ProtectedError, RestrictedError
from django.http import Http404
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.serializers import as_serializer_error
from rest_framework.views import exception_handler as drf_exception_handler

log = logging.getLogger(__name__)

class Conflict(exceptions.APIException):
    status_code = 409
    default_detail = "The request conflicts with the current state."
    default_code = "conflict"


TYPES = {401: "authentication_error", 403: "permission_error"}


def _flatten(detail, prefix: str = "") -> dict[str, list[str]]:
    """DRF's nested error detail → {"field": [...], "rules[1].path": [...]}; top-level errors → "non_field_errors"
    (a list's own errors, e.g. too many items, under the list's name)."""
    out: dict[str, list[str]] = {}
    if isinstance(detail, dict):
        for key, value in detail.items():
            if isinstance(key, int):  # DRF reports list items as {index: errors}
                name = f"{prefix}[{key}]"
            elif key == "non_field_errors" and prefix:
                name = prefix
            else:
                name = f"{prefix}.{key}" if prefix else str(key)
            for field, messages in _flatten(value, name).items():
                out.setdefault(field, []).extend(messages)
    elif isinstance(detail, list) and any(isinstance(item, (dict, list)) for item in detail):
        for index, item in enumerate(detail):
            out.update(_flatten(item, f"{prefix}[{index}]"))
    elif isinstance(detail, list):
        if detail:
            out[prefix or "non_field_errors"] = [str(item) for item in detail]
    else:
        out[prefix or "non_field_errors"] = [str(detail)]
    return out


def _first_code(detail) -> str:
    codes = detail
    while isinstance(codes, (dict, list)) and codes:
        codes = next(iter(codes.values())) if isinstance(codes, dict) else codes[0]
    return getattr(codes, "code", None) or "invalid"


def error_response(status_code: int, message: str, *, code: str, param: str | None = None,
                   fields: dict | None = None, headers: dict | None = None) -> Response:
    error = {"message": message, "type": TYPES.get(status_code, "server_error" if status_code >= 500
                                                   else "invalid_request_error"),
             "param": param, "code": code, "fields": fields or {}}
    return Response({"error": error}, status=status_code, headers=headers)


def _translated(exc: Exception) -> Exception:
    """Django and database exceptions the services raise, as DRF exceptions."""
    if isinstance(exc, (ProtectedError, RestrictedError)):
        names = sorted({str(obj) for obj in exc.protected_objects if obj is not None}
                       if isinstance(exc, ProtectedError) else {str(obj) for obj in exc.restricted_objects})
        shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
        return Conflict(f"Still in use by: {shown}.")
    if isinstance(exc, IntegrityError):
        return Conflict("A unique value is already taken (changed meanwhile?); retry.")
    if isinstance(exc, DjangoValidationError):
        return exceptions.ValidationError(detail=as_serializer_error(exc))
    if isinstance(exc, Http404):
        return exceptions.NotFound()
    if isinstance(exc, DjangoPermissionDenied):
        return exceptions.PermissionDenied()
    return exc


def exception_handler(exc: Exception, context: dict) -> Response:
    exc = _translated(exc)
    response = drf_exception_handler(exc, context)
    if response is None:
        view = context.get("view")
        request = getattr(view, "request", None)
        log.error("management API error on %s %s", getattr(request, "method", "?"), getattr(request, "path", "?"),
                  exc_info=exc)
        return error_response(500, "The gateway failed to handle this request; the error has been logged.",
                              code="internal_error")
    headers = {name: response[name] for name in ("WWW-Authenticate", "Retry-After") if name in response}
    if isinstance(exc, exceptions.ValidationError):
        fields = _flatten(exc.detail)
        param, messages = next(iter(fields.items()), (None, ["Invalid input."]))
        message = messages[0] if param in (None, "non_field_errors") else f"{param}: {messages[0]}"
        return error_response(response.status_code, message, code=_first_code(exc.detail),
                              param=None if param == "non_field_errors" else param, fields=fields)
    return error_response(response.status_code, str(exc.detail), code=getattr(exc.detail, "code", None) or "error",
                          headers=headers)
