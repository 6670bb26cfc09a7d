"""POST /v1/responses on a chat-only upstream, through the real server, with the official openai SDK as the
client and a strict chat-only fake (vLLM-like) as the upstream: what the client gets, exactly what the
upstream receives (the translation, the policy and the model rewrite, each in the log row), and the
400s for what Chat Completions cannot express."""

import json

import openai
import pytest
from pydantic import BaseModel

from routing.models import RequestLog
from tests.integration.bridge_support import (  # noqa: F401  (fixtures)
    ANSWER,
    VLLM_MODEL,
    _fake_vllm_server,
    chat_calls,
    fake_vllm,
    recorded,
    vllm_route,
)
from tests.integration.server import assert_openai_error, bearer, eventually, parse_sse

TEXT_EVENTS = ["response.created", "response.in_progress", "response.output_item.added",
               "response.content_part.added"] + ["response.output_text.delta"] * 7 + [
    "response.output_text.done", "response.content_part.done", "response.output_item.done", "response.completed"]
WEATHER_TOOL = {"type": "function", "name": "get_weather", "description": "Weather for a city",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"],
                               "additionalProperties": False}, "strict": True}


def log_for_response(response_id: str):
    return eventually(lambda: RequestLog.objects.filter(response_id=response_id).first())


def translations(row) -> list[tuple]:
    return [(c["action"], c["path"], c.get("to")) for c in row.policy_changes]


def test_text_answer(fake_vllm, vllm_route, make_key, recorded, wait_for_log):
    dep = vllm_route(fake_vllm)
    client, sent = recorded(make_key())

    raw = client.responses.with_raw_response.create(
        model=dep.group.name, input="Hello there friend", instructions="Be brief.", max_output_tokens=50,
        temperature=0.2)
    response = raw.parse()

    assert response.output_text == ANSWER and response.status == "completed"
    assert response.id.startswith("resp_gw_") and response.model == VLLM_MODEL
    assert (response.instructions, response.max_output_tokens, response.temperature) == ("Be brief.", 50, 0.2)
    assert response.usage.input_tokens > 0 and response.usage.output_tokens == 5
    [call] = fake_vllm.received  # one call, to /chat/completions; /responses was never tried
    assert (call.method, call.path) == ("POST", "/v1/chat/completions")
    assert call.headers["authorization"] == "Bearer vllm-secret"
    assert call.json == {"model": VLLM_MODEL, "max_completion_tokens": 50, "temperature": 0.2, "messages": [
        {"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello there friend"}]}
    assert json.loads(sent.bodies[-1])["model"] == dep.group.name
    row = wait_for_log(raw.headers["x-gateway-request-id"])
    assert translations(row) == [
        ("translate", "", "chat/completions"), ("translate", "instructions", "messages[0]"),
        ("translate", "input", "messages"), ("translate", "max_output_tokens", "max_completion_tokens"),
        ("rewrite", "model", VLLM_MODEL), ("store", "store", None)]
    assert row.policy_changes[-1]["stored"] is True and row.policy_changes[-1]["response_id"] == response.id
    assert (row.status, row.endpoint, row.response_id, row.output_tokens) == (200, "responses", response.id, 5)
    assert [a["status"] for a in row.attempts] == [200]


def test_stream_every_event(fake_vllm, vllm_route, make_key, sdk, wait_for_log):
    dep = vllm_route(fake_vllm)
    fake_vllm.chat_script = {"text": "Streaming through the bridge", "piece": 4}
    client = sdk(make_key())

    with client.responses.stream(model=dep.group.name, input="Stream please") as stream:
        events = list(stream)
        final = stream.get_final_response()

    assert [e.type for e in events] == TEXT_EVENTS
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert "".join(e.delta for e in events if e.type == "response.output_text.delta") == \
        "Streaming through the bridge"
    item_ids = {e.item_id for e in events if hasattr(e, "item_id")}
    assert len(item_ids) == 1 and item_ids == {events[2].item.id}
    assert events[0].response.id == final.id and final.id.startswith("resp_gw_")
    assert final.output_text == "Streaming through the bridge" and final.status == "completed"
    assert final.usage is None  # nobody asked the chat stream for usage: nothing was invented to get it
    [call] = chat_calls(fake_vllm)
    assert call.json == {"model": VLLM_MODEL, "stream": True,
                         "messages": [{"role": "user", "content": "Stream please"}]}
    row = log_for_response(final.id)
    assert (row.status, row.stream, row.outcome, row.bytes_out > 0) == (200, True, "completed", True)
    assert not [c for c in row.policy_changes if c["action"] == "set"]  # nothing added to the upstream body


