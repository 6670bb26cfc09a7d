"""Bridged responses are the gateway's own (forwarding/bridge_store.py, forwarding/stored.py): GET, DELETE and
input_items served from its store, `previous_response_id` replayed on a chat-only upstream, and the group
check: another group's bridged response answers exactly like an unknown id."""

import openai
import pytest
from django.test import override_settings

from routing.models import BridgedResponse
from routing.services import bridged_response_save, bridged_responses_prune
from tests.integration.bridge_support import (  # noqa: F401  (fixtures)
    ANSWER,
    _fake_vllm_server,
    chat_calls,
    fake_vllm,
    vllm_route,
)
from tests.integration.server import assert_openai_error, bearer


def test_previous_response_id_replays_the_conversation(fake_vllm, vllm_route, make_key, sdk):
    dep = vllm_route(fake_vllm)
    client = sdk(make_key())
    fake_vllm.chat_script = {"text": "Nice to meet you, Ada."}
    first = client.responses.create(model=dep.group.name, input="My name is Ada.", instructions="Be warm.")
    fake_vllm.chat_script = {"text": "Your name is Ada."}
    second = client.responses.create(model=dep.group.name, input="What is my name?", previous_response_id=first.id)
    fake_vllm.chat_script = {"text": "Goodbye, Ada."}
    third = client.responses.create(model=dep.group.name, input="Bye.", previous_response_id=second.id,
                                    instructions="Be short.")

    assert (second.output_text, second.previous_response_id) == ("Your name is Ada.", first.id)
    calls = chat_calls(fake_vllm)
    assert calls[1].json["messages"] == [  # instructions are not carried over, as on OpenAI
        {"role": "user", "content": "My name is Ada."}, {"role": "assistant", "content": "Nice to meet you, Ada."},
        {"role": "user", "content": "What is my name?"}]
    assert calls[2].json["messages"] == [
        {"role": "system", "content": "Be short."},
        {"role": "user", "content": "My name is Ada."}, {"role": "assistant", "content": "Nice to meet you, Ada."},
        {"role": "user", "content": "What is my name?"}, {"role": "assistant", "content": "Your name is Ada."},
        {"role": "user", "content": "Bye."}]
    assert third.output_text == "Goodbye, Ada."


