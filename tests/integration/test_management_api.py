"""End to end, as an operator's automation would use it, against the real gateway server: with an ops token,
create a group, a policy and a deployment pointing at the fake upstream, and a client key, all through /api/
(paths taken from the served schema); send traffic through /v1/responses with the openai SDK and that key;
read the rows back through the log endpoint with an auditor token (filters included); the auditor's writes are
refused."""

from datetime import datetime, timezone

import httpx
import openai
import pytest

from routing.management_api import roles
from routing.services import management_token_create
from tests.integration.management_api.support import make_user
from tests.integration.server import UPSTREAM_KEY, UPSTREAM_MODEL, eventually, unique


class Api:
    """The management API through its schema: `call("groups_create", json=...)`."""

    def __init__(self, base: str, token: str):
        self.http = httpx.Client(base_url=base, timeout=20, headers={"Authorization": f"Bearer {token}"})
        schema = self.http.get("/api/schema/", params={"format": "json"}).raise_for_status().json()
        self.operations = {op["operationId"]: (method, path) for path, ops in schema["paths"].items()
                           for method, op in ops.items()}

    def call(self, operation_id: str, *, params: dict | None = None, json=None, **path_params) -> httpx.Response:
        method, path = self.operations[operation_id]
        return self.http.request(method, path.format(**path_params), params=params, json=json)


@pytest.fixture
def tokens(gateway):
    ops = management_token_create(user=make_user(unique("ops"), role=roles.OPS), name="automation")[1]
    auditor = management_token_create(user=make_user(unique("auditor"), role=roles.AUDITOR), name="audit")[1]
    return Api(gateway, ops), Api(gateway, auditor)


def created(response: httpx.Response) -> dict:
    assert response.status_code == 201, response.text
    return response.json()


def test_configure_through_the_api_then_audit_the_traffic(gateway, fake_azure, tokens, sdk):
    ops, auditor = tokens
    started = datetime.now(timezone.utc).isoformat()
    fake_azure.reject_params = {"metadata"}  # the upstream refuses it: the policy made through the API drops it

    group = created(ops.call("groups_create", json={"name": unique("api-gpt"), "max_attempts": 1}))
    policy = created(ops.call("policies_create", json={"name": unique("no-metadata"), "rules": [
        {"action": "drop", "path": "metadata", "endpoint": "responses"}]}))
    deployment = created(ops.call("deployments_create", json={
        "group": group["id"], "name": "east", "provider": "azure", "api_base": fake_azure.url,
        "upstream_model": UPSTREAM_MODEL, "api_key": UPSTREAM_KEY, "policy": policy["id"]}))
    assert deployment["api_key_set"] is True and UPSTREAM_KEY not in str(deployment)
    key = created(ops.call("keys_create", json={"name": unique("team"), "allowed_groups": [group["id"]]}))

    client = sdk(key["key"])
    answer = client.responses.with_raw_response.create(model=group["name"], input="hello", metadata={"team": "a"})
    assert answer.parse().output_text
    with client.responses.stream(model=group["name"], input="hello again", extra_body={"metadata": {"t": "b"}}) as s:
        streamed_id = s.get_final_response().id
    assert all("metadata" not in r.json for r in fake_azure.received)

    def rows(**filters) -> list[dict]:
        response = auditor.call("logs_list", params={"group": group["name"], **filters})
        assert response.status_code == 200, response.text
        return response.json()["results"]

    logged = eventually(lambda: len(rows()) == 2 and rows(), timeout=10, message="the log rows did not appear")
    assert {r["response_id"] for r in logged} == {answer.parse().id, streamed_id}
    assert [r["stream"] for r in logged] == [True, False]  # newest first
    for row in logged:
        assert (row["key_name"], row["deployment_name"], row["status"], row["outcome"]) == (
            key["name"], "east", 200, "completed")
        assert {"action": "drop", "path": "metadata", "policy": policy["name"]} in row["policy_changes"]
    assert len(rows(key=key["name"], status=200, outcome="completed", created_after=started,
                    deployment="east", deployment_id=deployment["id"])) == 2
    assert rows(stream="true")[0]["response_id"] == streamed_id
    assert rows(status=500) == [] and rows(key="someone-else") == []
    one = auditor.call("logs_retrieve", request_id=answer.headers["x-gateway-request-id"]).json()
    assert one["response_id"] == answer.parse().id

    refused = auditor.call("groups_create", json={"name": unique("nope")})
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "permission_denied"
    assert auditor.call("deployments_partial_update", id=deployment["id"], json={"enabled": False}).status_code == 403
    assert auditor.call("keys_regenerate", id=key["id"]).status_code == 403
    assert "key" not in auditor.call("keys_retrieve", id=key["id"]).json()

    # Disabling the deployment through the API reaches the running server like an admin save does.
    assert ops.call("deployments_partial_update", id=deployment["id"], json={"enabled": False}).status_code == 200
    eventually(lambda: _status(client, group["name"]) == 503, timeout=5, message="the disabled route still served")


def _status(client, model: str) -> int:
    try:
        client.responses.create(model=model, input="x")
    except openai.APIStatusError as exc:  # 503 no_deployment_available once its only deployment is disabled
        return exc.status_code
    return 200
