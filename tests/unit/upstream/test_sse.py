"""routing/upstream/sse.py: frames relayed byte for byte, whatever the chunk boundaries."""

import pytest

from routing.providers import mock
from routing.upstream.sse import SseTap, frame


def stream_bytes(deltas: int = 5) -> bytes:
    return b"".join(mock.encode_events(mock.response_events({"model": "m", "input": "hello world"}, deltas)))


def feed_all(tap: SseTap, data: bytes, size: int) -> bytes:
    out = b"".join(tap.feed(data[i : i + size]) for i in range(0, len(data), size))
    return out + tap.leftover()


@pytest.mark.parametrize("size", [1, 2, 3, 7, 64, 1000, 10**6])
def test_frames_relayed_unchanged_at_any_chunk_boundary(size):
    data = stream_bytes()
    tap = SseTap()
    assert feed_all(tap, data, size) == data
    assert tap.terminal == "response.completed"
    assert tap.response_id.startswith("resp_")
    assert tap.usage.input_tokens == 2 and tap.usage.output_tokens == 5 and tap.usage.total_tokens == 7
    assert tap.events == data.count(b"\n\n")


def test_only_complete_frames_are_released():
    tap = SseTap()
    first = frame("response.output_text.delta", {"type": "response.output_text.delta", "delta": "a"})
    assert tap.feed(first[:-1]) == b""  # missing the blank line: held back
    assert tap.feed(first[-1:]) == first


def test_crlf_framing_is_split_and_normalised():
    tap = SseTap()
    raw = b'event: response.completed\r\ndata: {"type":"response.completed","response":{"id":"resp_1","usage":' \
          b'{"input_tokens":1,"output_tokens":2,"total_tokens":3}}}\r\n\r\n'
    out = tap.feed(raw[:40]) + tap.feed(raw[40:-1]) + tap.feed(raw[-1:])
    assert out == raw.replace(b"\r\n", b"\n")
    assert tap.terminal == "response.completed" and tap.usage.total_tokens == 3


def test_chat_stream_usage_and_done():
    body = {"model": "m", "messages": [{"role": "user", "content": "hi there"}],
            "stream_options": {"include_usage": True}}
    data = b"".join(mock.encode_chunks(mock.chat_chunks(body)))
    tap = SseTap()
    assert feed_all(tap, data, 5) == data
    assert tap.done and tap.finished
    assert tap.usage.input_tokens == 2 and tap.usage.output_tokens > 0
    assert tap.response_id.startswith("chatcmpl-")


def test_failed_and_error_events_are_recorded():
    tap = SseTap()
    tap.feed(frame("error", {"type": "error", "error": {"type": "insufficient_quota", "message": "quota gone"}}))
    assert tap.error == "quota gone" and not tap.finished
    tap.feed(frame("response.failed", {"type": "response.failed", "response": {
        "id": "resp_9", "status": "failed", "error": {"code": "server_error", "message": "boom"}, "usage": None}}))
    assert tap.terminal == "response.failed" and tap.error == "boom" and tap.response_id == "resp_9"


def test_comments_and_unterminated_tail():
    tap = SseTap()
    assert tap.feed(b": ping\n\n") == b": ping\n\n"
    assert tap.events == 0
    tail = b'data: {"id":"x","choices":[],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}'
    assert tap.feed(tail) == b""
    assert tap.leftover() == tail + b"\n\n"
    assert tap.usage.total_tokens == 2
