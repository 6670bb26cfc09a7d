"""Stored responses (routing/forwarding/stored.py + affinity): follow-up calls carry no model, so
the gateway must send GET / input_items / cancel / DELETE, and `previous_response_id`,
to the deployment that created the response — here two deployments on two separate
fake upstreams, so a wrong choice is visible (and refused by the fake with a 404)."""

import httpx
import openai
import pytest

from routing.models import Deployment
from tests.integration.server import (
    UPSTREAM_KEY,
    GatewayServer,
    assert_openai_error,
    bearer,
    eventually,
    server_database_url,
)

API_VERSION = "2025-04-01-preview"


@pytest.fixture
def two_routes(fake_azure, fake_azure_b, azure_route, make_key):
    """Group A on fake_azure (v1 URLs), group B on fake_azure_b (api-version URLs); a key for both."""
    a = azure_route(fake_azure)
    b = azure_route(fake_azure_b, api_version=API_VERSION)
    return a, b, make_key(a.group, b.group)


def test_follow_ups_reach_the_creating_deployment(two_routes, fake_azure, fake_azure_b, sdk):
    a, b, key = two_routes
    client = sdk(key)
    for dep, fake, other, prefix in [(a, fake_azure, fake_azure_b, "/openai/v1"),
                                     (b, fake_azure_b, fake_azure, "/openai")]:
        created = client.responses.create(model=dep.group.name, input="remember this", store=True)
        assert created.id in fake.responses  # the id is the upstream's, unchanged
        fake.clear()
        other.clear()
        query = {"api-version": API_VERSION} if dep.api_version else {}

        got = client.responses.retrieve(created.id)
        assert (got.id, got.status, got.output_text) == (created.id, "completed", created.output_text)
        assert (fake.last().method, fake.last().path, fake.last().query) == (
            "GET", f"{prefix}/responses/{created.id}", query)

        items = client.responses.input_items.list(created.id)
        assert [i.content[0].text for i in items.data] == ["remember this"]
        assert fake.last().path == f"{prefix}/responses/{created.id}/input_items"

        cancelled = client.responses.cancel(created.id)
        assert (cancelled.id, cancelled.status) == (created.id, "cancelled")
        assert (fake.last().method, fake.last().path) == ("POST", f"{prefix}/responses/{created.id}/cancel")

        assert client.responses.delete(created.id) is None
        assert (fake.last().method, fake.last().path) == ("DELETE", f"{prefix}/responses/{created.id}")
        assert created.id not in fake.responses

        assert len(fake.received) == 4 and other.received == []
        assert {r.headers["api-key"] for r in fake.received} == {UPSTREAM_KEY}
        with pytest.raises(openai.NotFoundError):  # gone upstream: the upstream's 404 comes back
            client.responses.retrieve(created.id)


def test_stream_created_response_is_remembered(two_routes, fake_azure_b, sdk, http, wait_for_log):
    a, b, key = two_routes
    client = sdk(key)
    events = list(client.responses.create(model=b.group.name, input="streamed", stream=True))
    response_id = events[-1].response.id
    fake_azure_b.clear()

    assert client.responses.retrieve(response_id).id == response_id
    assert fake_azure_b.last().path == f"/openai/responses/{response_id}"

    # GET ?stream=true replays the stored response as SSE, relayed from the same upstream.
    replay = http.get(f"/v1/responses/{response_id}", params={"stream": "true"}, headers=bearer(key))
    assert replay.status_code == 200 and replay.headers["content-type"].startswith("text/event-stream")
    assert "event: response.completed" in replay.text
    assert fake_azure_b.last().query == {"api-version": API_VERSION, "stream": "true"}
    row = wait_for_log(replay.headers["x-gateway-request-id"])
    assert (row.endpoint, row.stream, row.deployment_id, row.status) == ("responses.get", True, b.id, 200)


def test_input_items_query_is_forwarded(two_routes, fake_azure, sdk):
    a, _, key = two_routes
    client = sdk(key)
    created = client.responses.create(model=a.group.name, input=[
        {"role": "user", "content": "first"}, {"role": "assistant", "content": "second"},
        {"role": "user", "content": "third"}])
    page = client.responses.input_items.list(created.id, limit=2, order="asc")
    assert [i.content[0].text for i in page.data] == ["first", "second"] and page.has_more
    assert fake_azure.last().query == {"limit": "2", "order": "asc"}


def test_affinity_survives_a_restart(two_routes, fake_azure, fake_azure_b, sdk, wait_for_log, tmp_path):
    """A fresh process (a restart, another worker) finds the owner in the database."""
    a, b, key = two_routes
    raw = sdk(key).responses.with_raw_response.create(model=b.group.name, input="x")
    created = raw.parse()
    wait_for_log(raw.headers["x-gateway-request-id"])  # the affinity row is written with the log row
    fake_azure_b.clear()

    other = GatewayServer(database_url=server_database_url(), workdir=tmp_path, name="second").start()
    try:
        response = httpx.get(f"{other.url}/v1/responses/{created.id}", headers=bearer(key), timeout=10)
    finally:
        other.stop()
    assert response.status_code == 200, response.text
    assert response.json()["id"] == created.id
    assert fake_azure_b.last().path == f"/openai/responses/{created.id}" and fake_azure.received == []


