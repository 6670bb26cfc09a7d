"""SSE relay through the real server (routing/upstream/relay.py, routing/forwarding/response.py): frames reach
the client as the upstream produces them, a broken upstream ends the stream with a
well-formed error, and a client that goes away is noticed, logged, and its upstream call
closed."""

import threading
import time

import httpx
import openai
import pytest

from routing.models import RequestLog
from tests.fakes.upstream import FakeUpstream
from tests.integration.server import UPSTREAM_KEY, UPSTREAM_MODEL, bearer, eventually, parse_sse


class WatchedFake(FakeUpstream):
    """A fake upstream that notes when a stream handler finishes (normally or because the
    gateway closed the connection) and how many frames it wrote before."""

    def __init__(self) -> None:
        super().__init__("azure", api_key=UPSTREAM_KEY, deployments=(UPSTREAM_MODEL,))
        self.stream_ended = threading.Event()
        self.ended_at: float | None = None

    async def _stream(self, request, frames):
        try:
            return await super()._stream(request, frames)
        finally:
            self.ended_at = time.monotonic()
            self.stream_ended.set()


@pytest.fixture
def watched_fake():
    with WatchedFake() as fake:
        yield fake


def read_frames_timed(response: httpx.Response, limit: int | None = None, on_frame=None) -> list[tuple[float, bytes]]:
    """(arrival time, frame) for each complete SSE frame, as the bytes come off the socket;
    `on_frame()` is called as each one arrives."""
    frames, buf = [], b""
    for chunk in response.iter_raw():
        buf += chunk
        while b"\n\n" in buf:
            frame, buf = buf.split(b"\n\n", 1)
            frames.append((time.monotonic(), frame + b"\n\n"))
            if on_frame is not None:
                on_frame()
            if limit is not None and len(frames) >= limit:
                return frames
    assert buf == b"", f"stream ended inside a frame: {buf[:100]!r}"
    return frames


def test_curl_style_seed_request_streams_incrementally(fake_azure, azure_route, make_key, http, wait_for_log):
    """`curl -N URL -H 'Authorization: Bearer KEY' -d '{"model":…,"input":"Hello","stream":true}'`."""
    dep = azure_route(fake_azure)
    key = make_key()
    # Lockstep: the fake sends each event only after this reader has received the one before, so a
    # gateway that held frames back (buffered, batched) would end the stream short. Waits on events,
    # not on time: it holds however slow the machine is.
    fake_azure.lockstep = threading.Semaphore(0)
    body = '{"model":"%s","input":"Hello","stream":true}' % dep.group.name

    with http.stream("POST", "/v1/responses", content=body, headers={
            **bearer(key), "content-type": "application/x-www-form-urlencoded", "accept": "*/*"}) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["cache-control"] == "no-cache"
        timed = read_frames_timed(response, on_frame=fake_azure.lockstep.release)

    events = parse_sse(b"".join(frame for _, frame in timed).decode())
    assert [e.event for e in events][0] == "response.created" and events[-1].event == "response.completed"
    assert len(events) == 13, "a frame was held back, so the upstream stopped waiting for the reader"
    assert all(e.event == e.json()["type"] for e in events), "event: lines preserved and matching the data"
    row = wait_for_log(response.headers["x-gateway-request-id"])
    assert (row.status, row.stream, row.output_tokens) == (200, True, 5)
    assert row.ttfb_ms < 1000, "ttfb is the first frame, not the end of the stream"
    assert fake_azure.last().json == {"model": UPSTREAM_MODEL, "input": "Hello", "stream": True}


def test_client_disconnect_mid_stream(watched_fake, azure_route, make_key, http, wait_for_log):
    dep = azure_route(watched_fake)
    key = make_key()
    watched_fake.event_delay, watched_fake.deltas = 0.3, 20  # 28 events: ~8 s if nobody hung up

    with http.stream("POST", "/v1/responses", json={"model": dep.group.name, "input": "hi", "stream": True},
                     headers=bearer(key)) as response:
        request_id = response.headers["x-gateway-request-id"]
        assert len(read_frames_timed(response, limit=2)) == 2
    closed_at = time.monotonic()  # leaving the block closed the half-read response: the connection is gone

    assert watched_fake.stream_ended.wait(3), "the gateway kept the upstream stream open"
    assert watched_fake.ended_at - closed_at < 2.0
    row = wait_for_log(request_id)
    assert (row.status, row.client_disconnected, row.stream) == (499, True, True)
    assert row.error_type == "client_disconnected"
    assert 0 < row.bytes_out
    assert row.deployment_id == dep.id
    # The server is fine and serves the next request.
    watched_fake.event_delay = 0
    ok = http.post("/v1/responses", json={"model": dep.group.name, "input": "hi"}, headers=bearer(key))
    assert ok.status_code == 200


