"""A fast fake Azure OpenAI upstream for benchmarks: raw asyncio Protocol + httptools on uvloop.

    python -m bench.upstream --port 9100 --deltas 20 --delay-ms 0 --latency-ms 0

Serves the v1 Azure paths (`POST /openai/v1/responses`, `/openai/v1/chat/completions`;
the same without the `/openai` prefix also works) with the content of the built-in mock
provider (routing.providers.mock): JSON with Content-Length, or SSE (`"stream": true`)
with chunked transfer, one chunk per event and `--delay-ms` between events. Keep-alive.
`--latency-ms` holds every answer (JSON or the first event) back that long.

Per-request overrides go in the body, since the gateway forwards it as it is:
`"metadata": {"bench_deltas": "50", "bench_delay_ms": "100", "bench_latency_ms": "0"}`.

Encoded bytes are cached per (path, request body), so a request costs a dict lookup, a
bytes.replace giving each response a fresh `resp_…` id, and one write. Auth is not checked.
`GET /healthz` answers 200 (readiness probe).
"""

import argparse
import asyncio
import itertools
import os
import sys

import httptools
import orjson

_ids = itertools.count(1)
_CACHE: dict[tuple[bytes, bytes], "Reply"] = {}
_CACHE_LIMIT = 512
DEFAULTS = {"deltas": 20, "delay_ms": 0.0, "latency_ms": 0.0}


def _mock():
    """routing.providers.mock needs no Django; set it up only if that ever changes."""
    try:
        from routing.providers import mock
    except Exception:
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gateway.settings")
        import django

        django.setup()
        from routing.providers import mock
    return mock


class Reply:
    """Pre-encoded response: `head` + either one `body` (JSON) or a list of SSE `frames`."""

    __slots__ = ("head", "body", "frames", "delay", "wait", "rid", "rid_frames")

    def __init__(self, head: bytes, body: bytes = b"", frames: list[bytes] | None = None,
                 delay: float = 0.0, rid: bytes = b"") -> None:
        self.head, self.body, self.frames, self.delay, self.rid = head, body, frames, delay, rid
        self.wait = 0.0  # seconds before the answer starts
        self.rid_frames = [i for i, f in enumerate(frames or ()) if rid and rid in f]

    def fresh_id(self) -> bytes:
        return b"resp_%032x" % next(_ids) if self.rid else b""


def _head(status: str, ctype: bytes, length: int | None) -> bytes:
    lines = [b"HTTP/1.1 " + status.encode(), b"content-type: " + ctype, b"x-request-id: bench-upstream"]
    lines.append(b"content-length: %d" % length if length is not None else b"transfer-encoding: chunked")
    if length is None:
        lines.append(b"cache-control: no-cache")
    return b"\r\n".join(lines) + b"\r\n\r\n"


def _json_reply(status: str, payload: dict, rid: str = "") -> Reply:
    body = orjson.dumps(payload)
    return Reply(_head(status, b"application/json", len(body)), body=body, rid=rid.encode())


def _not_found(path: bytes) -> Reply:
    return _json_reply("404 Not Found", {"error": {"code": "404", "message": f"Resource not found: {path.decode()}"}})


def build(path: bytes, raw: bytes) -> Reply:
    mock = MOCK
    try:
        body = orjson.loads(raw or b"{}")
        assert isinstance(body, dict)
    except Exception:
        return _json_reply("400 Bad Request", {"error": {"code": "invalid_json", "message": "body is not JSON"}})
    meta = body.get("metadata") if isinstance(body.get("metadata"), dict) else {}
    deltas = int(meta.get("bench_deltas", DEFAULTS["deltas"]))
    delay = float(meta.get("bench_delay_ms", DEFAULTS["delay_ms"])) / 1000
    stream = body.get("stream") is True
    route = path.split(b"?", 1)[0].removeprefix(b"/openai").removeprefix(b"/v1").rstrip(b"/")
    if route == b"/responses":
        if stream:
            events = mock.response_events(body, deltas)
            rid = events[0][1]["response"]["id"]
            return Reply(_head("200 OK", b"text/event-stream; charset=utf-8", None),
                         frames=mock.encode_events(events), delay=delay, rid=rid.encode())
        resp = mock.response_object(body, words=mock.reply_words(body, deltas))
        return _json_reply("200 OK", resp, resp["id"])
    if route == b"/chat/completions":
        if stream:
            return Reply(_head("200 OK", b"text/event-stream; charset=utf-8", None),
                         frames=mock.encode_chunks(mock.chat_chunks(body, deltas)), delay=delay)
        return _json_reply("200 OK", mock.chat_completion(body))
    return _not_found(path)


