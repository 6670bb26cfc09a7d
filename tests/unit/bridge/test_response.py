"""routing/bridge/response.py: a chat completion as a Response object (pure)."""

import pytest

from routing.bridge import BadAnswer, Context
from routing.bridge.response import from_completion, usage_of

CTX = Context(response_id="resp_gw_1", model="qwen", created_at=1700000000,
              echo={"instructions": "Sys", "temperature": 0.3, "tools": [{"type": "function", "name": "f"}],
                    "metadata": {"k": "v"}, "max_output_tokens": 99})
USAGE = {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18,
         "prompt_tokens_details": {"cached_tokens": 3}, "completion_tokens_details": {"reasoning_tokens": 2}}


def completion(message: dict, finish="stop", **extra) -> dict:
    return {"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "qwen-2.5",
            "choices": [{"index": 0, "message": {"role": "assistant", **message}, "finish_reason": finish}],
            "usage": USAGE, **extra}


def test_text_answer():
    response = from_completion(completion({"content": "Hello"}), CTX)
    assert response["id"] == "resp_gw_1" and response["object"] == "response"
    assert response["status"] == "completed" and response["incomplete_details"] is None
    assert response["completed_at"] == 1700000000 and response["model"] == "qwen-2.5"
    [item] = response["output"]
    assert item["type"] == "message" and item["role"] == "assistant" and item["status"] == "completed"
    assert item["id"].startswith("msg_gw_")
    assert item["content"] == [{"type": "output_text", "annotations": [], "logprobs": [], "text": "Hello"}]
    assert response["usage"] == {"input_tokens": 11, "input_tokens_details": {"cached_tokens": 3},
                                 "output_tokens": 7, "output_tokens_details": {"reasoning_tokens": 2},
                                 "total_tokens": 18}
    # the request's parameters, repeated
    assert (response["instructions"], response["temperature"], response["metadata"], response["max_output_tokens"]) \
        == ("Sys", 0.3, {"k": "v"}, 99)
    assert response["tools"] == [{"type": "function", "name": "f"}] and response["store"] is True


def test_reasoning_then_text_then_tool_calls():
    message = {"reasoning_content": "Think.", "content": "Calling.", "tool_calls": [
        {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{\"a\":1}"}},
        {"id": "call_2", "type": "function", "function": {"name": "g", "arguments": {"b": 2}}}]}
    response = from_completion(completion(message, finish="tool_calls"), CTX)
    kinds = [item["type"] for item in response["output"]]
    assert kinds == ["reasoning", "message", "function_call", "function_call"]
    reasoning, _, first, second = response["output"]
    assert reasoning["content"] == [{"type": "reasoning_text", "text": "Think."}] and reasoning["summary"] == []
    assert (first["call_id"], first["name"], first["arguments"]) == ("call_1", "f", "{\"a\":1}")
    assert second["arguments"] == "{\"b\":2}"  # an object (a few servers send one) becomes its JSON text
    assert first["id"].startswith("fc_gw_") and response["status"] == "completed"


def test_vllm_reasoning_field_and_no_content():
    response = from_completion(completion({"reasoning": "Hmm", "content": None}), CTX)
    assert [item["type"] for item in response["output"]] == ["reasoning"]


@pytest.mark.parametrize("finish, reason", [("length", "max_output_tokens"), ("content_filter", "content_filter")])
def test_incomplete(finish, reason):
    response = from_completion(completion({"content": "Cut"}, finish=finish), CTX)
    assert response["status"] == "incomplete" and response["incomplete_details"] == {"reason": reason}
    assert response["output"][0]["status"] == "incomplete" and response["completed_at"] is None


def test_refusal():
    response = from_completion(completion({"content": None, "refusal": "No."}), CTX)
    assert response["output"][0]["content"] == [{"type": "refusal", "refusal": "No."}]


@pytest.mark.parametrize("bad", [
    {}, {"choices": []}, {"choices": ["x"]}, {"choices": [{"index": 0}]}, [],
    completion({"tool_calls": [{"id": "c", "type": "custom", "custom": {"name": "x", "input": ""}}]}),
])
def test_untranslatable_answers(bad):
    with pytest.raises(BadAnswer):
        from_completion(bad, CTX)


@pytest.mark.parametrize("usage, expected", [
    (None, None), ({"prompt_tokens": 1}, None), ({"prompt_tokens": True, "completion_tokens": 1}, None),
    ({"prompt_tokens": 2, "completion_tokens": 3},
     {"input_tokens": 2, "input_tokens_details": {"cached_tokens": 0}, "output_tokens": 3,
      "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 5}),
])
def test_usage(usage, expected):
    assert usage_of(usage) == expected


def test_namespaced_tool_calls_get_their_namespace_back():
    ctx = Context(response_id="r", model="m", echo={}, namespaced={"mcp__docs__search": ("mcp__docs", "search")})
    message = {"content": None, "tool_calls": [
        {"id": "c1", "type": "function", "function": {"name": "mcp__docs__search", "arguments": "{}"}},
        {"id": "c2", "type": "function", "function": {"name": "plain", "arguments": "{}"}}]}
    first, second = from_completion(completion(message, finish="tool_calls"), ctx)["output"]
    assert (first["name"], first["namespace"]) == ("search", "mcp__docs")
    assert second["name"] == "plain" and "namespace" not in second
