"""routing/providers/mock.py: the real Responses event sequence, deterministic text, real usage."""

import httpx
import orjson

from routing.providers import mock
from routing.sse import SseTap


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


async def test_transport_streams_and_stores():
    async with httpx.AsyncClient(transport=mock.transport()) as client:
        tap = SseTap()
        body = {"model": "demo", "input": "hi", "stream": True}
        async with client.stream("POST", "http://mock.invalid/v1/responses", json=body) as resp:
            async for chunk in resp.aiter_raw():
                tap.feed(chunk)
        assert resp.headers["content-type"].startswith("text/event-stream")
        assert tap.terminal == "response.completed"
        got = await client.get(f"http://mock.invalid/v1/responses/{tap.response_id}")
        assert got.status_code == 200 and orjson.loads(got.content)["id"] == tap.response_id
        gone = await client.delete(f"http://mock.invalid/v1/responses/{tap.response_id}")
        assert orjson.loads(gone.content)["deleted"] is True
        assert (await client.get(f"http://mock.invalid/v1/responses/{tap.response_id}")).status_code == 404
