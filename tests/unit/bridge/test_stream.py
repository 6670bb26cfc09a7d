"""routing/bridge/stream.py: chat chunks as the Responses event sequence (pure). Every sequence is also fed
to the openai SDK's own stream accumulator (what `client.responses.stream()` runs), which refuses events out
of order, deltas for items never announced and items whose identity changes."""

import pytest
from openai import omit
from openai._models import construct_type_unchecked
from openai.lib.streaming.responses._responses import ResponseStreamState
from openai.types.responses import ResponseStreamEvent

from routing.bridge import BadAnswer, Context
from routing.bridge.stream import MAX_ITEMS, StreamTranslator

CTX = Context(response_id="resp_gw_s", model="qwen", created_at=1700000000, echo={"tools": []})
USAGE = {"prompt_tokens": 4, "completion_tokens": 6, "total_tokens": 10}


def chunk(delta: dict | None = None, finish=None, **extra) -> dict:
    choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}]
    return {"id": "chatcmpl-1", "object": "chat.completion.chunk", "model": "qwen-2.5", "choices": choices, **extra}


def tool(index: int, *, id=None, name=None, arguments=None) -> dict:
    call = {"index": index, "function": {}}
    if id:
        call.update(id=id, type="function")
    if name is not None:
        call["function"]["name"] = name
    if arguments is not None:
        call["function"]["arguments"] = arguments
    return call


def run(chunks: list[dict], *, finish: bool = True, max_bytes: int = 10_000) -> list[tuple[str, dict]]:
    translator = StreamTranslator(Context(**{f: getattr(CTX, f) for f in CTX.__slots__}), max_bytes=max_bytes)
    events = translator.start()
    for c in chunks:
        events += translator.feed(c)
    if finish:
        events += translator.finish()
    return events


def sdk_final(events: list[tuple[str, dict]]):
    """What the openai SDK's stream helper makes of these events (it raises on anything malformed)."""
    state = ResponseStreamState(input_tools=omit, text_format=omit)
    for _, payload in events:
        state.handle_event(construct_type_unchecked(type_=ResponseStreamEvent, value=payload))
    return state._completed_response


def names(events) -> list[str]:
    return [name for name, _ in events]


def test_text_stream():
    events = run([chunk({"role": "assistant", "content": ""}), chunk({"content": "Hel"}), chunk({"content": "lo"}),
                  chunk({}, finish="stop"), chunk(usage=USAGE)])
    assert names(events) == [
        "response.created", "response.in_progress", "response.output_item.added", "response.content_part.added",
        "response.output_text.delta", "response.output_text.delta", "response.output_text.done",
        "response.content_part.done", "response.output_item.done", "response.completed"]
    assert [payload["sequence_number"] for _, payload in events] == list(range(len(events)))
    assert all(payload["type"] == name for name, payload in events)
    created = events[0][1]["response"]
    assert created["id"] == "resp_gw_s" and created["status"] == "in_progress" and created["usage"] is None
    item_id = events[2][1]["item"]["id"]
    assert all(p["item_id"] == item_id for n, p in events[3:8])
    final = events[-1][1]["response"]
    assert final["status"] == "completed" and final["output"][0]["content"][0]["text"] == "Hello"
    assert final["usage"]["input_tokens"] == 4 and final["usage"]["total_tokens"] == 10
    assert final["model"] == "qwen-2.5"
    parsed = sdk_final(events)
    assert parsed.output_text == "Hello" and parsed.id == "resp_gw_s"


def test_tool_calls_split_across_chunks():
    events = run([
        chunk({"role": "assistant", "content": None}),
        chunk({"tool_calls": [tool(0, id="call_a", name="get_", arguments="")]}),
        chunk({"tool_calls": [tool(0, name="weather")]}),  # a name in pieces (before the arguments start)
        chunk({"tool_calls": [tool(0, arguments="{\"ci")]}),
        chunk({"tool_calls": [tool(0, arguments="ty\": \"Paris\"}")]}),
        chunk({"tool_calls": [tool(1, id="call_b", name="get_time", arguments="{}")]}),
        chunk({}, finish="tool_calls"),
    ])
    assert names(events)[2:] == [
        "response.output_item.added", "response.function_call_arguments.delta",
        "response.function_call_arguments.delta", "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done", "response.output_item.done",
        "response.function_call_arguments.done", "response.output_item.done", "response.completed"]
    added = events[2][1]["item"]
    assert (added["type"], added["name"], added["call_id"], added["arguments"]) == (
        "function_call", "get_weather", "call_a", "")
    done = events[7][1]
    assert done["arguments"] == "{\"city\": \"Paris\"}" and done["output_index"] == 0
    output = events[-1][1]["response"]["output"]
    assert [(o["call_id"], o["name"], o["arguments"], o["status"]) for o in output] == [
        ("call_a", "get_weather", "{\"city\": \"Paris\"}", "completed"), ("call_b", "get_time", "{}", "completed")]
    parsed = sdk_final(events)
    assert [o.arguments for o in parsed.output] == ["{\"city\": \"Paris\"}", "{}"]