def test_follow_up_rows(two_routes, sdk, http, wait_for_log):
    a, b, key = two_routes
    created = sdk(key).responses.create(model=a.group.name, input="x")
    for method, path, endpoint in [("GET", "", "responses.get"), ("GET", "/input_items", "responses.input_items"),
                                   ("POST", "/cancel", "responses.cancel"), ("DELETE", "", "responses.delete")]:
        response = http.request(method, f"/v1/responses/{created.id}{path}", headers=bearer(key))
        assert response.status_code == 200, (method, path, response.text)
        row = wait_for_log(response.headers["x-gateway-request-id"])
        assert (row.method, row.endpoint, row.status) == (method, endpoint, 200)
        assert (row.group_name, row.deployment_id, row.key_name) == (a.group.name, a.id, key.name)


def test_unknown_response_id(two_routes, fake_azure, fake_azure_b, http, wait_for_log):
    _, _, key = two_routes
    for method, path in [("GET", ""), ("GET", "/input_items"), ("POST", "/cancel"), ("DELETE", "")]:
        response = http.request(method, f"/v1/responses/resp_never_seen{path}", headers=bearer(key))
        assert_openai_error(response, 404, code="response_not_found", param="response_id")
        assert wait_for_log(response.headers["x-gateway-request-id"]).status == 404
    assert fake_azure.received == [] and fake_azure_b.received == []


def test_an_id_the_gateway_never_saw_is_not_guessed_for_a_limited_key(fake_azure, azure_route, make_key, sdk):
    """A response created directly upstream is unknown to the gateway: a limited key gets the
    gateway's own 404 (the same as for another group's response), and nothing goes upstream."""
    dep = azure_route(fake_azure)
    key = make_key(dep.group)
    direct = openai.OpenAI(base_url=fake_azure.azure_v1_base, api_key=UPSTREAM_KEY, max_retries=0)
    created = direct.responses.create(model="gpt-5.5-prod", input="made upstream")
    fake_azure.clear()
    with pytest.raises(openai.NotFoundError) as caught:
        sdk(key).responses.retrieve(created.id)
    assert created.id in caught.value.message and caught.value.code == "response_not_found"
    assert fake_azure.received == []


@pytest.mark.parametrize("how", ["deleted", "disabled"])
def test_creating_deployment_gone(how, two_routes, fake_azure, sdk, http):
    a, _, key = two_routes
    created = sdk(key).responses.create(model=a.group.name, input="x")
    if how == "deleted":
        Deployment.objects.filter(pk=a.pk).delete()
    else:
        a.enabled = False
        a.save()  # as the admin would (a save signals the route change)
    fake_azure.clear()

    def refused():
        response = http.get(f"/v1/responses/{created.id}", headers=bearer(key))
        return response if response.status_code == 404 else None

    response = eventually(refused, timeout=3, message="the follow-up kept reaching the removed deployment")
    error = assert_openai_error(response, 404, code="response_deployment_unavailable")
    assert created.id in error["message"]


def test_previous_response_id_beats_the_strategy(fake_azure, fake_azure_b, azure_group, make_key, sdk):
    """Priority says A; the conversation lives on B (A failed its first turn): every later
    turn still goes to B."""
    a, b = azure_group([(fake_azure, {"priority": 0}), (fake_azure_b, {"priority": 1})], strategy="priority")
    client = sdk(make_key())
    fake_azure.fail_status, fake_azure.fail_times = 500, 1  # the first turn fails over to B

    first = client.responses.with_raw_response.create(model=a.group.name, input="turn one")
    assert first.headers["x-gateway-deployment"] == f"{b.id}:{b.name}"
    previous = first.parse().id
    fake_azure.clear()
    fake_azure_b.clear()
    for turn in range(4):
        if turn % 2:
            events = list(client.responses.create(model=a.group.name, input=f"turn {turn}", stream=True,
                                                  previous_response_id=previous))
            previous = events[-1].response.id
        else:
            previous = client.responses.create(model=a.group.name, input=f"turn {turn}",
                                               previous_response_id=previous).id
    assert fake_azure.received == []
    assert [r.json["previous_response_id"] for r in fake_azure_b.received][0] == first.parse().id
    assert len(fake_azure_b.received) == 4
    # A new conversation follows the strategy again.
    client.responses.create(model=a.group.name, input="new conversation")
    assert len(fake_azure.received) == 1


def test_previous_response_id_with_weighted_routing(fake_azure, fake_azure_b, azure_group, make_key, sdk):
    deps = azure_group([fake_azure, fake_azure_b])
    model = deps[0].group.name
    client = sdk(make_key())
    fakes = {deps[0].id: fake_azure, deps[1].id: fake_azure_b}

    for _ in range(3):  # a few conversations, each starting wherever the weighted choice puts it
        first = client.responses.with_raw_response.create(model=model, input="turn one")
        owner_id = int(first.headers["x-gateway-deployment"].split(":")[0])
        owner, other = fakes[owner_id], fakes[deps[1].id if owner_id == deps[0].id else deps[0].id]
        previous = first.parse().id
        owner.clear()
        other.clear()
        for turn in range(4):  # with 50/50 routing, 4 turns all landing right by luck: 1 in 16
            previous = client.responses.create(model=model, input=f"turn {turn}", previous_response_id=previous).id
        assert len(owner.received) == 4 and other.received == []
