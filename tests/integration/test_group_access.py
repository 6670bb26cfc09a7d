"""A key limited to some groups (api/permissions.py, forwarding/candidates.py, forwarding/stored.py):
another group's models, stored responses and conversations answer exactly as unknown ones do,
even when both groups live on the same upstream resource."""

import pytest

from tests.integration.server import assert_openai_error, bearer


@pytest.fixture
def two_groups_one_resource(fake_azure, azure_route, make_key):
    """Groups A and B on the same fake upstream; a key for A only, and a key for both."""
    a, b = azure_route(fake_azure), azure_route(fake_azure)
    return a, b, make_key(a.group), make_key(a.group, b.group)


def create(http, key, group: str, **extra) -> dict:
    response = http.post("/v1/responses", json={"model": group, "input": "x", **extra}, headers=bearer(key))
    assert response.status_code == 200, response.text
    return response.json()


def test_another_groups_conversation_cannot_be_continued(two_groups_one_resource, fake_azure, http):
    a, b, only_a, both = two_groups_one_resource
    theirs = create(http, both, b.group.name)
    fake_azure.clear()
    refused = http.post("/v1/responses", headers=bearer(only_a),
                        json={"model": a.group.name, "input": "go on", "previous_response_id": theirs["id"]})
    error = assert_openai_error(refused, 400, code="previous_response_not_found", param="previous_response_id")
    assert theirs["id"] in error["message"]
    assert fake_azure.received == []  # the shared upstream would have accepted it
    mine = create(http, only_a, a.group.name)
    assert create(http, only_a, a.group.name, previous_response_id=mine["id"])["previous_response_id"] == mine["id"]


@pytest.mark.parametrize("method, suffix", [("GET", ""), ("DELETE", ""), ("POST", "/cancel"), ("GET", "/input_items")])
def test_another_groups_stored_response_looks_unknown(two_groups_one_resource, fake_azure, http, method, suffix):
    a, b, only_a, both = two_groups_one_resource
    theirs = create(http, both, b.group.name)
    fake_azure.clear()
    forbidden = http.request(method, f"/v1/responses/{theirs['id']}{suffix}", headers=bearer(only_a))
    unknown = http.request(method, f"/v1/responses/resp_nobody{suffix}", headers=bearer(only_a))
    got = assert_openai_error(forbidden, 404, code="response_not_found", param="response_id")
    expected = assert_openai_error(unknown, 404, code="response_not_found", param="response_id")
    assert got["message"].replace(theirs["id"], "ID") == expected["message"].replace("resp_nobody", "ID")
    assert [r.path for r in fake_azure.received if theirs["id"] in r.path] == []
    assert http.get(f"/v1/responses/{theirs['id']}", headers=bearer(both)).status_code == 200


def test_reasoning_from_another_group_is_not_followed(two_groups_one_resource, fake_azure_b, azure_route, http,
                                                      make_key, sdk):
    """Encrypted reasoning produced in B does not steer a key limited to A toward B's deployment."""
    a, b, only_a, both = two_groups_one_resource
    other = azure_route(fake_azure_b)  # a group on another resource, for the key limited to it
    key = make_key(other.group)
    theirs = create(http, both, b.group.name, include=["reasoning.encrypted_content"], reasoning={"effort": "low"})
    items = [i for i in theirs["output"] if i.get("type") == "reasoning"]
    body = {"model": other.group.name, "input": [{"type": "reasoning", "id": i["id"], "summary": [],
                                                 "encrypted_content": "opaque"} for i in items] +
            [{"role": "user", "content": "next"}]}
    fake_azure_b.clear()
    response = http.post("/v1/responses", json=body, headers=bearer(key))
    assert response.status_code in (200, 400), response.text
    assert len(fake_azure_b.received) >= 1  # routed within its own group, whatever the reasoning says
