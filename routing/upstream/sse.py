"""Server-sent events, relayed as bytes and side-parsed on a copy.

`SseTap.feed(chunk)` takes raw upstream bytes and returns the complete frames among
them, byte for byte as received (the relay forwards exactly these; only CRLF/CR
line endings are normalised to LF), keeping a partial
frame as carry-over. Relaying whole frames only means that if the upstream dies
mid-frame the client never sees half an event, and the gateway can append a
well-formed `error` event. Frames are split on a blank line (LF, CRLF or CR endings).

Only the few events that matter are JSON-parsed: `response.created` (id, model),
the terminal `response.completed|incomplete|failed` (usage, status), `error`, and for
Chat Completions the chunk carrying `usage` and the `[DONE]` line. Deltas are
recognised from their `event:` line and skipped without parsing.
"""

import orjson

from routing.upstream import usage as usage_mod

TERMINAL = frozenset({"response.completed", "response.incomplete", "response.failed"})
_INTERESTING = TERMINAL | {"response.created", "response.queued", "error"}


class SseTap:
    __slots__ = ("_carry", "_interesting", "events", "response_id", "model", "usage", "terminal", "error", "done",
                 "reasoning_ids")

    def __init__(self, *, track_items: bool = False) -> None:
        self._carry = b""
        # With track_items, finished output items are parsed too, to learn reasoning item ids.
        self._interesting = _INTERESTING | {"response.output_item.done"} if track_items else _INTERESTING
        self.reasoning_ids: list[str] = []
        self.events = 0
        self.response_id: str | None = None
        self.model: str | None = None
        self.usage: usage_mod.Usage | None = None
        self.terminal: str | None = None  # the Responses terminal event type seen
        self.error: str | None = None
        self.done = False  # Chat Completions `data: [DONE]` seen

    @property
    def finished(self) -> bool:
        return self.terminal is not None or self.done

    def feed(self, chunk: bytes) -> bytes:
        buf = self._carry + chunk if self._carry else chunk
        hold = b""
        if b"\r" in buf:  # CRLF/CR framing is normalised to LF (JSON data never holds a raw CR)
            if buf.endswith(b"\r"):  # may be half of a CRLF split across chunks
                buf, hold = buf[:-1], b"\r"
            buf = buf.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        end = buf.rfind(b"\n\n")
        if end < 0:
            self._carry = buf + hold
            return b""
        complete, self._carry = buf[: end + 2], buf[end + 2 :] + hold
        start = 0
        while start < len(complete):
            stop = complete.find(b"\n\n", start)
            self._inspect(complete[start:stop])
            start = stop + 2
        return complete

    def leftover(self) -> bytes:
        """A final frame the upstream ended without a blank line (returned once)."""
        rest, self._carry = self._carry, b""
        if rest.strip():
            self._inspect(rest.rstrip(b"\n"))
            return rest + b"\n\n"
        return b""

    def _inspect(self, frame: bytes) -> None:
        if not frame or frame.startswith(b":"):
            return  # keep-alive comment
        self.events += 1
        name = None
        if frame.startswith(b"event:"):
            line_end = frame.find(b"\n")
            name = frame[6:line_end if line_end >= 0 else None].strip().decode("utf-8", "replace")
            if name not in self._interesting:
                return
        data = _data_of(frame)
        if data is None:
            return
        if name is None:
            if data == b"[DONE]":
                self.done = True
                return
            if b'"usage"' not in data and b'"response.' not in data and b'"error"' not in data:
                return
        try:
            payload = orjson.loads(data)
        except orjson.JSONDecodeError:
            return
        if isinstance(payload, dict):
            self._record(name or payload.get("type"), payload)

    def _record(self, kind, payload: dict) -> None:
        response = payload.get("response")
        if isinstance(response, dict):
            self.response_id = response.get("id") or self.response_id
            self.model = response.get("model") or self.model
        elif kind is None and isinstance(payload.get("id"), str) and payload.get("id"):
            self.response_id = self.response_id or payload["id"]  # chat completion chunk id
        if kind == "response.output_item.done":
            item = payload.get("item")
            if isinstance(item, dict) and item.get("type") == "reasoning" and isinstance(item.get("id"), str):
                self.reasoning_ids.append(item["id"])
            return
        found = usage_mod.from_payload(payload)
        if found is not None:
            self.usage = found
        if kind in TERMINAL:
            self.terminal = kind
            if kind == "response.failed" and isinstance(response, dict):
                self.error = _message(response.get("error")) or self.error
        elif kind == "error" or (kind is None and "error" in payload):
            self.error = _message(payload.get("error")) or payload.get("message") or "upstream error event"


def _data_of(frame: bytes) -> bytes | None:
    if frame.startswith(b"data:"):
        line_end = frame.find(b"\n")
        if line_end < 0:
            return frame[5:].strip()
        if frame.find(b"\ndata:", line_end) < 0:
            return frame[5:line_end].strip()
    lines = [line[5:].lstrip(b" ") for line in frame.split(b"\n") if line.startswith(b"data:")]
    return b"\n".join(lines) if lines else None


def _message(error) -> str | None:
    if isinstance(error, dict):
        return error.get("message") or error.get("code")
    return None


def frame(event: str, payload: dict) -> bytes:
    """One well-formed Responses SSE frame."""
    return b"event: " + event.encode() + b"\ndata: " + orjson.dumps(payload) + b"\n\n"