def test_interleaved_tool_calls_keep_their_own_items():
    events = run([
        chunk({"tool_calls": [tool(0, id="a", name="f", arguments="{\"x\":"),
                              tool(1, id="b", name="g", arguments="[")]}),
        chunk({"tool_calls": [tool(1, arguments="1]"), tool(0, arguments="2}")]}), chunk({}, finish="tool_calls")])
    output = events[-1][1]["response"]["output"]
    assert [o["arguments"] for o in output] == ["{\"x\":2}", "[1]"]
    sdk_final(events)


def test_reasoning_then_text_then_call_without_arguments():
    events = run([chunk({"reasoning_content": "Think"}), chunk({"reasoning_content": "ing"}),
                  chunk({"content": "Answer"}), chunk({"tool_calls": [tool(0, id="c", name="noop")]}),
                  chunk({}, finish="tool_calls")])
    assert names(events)[2:] == [
        "response.output_item.added", "response.content_part.added", "response.reasoning_text.delta",
        "response.reasoning_text.delta", "response.reasoning_text.done", "response.content_part.done",
        "response.output_item.done",
        "response.output_item.added", "response.content_part.added", "response.output_text.delta",
        "response.output_text.done", "response.content_part.done", "response.output_item.done",
        "response.output_item.added", "response.function_call_arguments.done", "response.output_item.done",
        "response.completed"]
    output = events[-1][1]["response"]["output"]
    assert [o["type"] for o in output] == ["reasoning", "message", "function_call"]
    assert output[0]["content"][0]["text"] == "Thinking" and output[2]["arguments"] == ""
    sdk_final(events)


def test_azure_prompt_filter_chunk_and_empty_deltas_are_nothing():
    events = run([{"choices": [], "id": "", "model": "", "object": "", "prompt_filter_results": []},
                  chunk({"role": "assistant", "content": ""}), chunk({"content": "x"}), chunk({}, finish="stop")])
    assert names(events).count("response.output_item.added") == 1


def test_length_ends_incomplete():
    events = run([chunk({"content": "Cut"}), chunk({}, finish="length")])
    final = events[-1]
    assert final[0] == "response.incomplete"
    assert final[1]["response"]["incomplete_details"] == {"reason": "max_output_tokens"}
    assert final[1]["response"]["output"][0]["status"] == "incomplete"


def test_error_chunk_fails_the_stream_and_nothing_follows():
    translator = StreamTranslator(CTX, max_bytes=100)
    events = translator.start() + translator.feed(chunk({"content": "a"}))
    events += translator.feed({"error": {"message": "overloaded", "code": "server_busy"}})
    assert names(events)[-2:] == ["error", "response.failed"]
    error = events[-2][1]
    assert error["code"] == "server_busy" and error["error"]["message"] == "overloaded"
    assert events[-1][1]["response"]["status"] == "failed"
    assert translator.feed(chunk({"content": "b"})) == [] and translator.finish() == []
    assert [p["sequence_number"] for _, p in events] == list(range(len(events)))


def test_fail_continues_the_sequence():
    translator = StreamTranslator(CTX, max_bytes=100)
    events = translator.start() + translator.feed(chunk({"content": "a"}))
    events += translator.fail("idle_timeout", "quiet")
    assert [p["sequence_number"] for _, p in events] == list(range(len(events)))
    assert translator.fail("again", "x") == []


def test_bounds():
    with pytest.raises(BadAnswer):
        run([chunk({"content": "x" * 11})], max_bytes=10)
    with pytest.raises(BadAnswer):
        run([chunk({"tool_calls": [tool(i, id=f"c{i}", name="f", arguments="{}") for i in range(MAX_ITEMS + 1)]})],
            max_bytes=10**6)
    with pytest.raises(BadAnswer):
        run([chunk({"tool_calls": [{"index": "0", "function": {"arguments": "x"}}]})])


def test_namespaced_tool_call_in_a_stream():
    ctx = Context(response_id="r", model="m", echo={}, namespaced={"ns__f": ("ns", "f")})
    translator = StreamTranslator(ctx, max_bytes=1000)
    events = translator.start() + translator.feed(chunk({"tool_calls": [tool(0, id="c", name="ns__f", arguments="{")]}))
    events += translator.feed(chunk({"tool_calls": [tool(0, arguments="}")]}, finish="tool_calls"))
    events += translator.finish()
    added = next(p for n, p in events if n == "response.output_item.added")["item"]
    done = next(p for n, p in events if n == "response.function_call_arguments.done")
    assert (added["name"], added["namespace"], done["name"]) == ("f", "ns", "f")
    assert events[-1][1]["response"]["output"][0]["namespace"] == "ns"
    sdk_final(events)
