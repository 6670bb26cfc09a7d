"""What the upstream receives from the client's request, and nothing more: response ids as
one encoded path segment, the deployment's own api-version, bounded forwarded headers, and a
deployment whose request cannot even be built failing over instead of failing the call."""

import pytest

from routing.models import Deployment
from tests.integration.server import API_VERSION_PREVIEW, assert_openai_error, bearer, eventually


@pytest.fixture
def route(fake_azure, azure_route, make_key):
    dep = azure_route(fake_azure, api_version=API_VERSION_PREVIEW)
    return dep, make_key(dep.group)


def test_a_response_id_is_one_encoded_path_segment(route, fake_azure, sdk, http, master_key):
    """Ids the gateway never saw go to the only deployment there is, for a key that may use every group."""
    dep, key = route
    created = sdk(key).responses.create(model=dep.group.name, input="x")
    fake_azure.clear()
    for raw, rid in [("abc%3Fapi-version=2099-01-01", "abc?api-version=2099-01-01"), ("a%23b", "a#b"),
                     ("a%25b", "a%b")]:
        response = http.get(f"/v1/responses/{raw}", headers=bearer(master_key))
        assert response.status_code == 404, response.text  # the fake knows no such response
        last = fake_azure.last()
        assert last.path == f"/openai/responses/{rid}"  # one segment, decoded by the upstream as sent
        assert "?" not in last.raw_path.partition("?")[0] and last.raw_path.count("?") == 1
        assert last.query == {"api-version": API_VERSION_PREVIEW}
    assert http.get(f"/v1/responses/{created.id}", headers=bearer(key)).status_code == 200


@pytest.mark.parametrize("raw", ["%2E%2E", "%2E", "a%00b", "x" * 300])
def test_unusable_response_ids_are_refused_before_any_upstream_call(route, fake_azure, http, raw):
    _, key = route
    response = http.get(f"/v1/responses/{raw}", headers=bearer(key))
    assert_openai_error(response, 400, code="invalid_response_id", param="response_id")
    assert fake_azure.received == []


@pytest.mark.parametrize("query", ["api-version=2099-01-01", "API-VERSION=2099-01-01", "api%2Dversion=2099-01-01",
                                   "api-version=2099-01-01&api-version=2098-01-01"])
def test_the_deployments_api_version_always_wins(route, fake_azure, http, query):
    dep, key = route
    response = http.post(f"/v1/responses?{query}", json={"model": dep.group.name, "input": "x"}, headers=bearer(key))
    assert response.status_code == 200, response.text
    assert fake_azure.last().query == {"api-version": API_VERSION_PREVIEW}


def test_other_query_parameters_pass_through(route, fake_azure, sdk, http):
    dep, key = route
    created = sdk(key).responses.create(model=dep.group.name, input="x")
    response = http.get(f"/v1/responses/{created.id}?include[]=message.output_text.logprobs&api-version=1",
                        headers=bearer(key))
    assert response.status_code == 200, response.text
    assert fake_azure.last().query == {"include[]": "message.output_text.logprobs", "api-version": API_VERSION_PREVIEW}


def test_forwarded_client_headers_are_bounded(route, fake_azure, http):
    dep, key = route
    body = {"model": dep.group.name, "input": "x"}
    ok = http.post("/v1/responses", json=body, headers={**bearer(key), "OpenAI-Beta": "responses=v1",
                                                        "X-Client-Request-Id": "abc"})
    assert ok.status_code == 200
    assert (fake_azure.last().headers["openai-beta"], fake_azure.last().headers["x-client-request-id"]) == (
        "responses=v1", "abc")
    fake_azure.clear()
    for name in ("OpenAI-Beta", "X-Client-Request-Id"):
        refused = http.post("/v1/responses", json=body, headers={**bearer(key), name: "x" * 5000})
        assert_openai_error(refused, 400, code="header_too_long", param=name.lower())
    assert fake_azure.received == []


def test_a_deployment_whose_key_cannot_be_sent_fails_over(fake_azure, fake_azure_b, azure_group, make_key, http,
                                                          wait_for_log):
    bad, good = azure_group([(fake_azure, {"priority": 0}), (fake_azure_b, {"priority": 1})], strategy="priority")
    Deployment.objects.filter(pk=bad.pk).update(api_key_encrypted=_encrypted("ключ-не-latin-1"))
    Deployment.objects.filter(pk=bad.pk).first().save()  # as an admin save would: the route table reloads
    key = make_key()

    def served() -> bool:
        response = http.post("/v1/responses", json={"model": bad.group.name, "input": "x"}, headers=bearer(key))
        assert response.status_code == 200, response.text
        row = wait_for_log(response.headers["x-gateway-request-id"])
        return [a["error"] for a in row.attempts] == ["deployment_misconfigured", ""]

    eventually(served, timeout=5, message="the unsendable key never failed over")
    assert fake_azure.received == []


def _encrypted(plaintext: str) -> str:
    from routing import crypto

    return crypto.encrypt(plaintext)
