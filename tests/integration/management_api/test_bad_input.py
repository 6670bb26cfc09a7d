"""Bad requests to /api/ are clear 4xx answers in the API's error shape, never a 500 or an HTML page."""

import pytest

from routing.models import ModelGroup
from tests.integration.management_api.support import assert_error


@pytest.fixture
def ops(api):
    return api("ops_token")


@pytest.mark.parametrize("body,status,code", [
    ("{", 400, "parse_error"),
    ("[" * 5000 + "]" * 5000, 400, "parse_error"),  # Python's decoder: RecursionError
    ('{"name": ' + "[" * 40 + "]" * 40 + "}", 400, "parse_error"),  # deeper than MAX_DEPTH (32)
    ('{"name": "g", "max_attempts": NaN}', 400, "parse_error"),
    (b'{"name": "\xff"}', 400, "parse_error"),
    ('{"name": "\\ud800"}', 400, "invalid"),
    ('{"name": "a\\u0000b"}', 400, "invalid"),
    ('{"name": 7}', 400, "invalid"),
    ('["name"]', 400, "invalid"),
    ('{"name": "g", "cooldown_window": 1e999}', 400, "invalid"),
])
def test_bad_bodies(ops, body, status, code):
    response = ops.generic("POST", "/api/groups/", body, content_type="application/json")
    assert assert_error(response, status)["code"] == code
    assert not ModelGroup.objects.exists()


def test_not_json_is_415(ops):
    response = ops.generic("POST", "/api/groups/", "name=g", content_type="application/x-www-form-urlencoded")
    assert_error(response, 415, "unsupported_media_type")


def test_unknown_paths_are_json_404s(ops):
    assert_error(ops.get("/api/nothing/"), 404, "not_found")
    assert "Did you mean /api/groups/" in assert_error(ops.get("/api/groups"), 404)["message"]
    assert_error(ops.get("/api/groups/abc/"), 404)
    assert_error(ops.get("/api/groups/99999999999999999999/"), 404)
    assert_error(ops.get("/api/groups/9223372036854775807/"), 404)


def test_methods_not_allowed(ops):
    assert_error(ops.delete("/api/groups/"), 405, "method_not_allowed")


def test_html_accept_still_gets_json(ops):
    response = ops.get("/api/groups/", HTTP_ACCEPT="text/html")
    assert response.status_code == 200 and response["Content-Type"] == "application/json"
