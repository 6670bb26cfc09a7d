"""Every way a request can go wrong, through the real server: the status, an OpenAI-shaped
body `{"error": {"message", "type", "param", "code"}}` (or the upstream's own error, verbatim),
and a RequestLog row with that status for each request."""

import json
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from routing.models import ParamPolicy, PolicyRule
from routing.services import presets_ensure
from tests.fakes import upstream_payloads
from tests.integration.server import MAX_BODY_BYTES, assert_openai_error, bearer, free_port, unique


@pytest.fixture
def route(fake_azure, azure_route):
    return azure_route(fake_azure, max_attempts=1)


@pytest.fixture
def key(make_key):
    return make_key()


@pytest.fixture
def check(wait_for_log):
    """check(response, status, code=..., param=...) -> (error, row): OpenAI shape + the row's status."""

    def check(response, status, *, code=None, param=None):
        error = assert_openai_error(response, status, code=code, param=param)
        row = wait_for_log(response.headers["x-gateway-request-id"])
        assert row.status == status
        assert row.error_type, "the row names the error"
        return error, row

    return check


def post(http, key, content: bytes | str, content_type: str = "application/json", **kwargs):
    return http.post("/v1/responses", content=content, headers={**bearer(key), "content-type": content_type},
                     **kwargs)


@pytest.mark.parametrize(("content", "message_part"), [
    (b'{"model": "m", "input": ', "parse"),
    (b"{'model': 'm'}", "parse"),
    (b"\xff\xfe{}", "parse"),
], ids=["truncated", "single-quotes", "not-utf8"])
def test_invalid_json(content, message_part, route, key, http, check, fake_azure):
    error, row = check(post(http, key, content), 400, code="invalid_json")
    assert message_part in error["message"]
    assert row.key_name == key.name
    assert fake_azure.received == []


@pytest.mark.parametrize("content", [b'[{"model": "x"}]', b'"text"', b"42", b"null"],
                         ids=["array", "string", "number", "null"])
def test_json_that_is_not_an_object(content, route, key, http, check):
    error, _ = check(post(http, key, content), 400)
    assert "JSON object" in error["message"]


def test_empty_body(route, key, http, check):
    check(post(http, key, b""), 400)


@pytest.mark.parametrize("body", [{"input": "hi"}, {"model": "", "input": "hi"}, {"model": 5, "input": "hi"}],
                         ids=["absent", "empty", "not-a-string"])
def test_missing_model(body, route, key, http, check):
    check(post(http, key, json.dumps(body)), 400, param="model")


def test_unknown_model(route, key, http, check, fake_azure):
    error, row = check(post(http, key, json.dumps({"model": "no-such-model", "input": "hi"})), 404,
                       code="model_not_found", param="model")
    assert "no-such-model" in error["message"]
    assert fake_azure.received == []


@pytest.mark.parametrize("content_type", ["text/plain", "application/xml", "multipart/form-data; boundary=x"])
def test_wrong_content_type(content_type, route, key, http, check, fake_azure):
    body = json.dumps({"model": route.group.name, "input": "hi"})
    check(post(http, key, body, content_type), 415, code="unsupported_media_type")
    assert fake_azure.received == []


def test_multipart_upload_is_refused(route, key, http, check):
    response = http.post("/v1/responses", headers=bearer(key), data={"model": route.group.name},
                         files={"file": ("a.txt", b"hello")})
    check(response, 415, code="unsupported_media_type")


def test_curl_form_content_type_with_json_body_is_accepted(route, key, http):
    """`curl -d` sends application/x-www-form-urlencoded; the body is still the JSON people typed."""
    body = json.dumps({"model": route.group.name, "input": "Hello"})
    response = post(http, key, body, "application/x-www-form-urlencoded")
    assert response.status_code == 200, response.text


def test_body_over_limit(route, key, http, check, fake_azure):
    big = json.dumps({"model": route.group.name, "input": "x" * (MAX_BODY_BYTES + 500_000)})
    check(post(http, key, big), 413, code="request_too_large")
    assert fake_azure.received == []


def test_body_over_limit_without_content_length(route, key, http, check):
    big = json.dumps({"model": route.group.name, "input": "x" * (MAX_BODY_BYTES + 500_000)}).encode()
    chunks = (big[i:i + 65536] for i in range(0, len(big), 65536))  # chunked transfer encoding
    check(post(http, key, chunks), 413, code="request_too_large")


def test_body_just_under_limit_is_accepted(route, key, http):
    body = json.dumps({"model": route.group.name, "input": ""})
    body = body.replace('"input": ""', '"input": "' + "x" * (MAX_BODY_BYTES - len(body) - 10) + '"')
    assert len(body) < MAX_BODY_BYTES
    response = post(http, key, body)
    assert response.status_code == 200, response.text


def test_missing_key(route, http, check):
    response = http.post("/v1/responses", json={"model": route.group.name, "input": "hi"})
    check(response, 401, code="invalid_api_key")
    assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize("secret", ["sk-gw-deadbeef-notarealkeynotarealkeynotarealkey00", "nonsense",
                                    "Bearer"], ids=["gateway-format", "other", "empty-bearer"])
def test_bad_key(secret, route, http, check):
    check(http.post("/v1/responses", json={"model": route.group.name, "input": "hi"}, headers=bearer(secret)), 401,
          code="invalid_api_key")


def test_expired_and_inactive_keys(route, make_key, http, check):
    expired = make_key(expires_at=timezone.now() - timedelta(minutes=1))
    inactive = make_key()
    inactive.row.is_active = False
    inactive.row.save()
    for key in (expired, inactive):
        check(http.post("/v1/responses", json={"model": route.group.name, "input": "hi"}, headers=bearer(key)), 401,
              code="invalid_api_key")


