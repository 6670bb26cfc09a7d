"""routing/bridge/request.py: a Responses request as a Chat Completions request (pure, table-driven)."""

import copy

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from routing.bridge import BridgeRefused
from routing.bridge.request import KEPT_BY_GATEWAY, NO_EQUIVALENT, PASSTHROUGH, to_chat
from routing.capabilities import ALL, CHAT_REASONING_EFFORT

CHAT_ONLY = frozenset({"chat"})


def chat(body, caps=CHAT_ONLY, history=None):
    return to_chat(body, capabilities=caps, response_id="resp_gw_1", history=history)


def paths(translation) -> list[tuple[str, str | None]]:
    return [(c["path"], c["to"]) for c in translation.changes]


# ---------------------------------------------------------------------------------------------------- tables

FUNCTION_TOOL = {"type": "function", "name": "get_weather", "description": "Weather by city", "strict": True,
                 "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}
CASES = [
    # (responses body minus model, expected chat body minus model, expected (path, to) of the translations after
    #  the first one)
    ({"input": "Hi"}, {"messages": [{"role": "user", "content": "Hi"}]}, [("input", "messages")]),
    ({"instructions": "Be brief.", "input": "Hi"},
     {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]},
     [("instructions", "messages[0]"), ("input", "messages")]),
    ({"input": [{"role": "developer", "content": "Rules"}, {"role": "user", "content": "Hi"}]},
     {"messages": [{"role": "system", "content": "Rules"}, {"role": "user", "content": "Hi"}]},
     [("input", "messages"), ("input[role=developer]", "messages[role=system]")]),
    ({"input": [{"type": "message", "role": "user", "id": "msg_1", "status": "completed",
                 "content": [{"type": "input_text", "text": "What is this?"},
                             {"type": "input_image", "image_url": "https://x/cat.png", "detail": "low"}]}]},
     {"messages": [{"role": "user", "content": [
         {"type": "text", "text": "What is this?"},
         {"type": "image_url", "image_url": {"url": "https://x/cat.png", "detail": "low"}}]}]},
     [("input", "messages")]),
    ({"input": [{"role": "user", "content": "Weather?"},
                {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Let me see."}]},
                {"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "get_weather",
                 "arguments": "{\"city\":\"Paris\"}"},
                {"type": "function_call", "call_id": "call_2", "name": "get_weather", "arguments": "{}"},
                {"type": "function_call_output", "call_id": "call_1", "output": "22C"},
                {"type": "function_call_output", "call_id": "call_2",
                 "output": [{"type": "input_text", "text": "n/a"}]}]},
     {"messages": [
         {"role": "user", "content": "Weather?"},
         {"role": "assistant", "content": "Let me see.", "tool_calls": [
             {"id": "call_1", "type": "function",
              "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}},
             {"id": "call_2", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}]},
         {"role": "tool", "tool_call_id": "call_1", "content": "22C"},
         {"role": "tool", "tool_call_id": "call_2", "content": "n/a"}]},
     [("input", "messages")]),
    ({"input": [{"type": "function_call", "call_id": "c", "name": "f", "arguments": "{}"}]},
     {"messages": [{"role": "assistant", "content": None,
                    "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}]}]},
     [("input", "messages")]),
    ({"input": [{"type": "reasoning", "id": "rs_1", "summary": []}, {"role": "user", "content": "Go on"}]},
     {"messages": [{"role": "user", "content": "Go on"}]},
     [("input", "messages"), ("input[type=reasoning]", None)]),
    ({"tools": [FUNCTION_TOOL], "tool_choice": {"type": "function", "name": "get_weather"}},
     {"tools": [{"type": "function", "function": {
         "name": "get_weather", "description": "Weather by city", "parameters": FUNCTION_TOOL["parameters"],
         "strict": True}}], "tool_choice": {"type": "function", "function": {"name": "get_weather"}}},
     [("tools", "tools"), ("tool_choice", "tool_choice")]),
    ({"tool_choice": "required", "parallel_tool_calls": False},
     {"tool_choice": "required", "parallel_tool_calls": False}, []),
    ({"max_output_tokens": 50, "temperature": 0.2, "top_p": 0.9},
     {"max_completion_tokens": 50, "temperature": 0.2, "top_p": 0.9},
     [("max_output_tokens", "max_completion_tokens")]),
    ({"text": {"format": {"type": "json_schema", "name": "city", "strict": True,
                          "schema": {"type": "object", "properties": {"name": {"type": "string"}}}},
               "verbosity": "low"}},
     {"response_format": {"type": "json_schema", "json_schema": {
         "name": "city", "strict": True, "schema": {"type": "object", "properties": {"name": {"type": "string"}}}}},
      "verbosity": "low"},
     [("text.format", "response_format"), ("text.verbosity", "verbosity")]),
    ({"text": {"format": {"type": "json_object"}}}, {"response_format": {"type": "json_object"}},
     [("text.format", "response_format")]),
    ({"store": True, "metadata": {"a": "b"}, "background": False, "truncation": "disabled", "include": []},
     {},
     [("store", None), ("metadata", None), ("background", None), ("truncation", None), ("include", None)]),
    ({"stream": True, "stream_options": {"include_obfuscation": False}, "user": "u", "service_tier": "auto",
      "prompt_cache_key": "k", "safety_identifier": "s", "top_k": 40},  # top_k: unknown to us, e.g. vLLM's own
     {"stream": True, "stream_options": {"include_obfuscation": False}, "user": "u",
      "service_tier": "auto", "prompt_cache_key": "k", "safety_identifier": "s", "top_k": 40}, []),
    ({"reasoning": {"effort": None, "summary": None}}, {},
     [("reasoning.effort", None), ("reasoning.summary", None)]),
]


@pytest.mark.parametrize("body, expected, translations", CASES)
def test_translation_table(body, expected, translations):
    client = {"model": "m", **body}
    before = copy.deepcopy(client)
    result = chat(client)
    assert result.body == {"model": "m", **expected}
    assert result.changes[0] == {"action": "translate", "path": "", "to": "chat/completions",
                                 "bridge": "/v1/responses served by the upstream's /chat/completions"}
    assert paths(result)[1:] == translations
    assert all(c["action"] == "translate" for c in result.changes)
    assert result.leftovers == {}
    assert client == before  # the client's body is never changed


def test_counts_are_in_the_log_entries():
    result = chat({"model": "m", "instructions": "x", "input": [
        {"role": "developer", "content": "a"}, {"role": "developer", "content": "b"}, {"type": "reasoning"},
        {"role": "user", "content": "c"}]})
    by_path = {c["path"]: c for c in result.changes}
    assert by_path["input"]["items"] == 4 and by_path["input"]["messages"] == 3
    assert by_path["input[role=developer]"]["count"] == 2
    assert by_path["input[type=reasoning]"]["count"] == 1


def test_reasoning_effort_only_where_the_upstream_takes_it():
    body = {"model": "m", "input": "x", "reasoning": {"effort": "low"}}
    with_it = chat(body, caps=CHAT_ONLY | {CHAT_REASONING_EFFORT})
    assert with_it.body["reasoning_effort"] == "low" and "reasoning" not in with_it.body
    assert ("reasoning.effort", "reasoning_effort") in paths(with_it)
    without = chat(body)
    assert without.body["reasoning"] == {"effort": "low"} and "reasoning_effort" not in without.body
    assert without.leftovers == {"reasoning.effort": "low"}


@pytest.mark.parametrize("key, value", [
    ("include", ["reasoning.encrypted_content"]), ("truncation", "auto"), ("background", True),
    ("max_tool_calls", 3), ("top_logprobs", 2), ("client_metadata", {"x": 1}), ("conversation", "conv_1"),
])
def test_no_equivalent_stays_as_a_leftover(key, value):
    result = chat({"model": "m", "input": "x", key: value})
    assert result.body[key] == value and result.leftovers == {key: value}


def test_nested_leftovers():
    result = chat({"model": "m", "reasoning": {"summary": "auto", "effort": "high"}, "text": {"other": 1}},
                  caps=ALL)
    assert result.leftovers == {"reasoning.summary": "auto", "text.other": 1}
    assert result.body["reasoning"] == {"summary": "auto"} and result.body["text"] == {"other": 1}
    assert result.body["reasoning_effort"] == "high"


@pytest.mark.parametrize("body, param", [
    ({"tools": [{"type": "web_search"}]}, "tools[0]"),
    ({"tools": [FUNCTION_TOOL, {"type": "custom", "name": "apply_patch"}]}, "tools[1]"),
    ({"tools": [dict(FUNCTION_TOOL, defer_loading=True)]}, "tools[0].defer_loading"),
    ({"tools": "nope"}, "tools"),
    ({"tool_choice": {"type": "allowed_tools", "mode": "auto", "tools": []}}, "tool_choice"),
    ({"text": {"format": {"type": "grammar"}}}, "text.format"),
    ({"text": {"format": {"type": "json_schema", "name": "x", "schema": {}, "extra": 1}}}, "text.format.extra"),
    ({"input": 5}, "input"),
    ({"input": [{"type": "web_search_call", "id": "ws_1"}]}, "input[0]"),
    ({"input": [{"type": "item_reference", "id": "msg_1"}]}, "input[0]"),
    ({"input": [{"role": "user", "content": [{"type": "input_file", "file_id": "f"}]}]}, "input[0].content[0]"),
    ({"input": [{"role": "user", "content": [{"type": "input_image", "file_id": "f"}]}]},
     "input[0].content[0].image_url"),
    ({"input": [{"role": "critic", "content": "x"}]}, "input[0].role"),
    ({"input": [{"type": "function_call", "name": "f", "arguments": "{}"}]}, "input[0].call_id"),
    ({"input": [{"type": "function_call_output", "call_id": "c",
                 "output": [{"type": "input_image", "image_url": "u"}]}]}, "input[0].output[0]"),
    ({"instructions": ["x"]}, "instructions"),
])
def test_what_chat_cannot_express_is_refused_naming_it(body, param):
    with pytest.raises(BridgeRefused) as refused:
        chat({"model": "m", **body})
    assert refused.value.param == param and param in refused.value.message


def test_history_comes_first_and_is_listed():
    history = [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Hi"}], "id": "msg_a"},
               {"type": "reasoning", "id": "rs_a", "summary": []},
               {"type": "message", "role": "assistant", "id": "msg_b",
                "content": [{"type": "output_text", "text": "Hello", "annotations": []}]}]
    result = chat({"model": "m", "instructions": "Sys", "input": "And now?", "previous_response_id": "resp_gw_0"},
                  history=history)
    assert result.body["messages"] == [{"role": "system", "content": "Sys"}, {"role": "user", "content": "Hi"},
                                       {"role": "assistant", "content": "Hello"},
                                       {"role": "user", "content": "And now?"}]
    by_path = {c["path"]: c for c in result.changes}
    assert by_path["previous_response_id"]["items"] == 3 and by_path["previous_response_id"]["messages"] == 2
    assert by_path["input[type=reasoning]"]["count"] == 1
    assert "previous_response_id" not in result.body


def test_context_repeats_the_request_parameters():
    result = chat({"model": "m", "input": "x", "store": False, "tools": [FUNCTION_TOOL], "temperature": 0.5,
                   "instructions": "Sys", "metadata": {"k": "v"}})
    ctx = result.context
    assert ctx.response_id == "resp_gw_1" and ctx.store is False and ctx.model == "m"
    assert ctx.echo == {"instructions": "Sys", "metadata": {"k": "v"}, "store": False, "temperature": 0.5,
                        "tools": [FUNCTION_TOOL]}


# ------------------------------------------------------------------------------- nothing added that is not listed

_VALUES = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.text(max_size=5),
                    st.lists(st.integers(0, 3), max_size=2),
                    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))
_KNOWN = sorted(PASSTHROUGH | KEPT_BY_GATEWAY | NO_EQUIVALENT - {"model"})


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(_KNOWN + ["top_k", "x_extra"]), _VALUES, max_size=6),
       st.sampled_from([None, "Hi", [{"role": "user", "content": "Hi"}]]),
       st.booleans())
def test_every_key_sent_is_the_clients_or_listed(extra, text_input, with_tools):
    body = {"model": "m", **extra}
    if text_input is not None:
        body["input"] = text_input
    if with_tools:
        body.update(tools=[FUNCTION_TOOL], max_output_tokens=9, text={"format": {"type": "text"}, "verbosity": "low"})
    result = chat(body)
    listed = {c["to"].split("[")[0].split(".")[0] for c in result.changes if c["to"]}
    for key, value in result.body.items():
        if key in body and key not in listed:
            assert value is body[key], key  # passed through: the client's own value, untouched
        else:
            assert key in listed, key  # made by a translation, and the translation is in the log
    for key in body:
        consumed = {c["path"].split("[")[0].split(".")[0] for c in result.changes}
        assert key in result.body or key in consumed, key  # nothing disappears without an entry


NAMESPACE = {"type": "namespace", "name": "mcp__docs", "description": "Docs server.", "tools": [
    {"type": "function", "name": "search", "description": "Search.", "parameters": {"type": "object"}},
    {"type": "function", "name": "fetch", "parameters": {"type": "object"}}]}


def test_namespace_tools_become_prefixed_functions():
    result = chat({"model": "m", "tools": [FUNCTION_TOOL, NAMESPACE], "input": [
        {"type": "function_call", "call_id": "c1", "namespace": "mcp__docs", "name": "search", "arguments": "{}"}]})
    assert [t["function"]["name"] for t in result.body["tools"]] == ["get_weather", "mcp__docs__search",
                                                                     "mcp__docs__fetch"]
    assert result.body["tools"][1]["function"]["description"] == "Docs server.\n\nSearch."
    assert result.body["tools"][2]["function"]["description"] == "Docs server."
    assert result.body["messages"][0]["tool_calls"][0]["function"]["name"] == "mcp__docs__search"
    entry = next(c for c in result.changes if c["path"] == "tools[1]")
    assert entry == {"action": "translate", "path": "tools[1]", "to": "tools", "namespace": "mcp__docs",
                     "functions": 2, "names": "mcp__docs__<name>"}
    assert result.context.tool_name("mcp__docs__fetch") == ("fetch", "mcp__docs")
    assert result.context.tool_name("get_weather") == ("get_weather", None)


@pytest.mark.parametrize("tools, param", [
    ([{"type": "namespace", "name": "ns", "tools": [{"type": "web_search"}]}], "tools[0].tools[0]"),
    ([{"type": "namespace", "name": "ns", "tools": "x"}], "tools[0].tools"),
    ([dict(FUNCTION_TOOL, name="a__b"), {"type": "namespace", "name": "a", "tools": [
        {"type": "function", "name": "b"}]}], "tools"),  # the same name twice in Chat
])
def test_namespaces_chat_cannot_express(tools, param):
    with pytest.raises(BridgeRefused) as refused:
        chat({"model": "m", "tools": tools})
    assert refused.value.param == param
