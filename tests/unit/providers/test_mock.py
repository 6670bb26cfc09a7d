"""routing/providers/mock.py: the real Responses event sequence, deterministic text, real usage."""

import orjson

from routing.providers import mock
from routing.upstream.sse import SseTap


def test_event_sequence_matches_the_responses_api():
    events = mock.response_events({"model": "demo", "input": "one two three"}, deltas=3)
    names = [name for name, _ in events]
    assert names == ["response.created", "response.in_progress", "response.output_item.added",
                     "response.content_part.added"] + ["response.output_text.delta"] * 3 + [
        "response.output_text.done", "response.content_part.done", "response.output_item.done", "response.completed"]
    assert [p["sequence_number"] for _, p in events] == list(range(len(events)))
    assert all(p["type"] == name for name, p in events)
    final = events[-1][1]["response"]
    assert final["usage"] == {"input_tokens": 3, "input_tokens_details": {"cached_tokens": 0}, "output_tokens": 3,
                              "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 6}
    assert events[0][1]["response"]["id"] == final["id"]


def test_text_is_deterministic():
    body = {"model": "demo", "input": "Hello"}
    assert mock.reply_words(body) == mock.reply_words(body)
    assert "".join(mock.reply_words(body)) == "This is a mock reply to: Hello"


async def test_answer_streams_and_stores():
    tap = SseTap()
    body = orjson.dumps({"model": "demo", "input": "hi", "stream": True})
    resp = await mock.answer("POST", "http://mock.invalid/v1/responses", body)
    assert resp.headers["Content-Type"].startswith("text/event-stream")
    while chunk := await resp.read_chunk():
        tap.feed(chunk)
    assert tap.terminal == "response.completed"
    url = f"http://mock.invalid/v1/responses/{tap.response_id}"
    got = await mock.answer("GET", url, None)
    assert got.status_code == 200 and orjson.loads(await got.read())["id"] == tap.response_id
    gone = await mock.answer("DELETE", url, None)
    assert orjson.loads(gone.content)["deleted"] is True
    assert (await mock.answer("GET", url, None)).status_code == 404
