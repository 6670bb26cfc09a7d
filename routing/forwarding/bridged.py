"""Answers of bridged calls (routing/bridge/) and of chat streams whose usage the gateway asked for.

- `plain()`: a chat completion → the client's Response object (stored first, when `store` allows).
- `BridgeStream`: a chat event stream → the Responses event stream, frame by frame, through
  `bridge.stream.StreamTranslator`; the response is stored before `response.completed` goes out.
- `UsageFilter`: a chat stream relayed as it is, minus the usage-only chunk the gateway asked
  for on the client's behalf (`stream_options.include_usage` added by ops' opt-in).

Both stream shapers plug into the relay (forwarding/response.py): `relay(source, answer)` wraps
the upstream's frames, `done(tap)` says whether the stream ended properly, `tail(failure)` gives
the well-formed end of a broken stream, `settle(call)` fills the log row.
"""

import orjson
from django.conf import settings
from django.http import HttpResponse

from routing import errors
from routing.bridge import BadAnswer, Context
from routing.bridge.response import from_completion
from routing.bridge.stream import StreamTranslator
from routing.config.snapshots import DeploymentSnap
from routing.forwarding import bridge_store
from routing.forwarding.call import Call, copy_upstream_headers, json_response
from routing.upstream import sse
from routing.upstream.relay import Answer, UpstreamFailure
from routing.upstream.usage import from_usage_object


def _bad(call: Call, detail: str) -> errors.GatewayError:
    call.record.error_type, call.record.error_message = "upstream_bad_response", f"bridge: {detail}"
    return errors.upstream_unreachable("upstream_bad_response")


async def plain(call: Call, answer: Answer, dep: DeploymentSnap, ctx: Context, body: dict) -> HttpResponse:
    """A 2xx chat completion as the Response object (an untranslatable one is a 502)."""
    if answer.encoded:
        raise _bad(call, f"an answer in an encoding the gateway cannot read ({answer.encoded})")
    try:
        response = from_completion(orjson.loads(answer.content), ctx)
    except orjson.JSONDecodeError:
        raise _bad(call, "the chat completion is not JSON") from None
    except BadAnswer as exc:
        raise _bad(call, str(exc)) from None
    rec = call.record
    rec.response_id = ctx.response_id
    found = from_usage_object(response.get("usage"))
    if found is not None:
        call.usage(found)
    if ctx.store:
        rec.policy_changes.append(await bridge_store.save(response, body, group=rec.group_name,
                                                          deployment_id=dep.id))
    content = orjson.dumps(response)
    out = json_response(content, answer.status)
    copy_upstream_headers(answer.headers, out)
    rec.bytes_out = len(content)
    rec.ttfb_ms = call.elapsed_ms()
    call.done(answer.status)
    return call.headers(out)


def _frames(frames: bytes):
    """(frame, its data lines joined; b"" for a comment or a frame without data) for each frame."""
    for block in frames.split(b"\n\n"):
        if block:
            yield block, b"\n".join(line[5:].lstrip(b" ") for line in block.split(b"\n") if line.startswith(b"data:"))


class BridgeStream:
    """A chat stream as the Responses event stream."""

    def __init__(self, ctx: Context, body: dict, dep: DeploymentSnap, group: str) -> None:
        self.ctx, self.body, self.dep, self.group = ctx, body, dep, group
        self.translator = StreamTranslator(ctx, max_bytes=settings.GATEWAY["UPSTREAM_MAX_BODY_BYTES"])
        self.store_note: dict | None = None

    @staticmethod
    def _encode(events) -> bytes:
        return b"".join(sse.frame(kind, payload) for kind, payload in events)

    async def relay(self, source, answer: Answer):
        if answer.encoded:
            raise UpstreamFailure("upstream_bad_response", f"a stream in an encoding the gateway cannot read "
                                                           f"({answer.encoded})")
        translator = self.translator
        yield self._encode(translator.start())
        async for frames in source:
            events, done = [], False
            try:
                for _, data in _frames(frames):
                    if not data:
                        continue
                    if data == b"[DONE]":
                        done = True
                        break
                    try:
                        chunk = orjson.loads(data)
                    except orjson.JSONDecodeError:
                        raise BadAnswer("a stream chunk that is not JSON") from None
                    if isinstance(chunk, dict):
                        events += translator.feed(chunk)
            except BadAnswer as exc:
                raise UpstreamFailure("upstream_bad_response", f"bridge: {exc}") from None
            if events:
                yield self._encode(events)
            if done or translator.ended:
                await source.aclose()  # nothing after [DONE] or an error chunk is read
                break
        if not translator.ended:
            if not translator.seen_finish:
                raise UpstreamFailure("stream_truncated", "the upstream ended the chat stream before it finished")
            yield await self._complete()

    async def _complete(self) -> bytes:
        events = self.translator.finish()
        if self.ctx.store:  # stored before the client learns the response is complete
            self.store_note = await bridge_store.save(self.translator.response, self.body, group=self.group,
                                                      deployment_id=self.dep.id)
        return self._encode(events)

    def done(self, tap) -> bool:
        return self.translator.ended

    def tail(self, failure: UpstreamFailure) -> bytes:
        message = {"server_shutdown": "The gateway is shutting down; the stream was cut."}.get(
            failure.kind, f"The upstream stream failed ({failure.kind}).")
        return self._encode(self.translator.fail(failure.kind, message))

    def settle(self, call: Call) -> None:
        rec = call.record
        rec.response_id = self.ctx.response_id
        found = from_usage_object(self.translator.usage)
        if found is not None:
            call.usage(found)
        if self.store_note is not None:
            rec.policy_changes.append(self.store_note)


class UsageFilter:
    """A chat stream as it came, minus the usage-only chunk (`choices: []` with a `usage` object)."""

    async def relay(self, source, answer: Answer):
        async for frames in source:
            if not answer.encoded and b'"usage"' in frames:
                frames = b"".join(block + b"\n\n" for block, data in _frames(frames) if not _usage_only(data))
            if frames:
                yield frames

    def done(self, tap) -> bool:
        return tap.finished

    def tail(self, failure: UpstreamFailure) -> bytes | None:
        return None

    def settle(self, call: Call) -> None:
        pass


def _usage_only(data: bytes) -> bool:
    if b'"usage"' not in data:
        return False
    try:
        chunk = orjson.loads(data)
    except orjson.JSONDecodeError:
        return False
    return isinstance(chunk, dict) and chunk.get("choices") == [] and isinstance(chunk.get("usage"), dict)