def test_stream_usage_when_ops_opted_in(fake_vllm, vllm_route, make_key, http, wait_for_log):
    dep = vllm_route(fake_vllm, chat_stream_usage=True, collect_stream_usage=True)
    with http.stream("POST", "/v1/responses", headers=bearer(make_key()),
                     json={"model": dep.group.name, "input": "count", "stream": True}) as response:
        body = response.read().decode()
    events = parse_sse(body)
    assert events[-1].event == "response.completed"
    usage = events[-1].json()["response"]["usage"]
    assert usage["output_tokens"] == 5 and usage["total_tokens"] == usage["input_tokens"] + 5
    [call] = chat_calls(fake_vllm)
    assert call.json["stream_options"] == {"include_usage": True}
    row = wait_for_log(response.headers["x-gateway-request-id"])
    assert {"action": "set", "path": "stream_options.include_usage", "value": True, "reason": "collect_stream_usage",
            "note": "the usage chunk is removed from the client's stream"} in row.policy_changes
    assert (row.output_tokens, row.total_tokens, row.stream) == (5, usage["total_tokens"], True)
    assert row.response_id == events[0].json()["response"]["id"]


def test_function_call_round_trip(fake_vllm, vllm_route, make_key, sdk, wait_for_log):
    dep = vllm_route(fake_vllm)
    client = sdk(make_key())
    fake_vllm.chat_script = {"text": "", "piece": 3,
                             "tool_calls": [{"name": "get_weather", "arguments": json.dumps({"city": "Paris"})}]}

    with client.responses.stream(model=dep.group.name, input="Weather in Paris?", tools=[WEATHER_TOOL]) as stream:
        events = list(stream)
        first = stream.get_final_response()

    deltas = [e.delta for e in events if e.type == "response.function_call_arguments.delta"]
    assert len(deltas) > 3 and "".join(deltas) == "{\"city\": \"Paris\"}"  # split across chunks, joined again
    [done] = [e for e in events if e.type == "response.function_call_arguments.done"]
    assert done.arguments == "{\"city\": \"Paris\"}"
    [call_item] = first.output
    assert (call_item.type, call_item.name, json.loads(call_item.arguments)) == ("function_call", "get_weather",
                                                                                 {"city": "Paris"})
    sent = chat_calls(fake_vllm)[-1].json
    assert sent["tools"] == [{"type": "function", "function": {k: WEATHER_TOOL[k] for k in (
        "name", "description", "parameters", "strict")}}]

    fake_vllm.chat_script = {"text": "It is 22C in Paris."}
    second = client.responses.create(
        model=dep.group.name, previous_response_id=first.id, tools=[WEATHER_TOOL],
        input=[{"type": "function_call_output", "call_id": call_item.call_id, "output": "22C"}])

    assert second.output_text == "It is 22C in Paris." and second.previous_response_id == first.id
    messages = chat_calls(fake_vllm)[-1].json["messages"]
    assert messages == [
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": call_item.call_id, "type": "function",
             "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}}]},
        {"role": "tool", "tool_call_id": call_item.call_id, "content": "22C"}]


def test_function_call_round_trip_without_storage(fake_vllm, vllm_route, make_key, sdk):
    """`store: false` and the whole conversation in `input` (what Codex does)."""
    dep = vllm_route(fake_vllm)
    client = sdk(make_key())
    fake_vllm.chat_script = {"text": "", "tool_calls": [{"name": "get_weather", "arguments": "{\"city\":\"Oslo\"}"}]}
    first = client.responses.create(model=dep.group.name, input="Oslo?", tools=[WEATHER_TOOL], store=False)
    assert first.store is False
    fake_vllm.chat_script = {"text": "Cold."}
    second = client.responses.create(
        model=dep.group.name, store=False, tools=[WEATHER_TOOL],
        input=[{"role": "user", "content": "Oslo?"}, *[item.model_dump(exclude_none=True) for item in first.output],
               {"type": "function_call_output", "call_id": first.output[0].call_id, "output": "-5C"}])
    assert second.output_text == "Cold."
    assert [m["role"] for m in chat_calls(fake_vllm)[-1].json["messages"]] == ["user", "assistant", "tool"]
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(first.id)  # not stored, as asked


class City(BaseModel):
    name: str
    population: int


def test_json_schema_output(fake_vllm, vllm_route, make_key, sdk):
    dep = vllm_route(fake_vllm)
    fake_vllm.chat_script = {"text": json.dumps({"name": "Paris", "population": 2100000})}
    parsed = sdk(make_key()).responses.parse(model=dep.group.name, input="Largest French city?", text_format=City)
    assert parsed.output_parsed == City(name="Paris", population=2100000)
    response_format = chat_calls(fake_vllm)[-1].json["response_format"]
    assert response_format["type"] == "json_schema"
    assert response_format["json_schema"]["name"] == "City" and response_format["json_schema"]["strict"] is True
    assert response_format["json_schema"]["schema"]["properties"].keys() == {"name", "population"}


