"""routing/providers/mock.py: the real Responses event sequence, deterministic text, real usage."""

import httpx

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


async def test_transport_streams_and_stores():
    async with httpx.AsyncClient(transport=mock.Transport(), base_url=mock.ORIGIN) as client:
        tap = SseTap()
        async with client.stream("POST", "/v1/responses", json={"model": "demo", "input": "hi", "stream": True}) as resp:
            assert resp.headers["Content-Type"].startswith("text/event-stream")
            async for chunk in resp.aiter_bytes():
                tap.feed(chunk)
        assert tap.terminal == "response.completed"
        url = f"/v1/responses/{tap.response_id}"
        got = await client.get(url)
        assert got.status_code == 200 and got.json()["id"] == tap.response_id
        assert (await client.delete(url)).json()["deleted"] is True
        assert (await client.get(url)).status_code == 404
        assert (await client.post("/v1/responses", content=b"{not json")).status_code == 400