def test_stored_response_get_input_items_delete(fake_vllm, vllm_route, make_key, sdk, http, wait_for_log):
    dep = vllm_route(fake_vllm)
    key = make_key()
    client = sdk(key)
    created = client.responses.create(model=dep.group.name, metadata={"ticket": "42"}, input=[
        {"role": "user", "content": "one"}, {"role": "user", "content": [{"type": "input_text", "text": "two"}]}])
    fake_vllm.clear()

    got = client.responses.retrieve(created.id)
    assert got.model_dump() == created.model_dump()  # the very object the client got at first
    assert got.metadata == {"ticket": "42"} and got.output_text == ANSWER
    items = client.responses.input_items.list(created.id)
    assert [i.content[0].text if hasattr(i.content[0], "text") else i.content for i in items.data] == ["two", "one"]
    asc = http.get(f"/v1/responses/{created.id}/input_items?order=asc&limit=1", headers=bearer(key)).json()
    assert asc["has_more"] is True and asc["data"][0]["content"] == "one"
    assert asc["first_id"] == asc["last_id"] == asc["data"][0]["id"]
    cancel = http.post(f"/v1/responses/{created.id}/cancel", headers=bearer(key))
    assert_openai_error(cancel, 400, code="invalid_request")
    streamed = http.get(f"/v1/responses/{created.id}?stream=true", headers=bearer(key))
    assert_openai_error(streamed, 400, code="unsupported_parameter", param="stream")
    row = wait_for_log(cancel.headers["x-gateway-request-id"])
    assert (row.endpoint, row.group_name, row.response_id) == ("responses.cancel", dep.group.name, created.id)

    client.responses.delete(created.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(created.id)
    refused = http.post("/v1/responses", headers=bearer(key), json={
        "model": dep.group.name, "input": "more", "previous_response_id": created.id})
    assert_openai_error(refused, 400, code="previous_response_not_found", param="previous_response_id")
    assert fake_vllm.received == []  # every answer came from the gateway itself


@pytest.mark.parametrize("method, suffix", [("GET", ""), ("DELETE", ""), ("POST", "/cancel"), ("GET", "/input_items")])
def test_another_groups_bridged_response_looks_unknown(fake_vllm, vllm_route, make_key, http, method, suffix):
    a, b = vllm_route(fake_vllm), vllm_route(fake_vllm)
    only_a, both = make_key(a.group), make_key(a.group, b.group)
    theirs = http.post("/v1/responses", headers=bearer(both), json={"model": b.group.name, "input": "x"}).json()
    unknown_id = "resp_gw_" + "0" * 32
    forbidden = http.request(method, f"/v1/responses/{theirs['id']}{suffix}", headers=bearer(only_a))
    unknown = http.request(method, f"/v1/responses/{unknown_id}{suffix}", headers=bearer(only_a))
    got = assert_openai_error(forbidden, 404, code="response_not_found", param="response_id")
    expected = assert_openai_error(unknown, 404, code="response_not_found", param="response_id")
    assert got["message"].replace(theirs["id"], "ID") == expected["message"].replace(unknown_id, "ID")
    assert http.get(f"/v1/responses/{theirs['id']}", headers=bearer(both)).status_code == 200  # still there


def test_another_groups_conversation_cannot_be_continued(fake_vllm, vllm_route, make_key, http):
    a, b = vllm_route(fake_vllm), vllm_route(fake_vllm)
    only_a, both = make_key(a.group), make_key(a.group, b.group)
    theirs = http.post("/v1/responses", headers=bearer(both), json={"model": b.group.name, "input": "secret"}).json()
    # also through a response of A's that continues B's: the chain reaches into B
    bridge = http.post("/v1/responses", headers=bearer(both), json={
        "model": a.group.name, "input": "next", "previous_response_id": theirs["id"]}).json()
    fake_vllm.clear()
    for prev in (theirs["id"], bridge["id"], "resp_gw_" + "1" * 32):
        refused = http.post("/v1/responses", headers=bearer(only_a),
                            json={"model": a.group.name, "input": "go on", "previous_response_id": prev})
        error = assert_openai_error(refused, 400, code="previous_response_not_found", param="previous_response_id")
        assert error["message"] == f"Previous response with id '{prev}' not found."
    assert fake_vllm.received == []


def test_previous_response_of_an_upstream_is_not_sent_to_a_chat_only_deployment(fake_vllm, vllm_route, make_key,
                                                                                  http):
    dep = vllm_route(fake_vllm)
    refused = http.post("/v1/responses", headers=bearer(make_key()), json={
        "model": dep.group.name, "input": "x", "previous_response_id": "resp_from_azure_123"})
    assert_openai_error(refused, 400, code="previous_response_not_found", param="previous_response_id")
    assert fake_vllm.received == []


def test_not_stored_when_over_the_row_limit(fake_vllm, vllm_route, make_key, http, wait_for_log):
    """The server keeps the default limit; the limit itself is checked in-process below."""
    dep = vllm_route(fake_vllm)
    created = http.post("/v1/responses", headers=bearer(make_key()),
                        json={"model": dep.group.name, "input": "x", "store": False})
    row = wait_for_log(created.headers["x-gateway-request-id"])
    assert ("translate", "store") in [(c["action"], c["path"]) for c in row.policy_changes]
    assert not [c for c in row.policy_changes if c["action"] == "store"]  # store: false, nothing kept
    assert not BridgedResponse.objects.filter(response_id=created.json()["id"]).exists()


@pytest.mark.django_db
async def test_row_limit_in_process():
    from routing.forwarding import bridge_store

    with override_settings(GATEWAY={"BRIDGE_STORE_MAX_ROW_BYTES": 100, "MAX_BODY_BYTES": 10**6}):
        note = await bridge_store.save({"id": "resp_gw_big", "output": ["x" * 200]}, {"input": "hi"},
                                       group="g", deployment_id=1)
    assert note["stored"] is False and "BRIDGE_STORE_MAX_ROW_BYTES" in note["reason"]


@pytest.mark.django_db(transaction=True)
def test_prune_deletes_expired_then_the_oldest_over_the_total():
    for i in range(5):
        bridged_response_save(response_id=f"resp_gw_{i}", group_name="g", deployment_id=1, previous_response_id="",
                              response=b"{" + b" " * 98 + b"}", input_items=b"[]", ttl_seconds=-1 if i == 0 else 60)
    assert bridged_responses_prune(max_total_bytes=250) == (1, 2)  # 102 bytes each: two of the four left fit
    assert sorted(BridgedResponse.objects.values_list("response_id", flat=True)) == ["resp_gw_3", "resp_gw_4"]


@pytest.mark.django_db(transaction=True)
def test_prune_command():
    from io import StringIO

    from django.core.management import call_command

    for i in range(3):
        bridged_response_save(response_id=f"resp_gw_c{i}", group_name="g", deployment_id=None,
                              previous_response_id="", response=b"{}", input_items=b"[]", ttl_seconds=60)
    out = StringIO()
    call_command("prune_bridged_responses", "--max-total-bytes", "8", stdout=out)
    assert out.getvalue().strip() == "deleted 0 expired and 1 over the 8-byte total"
    assert BridgedResponse.objects.count() == 2