def test_reasoning_comes_back_as_a_reasoning_item(fake_vllm, vllm_route, make_key, sdk):
    dep = vllm_route(fake_vllm)
    fake_vllm.chat_script = {"reasoning": "The user greets me.", "text": "Hi!"}
    client = sdk(make_key())
    with client.responses.stream(model=dep.group.name, input="Hello") as stream:
        kinds = [e.type for e in stream]
        final = stream.get_final_response()
    assert kinds.count("response.reasoning_text.delta") >= 2
    assert [o.type for o in final.output] == ["reasoning", "message"]
    assert final.output[0].content[0].text == "The user greets me." and final.output_text == "Hi!"


@pytest.mark.parametrize("extra, param", [
    ({"include": ["reasoning.encrypted_content"]}, "include"),
    ({"tools": [{"type": "web_search"}]}, "tools[0]"),
    ({"reasoning": {"summary": "auto"}}, "reasoning.summary"),
    ({"reasoning": {"effort": "high"}}, "reasoning.effort"),  # the deployment did not say it takes reasoning_effort
    ({"input": [{"type": "item_reference", "id": "msg_1"}]}, "input[0]"),
])
def test_what_chat_cannot_express_is_a_400_naming_it(fake_vllm, vllm_route, make_key, http, wait_for_log, extra,
                                                      param):
    dep = vllm_route(fake_vllm)
    response = http.post("/v1/responses", headers=bearer(make_key()),
                         json={"model": dep.group.name, "input": "x", **extra})
    error = assert_openai_error(response, 400, code="unsupported_parameter", param=param)
    assert param in error["message"]
    assert fake_vllm.received == []
    row = wait_for_log(response.headers["x-gateway-request-id"])
    assert (row.status, row.error_type, row.attempts) == (400, "unsupported_parameter", [])


def test_the_policy_may_drop_what_chat_cannot_express(fake_vllm, vllm_route, make_key, http, wait_for_log):
    dep = vllm_route(fake_vllm, policy_rules=[("drop", "include", "chat"), ("drop", "reasoning.summary", "any")])
    response = http.post("/v1/responses", headers=bearer(make_key()), json={
        "model": dep.group.name, "input": "x", "include": ["reasoning.encrypted_content"],
        "reasoning": {"summary": "auto"}, "client_metadata": None})
    assert response.status_code == 200, response.text
    assert chat_calls(fake_vllm)[-1].json == {"model": VLLM_MODEL, "messages": [{"role": "user", "content": "x"}]}
    row = wait_for_log(response.headers["x-gateway-request-id"])
    policy = row.attempts[0]["policy_changes"][1:]
    assert [(c["action"], c["path"]) for c in policy if c["action"] != "translate"] == [
        ("drop", "include"), ("drop", "reasoning.summary"), ("drop", "reasoning"), ("rewrite", "model")]
    assert ("translate", "client_metadata", None) in translations(row)  # a null: nothing to send, and said so


def test_reasoning_effort_where_the_upstream_takes_it(fake_vllm, vllm_route, make_key, http):
    dep = vllm_route(fake_vllm, chat_reasoning_effort=True)
    response = http.post("/v1/responses", headers=bearer(make_key()),
                         json={"model": dep.group.name, "input": "x", "reasoning": {"effort": "low"}})
    assert response.status_code == 200, response.text
    assert chat_calls(fake_vllm)[-1].json["reasoning_effort"] == "low"
    assert response.json()["reasoning"] == {"effort": "low", "summary": None}


def test_upstream_errors_pass_through(fake_vllm, vllm_route, make_key, http):
    dep = vllm_route(fake_vllm)
    fake_vllm.reject_params = {"temperature"}
    response = http.post("/v1/responses", headers=bearer(make_key()),
                         json={"model": dep.group.name, "input": "x", "temperature": 0.1})
    assert response.status_code == 400
    assert response.json()["error"] == {"message": "Unknown parameter: 'temperature'.",
                                        "type": "invalid_request_error", "param": "temperature",
                                        "code": "unknown_parameter"}


def test_stream_broken_midway_ends_with_failed(fake_vllm, vllm_route, make_key, http, wait_for_log):
    dep = vllm_route(fake_vllm)
    fake_vllm.drop_after_events = 3  # role chunk, two words, then the connection is cut
    with http.stream("POST", "/v1/responses", headers=bearer(make_key()),
                     json={"model": dep.group.name, "input": "x", "stream": True}) as response:
        events = parse_sse(response.read().decode())
    assert [e.event for e in events][-2:] == ["error", "response.failed"]
    assert [e.json()["sequence_number"] for e in events] == list(range(len(events)))
    assert events[-1].json()["response"]["id"] == events[0].json()["response"]["id"]
    row = wait_for_log(response.headers["x-gateway-request-id"])
    assert row.outcome == "broken_midstream"