def test_group_the_key_may_not_use_answers_like_an_unknown_model(fake_azure, azure_route, make_key, http, check):
    mine, other = azure_route(fake_azure), azure_route(fake_azure)
    key = make_key(mine.group)
    ok = http.post("/v1/responses", json={"model": mine.group.name, "input": "hi"}, headers=bearer(key))
    assert ok.status_code == 200, ok.text

    forbidden, row = check(http.post("/v1/responses", json={"model": other.group.name, "input": "hi"},
                                     headers=bearer(key)), 404, code="model_not_found", param="model")
    unknown, _ = check(http.post("/v1/responses", json={"model": "no-such-model", "input": "hi"},
                                 headers=bearer(key)), 404, code="model_not_found", param="model")
    assert forbidden["message"].replace(other.group.name, "X") == unknown["message"].replace("no-such-model", "X")
    assert forbidden["type"] == unknown["type"]
    assert other.group.name in row.error_message and row.outcome == "rejected"
    assert len(fake_azure.received) == 1


def test_policy_reject_rule(fake_azure, azure_route, key, http, check):
    policy = ParamPolicy.objects.create(name=unique("no-temperature"), extends=presets_ensure()["azure-responses"])
    PolicyRule.objects.create(policy=policy, action="reject", path="temperature",
                              message="temperature is fixed on this route")
    dep = azure_route(fake_azure, policy=policy)

    error, row = check(http.post("/v1/responses", json={"model": dep.group.name, "input": "hi", "temperature": 0.2},
                                 headers=bearer(key)), 400, param="temperature")
    assert error["message"] == "temperature is fixed on this route"
    assert fake_azure.received == []

    # Without the parameter the same route works, and the base policy still applies.
    ok = http.post("/v1/responses", headers=bearer(key), json={
        "model": dep.group.name, "input": "hi", "stream": True, "stream_options": {"include_usage": True}})
    assert ok.status_code == 200, ok.text
    assert "stream_options" not in fake_azure.last().json


def test_upstream_unreachable(azure_route, key, http, check):
    dep = azure_route(None, base=f"http://127.0.0.1:{free_port()}", max_attempts=1)
    error, row = check(http.post("/v1/responses", json={"model": dep.group.name, "input": "hi"}, headers=bearer(key)),
                       502, code="upstream_unreachable")
    assert error["type"] == "api_error"
    assert row.error_type == "connect_error"
    assert [(a["deployment_id"], a["status"], a["error"]) for a in row.attempts] == [(dep.id, None, "connect_error")]


@pytest.mark.parametrize("stream", [False, True], ids=["non-stream", "stream"])
def test_upstream_timeout(stream, fake_azure, azure_route, key, http, check):
    dep = azure_route(fake_azure, first_byte_timeout=0.5, max_attempts=1)
    fake_azure.hang_seconds = 3
    started = time.monotonic()
    response = http.post("/v1/responses", json={"model": dep.group.name, "input": "hi", "stream": stream},
                         headers=bearer(key))
    elapsed = time.monotonic() - started
    error, row = check(response, 504, code="upstream_timeout")
    assert 0.45 < elapsed < 2.5, elapsed
    assert row.error_type == "first_byte_timeout"
    assert row.stream is stream


@pytest.mark.parametrize("status", [400, 404, 429, 500, 503])
def test_upstream_error_passes_through_verbatim(status, fake_azure, azure_route, key, http, wait_for_log):
    """(Except 401/403: the upstream refusing the deployment's own key is a 502 upstream_auth_failed,
    test_resilience_failover.py.)"""
    dep = azure_route(fake_azure, max_attempts=1)
    fake_azure.fail_status = status
    fake_azure.retry_after = "7"
    response = http.post("/v1/responses", json={"model": dep.group.name, "input": "hi"}, headers=bearer(key))

    assert response.status_code == status
    # aiohttp's json_response: json.dumps with default separators, so the bytes are known exactly.
    assert response.content == json.dumps(upstream_payloads.failure_body("azure", status, "7")).encode()
    assert response.headers["content-type"].startswith("application/json")
    if status == 429:
        assert response.headers["retry-after"] == "7"
    assert len(fake_azure.received) == 1  # max_attempts=1: no retry, no failover
    row = wait_for_log(response.headers["x-gateway-request-id"])
    assert (row.status, row.upstream_status) == (status, status)
    assert row.error_type
    # The answer came from this deployment: the row and the header say so, whatever the status.
    assert (row.deployment_id, row.deployment_name, row.provider) == (dep.id, dep.name, "azure")
    assert response.headers.get("x-gateway-deployment") == f"{dep.id}:{dep.name}"
    assert row.bytes_out == len(response.content)


def test_upstream_error_on_a_stream_request_passes_through(fake_azure, azure_route, key, http):
    dep = azure_route(fake_azure, max_attempts=1)
    fake_azure.fail_status = 400
    response = http.post("/v1/responses", json={"model": dep.group.name, "input": "hi", "stream": True},
                         headers=bearer(key))
    assert response.status_code == 400
    assert response.json() == upstream_payloads.failure_body("azure", 400, "1")


def test_unknown_endpoint(key, http, check):
    check(http.post("/v1/engines/davinci/completions", json={}, headers=bearer(key)), 404, code="unknown_endpoint")


def test_wrong_method(route, key, http, check):
    check(http.get("/v1/responses", headers=bearer(key)), 405)
    check(http.put("/v1/responses/resp_1/cancel", headers=bearer(key)), 405)