def reply_for(path: bytes, raw: bytes) -> Reply:
    key = (path, raw)
    reply = _CACHE.get(key)
    if reply is None:
        if len(_CACHE) >= _CACHE_LIMIT:
            _CACHE.clear()
        reply = _CACHE[key] = build(path, raw)
        try:
            meta = orjson.loads(raw).get("metadata") or {}
            reply.wait = float(meta.get("bench_latency_ms", DEFAULTS["latency_ms"])) / 1000
        except Exception:
            reply.wait = DEFAULTS["latency_ms"] / 1000
    return reply


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%b\r\n" % (len(data), data)


class Server(asyncio.Protocol):
    __slots__ = ("transport", "parser", "url", "body", "task", "closed")

    def connection_made(self, transport) -> None:
        self.transport = transport
        self.parser = httptools.HttpRequestParser(self)
        self.url, self.body, self.task, self.closed = b"", [], None, False

    def connection_lost(self, exc) -> None:
        self.closed = True
        if self.task is not None:
            self.task.cancel()

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self.transport.write(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
            self.transport.close()

    def on_message_begin(self) -> None:
        self.url, self.body = b"", []

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        keep = self.parser.should_keep_alive()
        method = self.parser.get_method()
        if method == b"GET" and self.url == b"/healthz":
            self.transport.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 15\r\n\r\n"
                                 b'{"status":"ok"}')
        elif method != b"POST":
            r = _not_found(self.url)
            self.transport.write(r.head + r.body)
        else:
            reply = reply_for(self.url, b"".join(self.body))
            if reply.frames is None:
                parts = [reply.head + (reply.body.replace(reply.rid, reply.fresh_id()) if reply.rid else reply.body)]
            else:
                frames = reply.frames
                if reply.rid_frames:
                    frames, new = list(frames), reply.fresh_id()
                    for i in reply.rid_frames:
                        frames[i] = frames[i].replace(reply.rid, new)
                if reply.delay:
                    parts = [reply.head + _chunk(frames[0])] + [_chunk(f) for f in frames[1:]] + [b"0\r\n\r\n"]
                else:
                    parts = [reply.head + b"".join(map(_chunk, frames)) + b"0\r\n\r\n"]
            if reply.wait or len(parts) > 1:  # one request at a time per connection: stop reading meanwhile
                self.transport.pause_reading()
                self.task = asyncio.get_running_loop().create_task(self._paced(parts, reply.wait, reply.delay, keep))
                return
            self.transport.write(parts[0])
        if not keep:
            self.transport.close()

    async def _paced(self, parts: list[bytes], wait: float, delay: float, keep: bool) -> None:
        if wait:
            await asyncio.sleep(wait)
        for i, part in enumerate(parts):
            if i and delay and i < len(parts) - 1:
                await asyncio.sleep(delay)
            if self.closed:
                return
            self.transport.write(part)
        self.task = None
        if keep:
            self.transport.resume_reading()
        else:
            self.transport.close()


async def serve(host: str, port: int) -> None:
    server = await asyncio.get_running_loop().create_server(Server, host, port, backlog=4096, reuse_address=True)
    print(f"bench upstream listening on http://{host}:{port}", file=sys.stderr, flush=True)
    async with server:
        await server.serve_forever()


def main(argv: list[str] | None = None) -> None:
    global MOCK
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=9100)
    ap.add_argument("--deltas", type=int, default=20, help="output_text deltas per reply (default 20)")
    ap.add_argument("--delay-ms", type=float, default=0.0, help="pause between SSE events (default 0)")
    ap.add_argument("--latency-ms", type=float, default=0.0, help="wait before each answer starts (default 0)")
    args = ap.parse_args(argv)
    DEFAULTS.update(deltas=args.deltas, delay_ms=args.delay_ms, latency_ms=args.latency_ms)
    MOCK = _mock()
    import uvloop

    uvloop.run(serve(args.host, args.port))


MOCK = None

if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        pass