def test_upstream_drops_mid_stream(fake_azure, azure_route, make_key, http, wait_for_log):
    dep = azure_route(fake_azure)
    fake_azure.drop_after_events = 5

    started = time.monotonic()
    response = http.post("/v1/responses", json={"model": dep.group.name, "input": "hi", "stream": True},
                         headers=bearer(make_key()), timeout=10)
    assert time.monotonic() - started < 5, "the stream hung after the upstream dropped"

    assert response.status_code == 200
    events = parse_sse(response.text)
    assert [e.event for e in events[:5]] == ["response.created", "response.in_progress",
                                             "response.output_item.added", "response.content_part.added",
                                             "response.output_text.delta"]
    error, failed = events[5], events[6]
    assert len(events) == 7
    assert error.event == "error"
    data = error.json()
    assert data["type"] == "error" and data["sequence_number"] == 5
    assert data["code"] == "upstream_disconnected" and data["message"]
    assert failed.event == "response.failed"
    failed_response = failed.json()["response"]
    assert failed_response["id"] == events[0].json()["response"]["id"]
    assert failed_response["status"] == "failed" and failed.json()["sequence_number"] == 6
    row = wait_for_log(response.headers["x-gateway-request-id"])
    assert row.error_type == "upstream_disconnected"
    assert row.client_disconnected is False
    assert row.status == 200  # the status line had gone out; the error is in the stream and the row
    assert row.bytes_out == len(response.content)


def test_upstream_drop_surfaces_as_sdk_error(fake_azure, azure_route, make_key, sdk):
    dep = azure_route(fake_azure)
    fake_azure.drop_after_events = 6
    seen = []
    with pytest.raises(openai.APIError) as caught:
        for event in sdk(make_key()).responses.create(model=dep.group.name, input="hi", stream=True):
            seen.append(event.type)
    assert seen[-1] == "response.output_text.delta" and len(seen) == 6
    assert "upstream stream failed" in caught.value.message.lower()


def test_idle_upstream_mid_stream_ends_with_error(fake_azure, azure_route, make_key, http, wait_for_log):
    dep = azure_route(fake_azure, idle_timeout=0.3)
    fake_azure.event_delay = 0.8
    response = http.post("/v1/responses", json={"model": dep.group.name, "input": "hi", "stream": True},
                         headers=bearer(make_key()), timeout=10)
    events = parse_sse(response.text)
    assert [e.event for e in events] == ["response.created", "error", "response.failed"]
    assert events[1].json()["code"] == "idle_timeout"
    assert wait_for_log(response.headers["x-gateway-request-id"]).error_type == "idle_timeout"


# ------------------------------------------------------------------ client gone before the first byte


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "non-stream"])
def test_client_disconnect_before_first_byte_is_logged(stream, fake_azure, azure_route, make_key, http):
    """A client that gives up while the upstream is still thinking (the common case with slow
    reasoning models) must still get its audit row: status 499, client_disconnected."""
    dep = azure_route(fake_azure)
    key = make_key()
    fake_azure.hang_seconds = 1.5
    with httpx.Client(base_url=str(http.base_url), timeout=httpx.Timeout(5, read=0.4)) as client:
        with pytest.raises(httpx.ReadTimeout):
            client.post("/v1/responses", json={"model": dep.group.name, "input": "hi", "stream": stream},
                        headers=bearer(key))
    # leaving the block closed the connection: the gateway sees the client go

    row = eventually(lambda: RequestLog.objects.filter(key_name=key.name).first(), timeout=4,
                     message="no RequestLog row for a request whose client disconnected before the first byte")
    assert (row.status, row.client_disconnected, row.group_name) == (499, True, dep.group.name)


def test_client_disconnect_before_first_byte_releases_parallel_slot(fake_azure, azure_route, make_key, http):
    """max_parallel=1: after a client hangs up mid-wait, the key must be usable again."""
    dep = azure_route(fake_azure)
    key = make_key(max_parallel=1)
    fake_azure.hang_seconds = 1.0
    with pytest.raises(httpx.ReadTimeout):
        http.post("/v1/responses", json={"model": dep.group.name, "input": "hi"}, headers=bearer(key),
                  timeout=httpx.Timeout(5, read=0.3))
    fake_azure.hang_seconds = 0

    def usable_again():
        response = http.post("/v1/responses", json={"model": dep.group.name, "input": "hi"}, headers=bearer(key))
        assert response.status_code in (200, 429), response.text
        return response.status_code == 200

    eventually(usable_again, timeout=4, interval=0.2,
               message="the key's only parallel slot stayed taken after its client disconnected")


def test_big_frames_are_relayed_whole(fake_azure, azure_route, make_key, http, wait_for_log):
    """Frames far larger than one socket read (the created/completed events echo the
    instructions) arrive intact, and usage is still read from the last one."""
    dep = azure_route(fake_azure)
    instructions = "".join(f"line {i}: ünïcödé ✓ " for i in range(20_000))  # ~500 KB per echoing frame
    response = http.post("/v1/responses", headers={**bearer(make_key())}, timeout=30, json={
        "model": dep.group.name, "input": "one two", "instructions": instructions, "stream": True})
    assert response.status_code == 200
    events = parse_sse(response.text)
    assert len(events) == 13
    assert events[0].json()["response"]["instructions"] == instructions
    assert events[-1].json()["response"]["instructions"] == instructions
    row = wait_for_log(response.headers["x-gateway-request-id"])
    assert (row.input_tokens, row.output_tokens, row.error_type) == (2, 5, "")
    assert row.bytes_out == len(response.content)
