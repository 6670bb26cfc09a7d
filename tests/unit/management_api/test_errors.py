"""routing/management_api/errors.py: one shape, field errors flattened to paths."""

from django.db.models import ProtectedError
from rest_framework import exceptions
from rest_framework.serializers import ValidationError

from routing.management_api.errors import _flatten, exception_handler


def test_nested_errors_become_paths():
    detail = ValidationError({"name": ["Too long."], "rules": {1: {"path": ["Empty."]}, "non_field_errors": ["Max."]},
                              "non_field_errors": ["Both given."]}).detail
    assert _flatten(detail) == {"name": ["Too long."], "rules[1].path": ["Empty."], "rules": ["Max."],
                                "non_field_errors": ["Both given."]}
    assert _flatten(ValidationError({"rules": [{}, {"target": ["x"]}]}).detail) == {"rules[1].target": ["x"]}


def test_validation_error_shape():
    response = exception_handler(ValidationError({"name": ["Too long."], "x": ["y"]}), {})
    assert response.status_code == 400
    assert response.data == {"error": {"message": "name: Too long.", "type": "invalid_request_error", "param": "name",
                                       "code": "invalid", "fields": {"name": ["Too long."], "x": ["y"]}}}


def test_other_errors():
    unauthenticated = exception_handler(exceptions.NotAuthenticated(), {})
    assert unauthenticated.data["error"]["type"] == "authentication_error"
    assert unauthenticated.data["error"]["fields"] == {} and unauthenticated.data["error"]["param"] is None
    conflict = exception_handler(ProtectedError("in use", {"east", "west"}), {})
    assert conflict.status_code == 409 and conflict.data["error"]["code"] == "conflict"
    assert conflict.data["error"]["message"] == "Still in use by: east, west."
    crash = exception_handler(RuntimeError("boom"), {})
    assert crash.status_code == 500 and "boom" not in str(crash.data)
