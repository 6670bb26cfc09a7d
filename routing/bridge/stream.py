"""Chat Completions chunks as the Responses event sequence (pure, stateful).

`StreamTranslator` is fed parsed chat chunks (`feed`) and returns `(event type, payload)` pairs,
each with the next `sequence_number` (0, 1, 2, ... across the whole stream):

    start()   response.created, response.in_progress
    feed()    for text: output_item.added (message), content_part.added (output_text),
              output_text.delta ...; for reasoning (`reasoning_content` / `reasoning` deltas) the
              same with a reasoning item, a reasoning_text part and reasoning_text.delta; for each
              tool call (chat `tool_calls[index]`, arguments split across any number of chunks):
              output_item.added (function_call) once its name is known and arguments begin, then
              function_call_arguments.delta. A text or reasoning item is closed (…done events)
              when the other kind or a tool call starts; a later one opens a new item.
    finish()  the open items' done events (function_call_arguments.done, output_item.done, ...)
              and the terminal response.completed — or response.incomplete for finish_reason
              "length" / "content_filter" — with the whole output and the usage (from the chunk
              that carries it, when the upstream sent one).
    fail()    error (nested and flat fields, as OpenAI sends it) and response.failed.

An upstream chunk carrying `error` ends the stream with `fail()`. Only choice 0 is read (the
bridge never asks for more). What the upstream controls is bounded: `max_bytes` of text and
arguments, MAX_ITEMS output items; past either, `BadAnswer`.
"""

from dataclasses import dataclass, field

from routing.bridge import BadAnswer, Context, new_id
from routing.bridge.response import (
    finished,
    function_call_item,
    message_item,
    reasoning_item,
    reasoning_text,
    skeleton,
    status_of,
    usage_of,
)

MAX_ITEMS = 512
_PARTS = {"message": ({"type": "output_text", "annotations": [], "logprobs": [], "text": ""}, "response.output_text"),
          "reasoning": ({"type": "reasoning_text", "text": ""}, "response.reasoning_text")}


@dataclass(slots=True)
class _Segment:  # an open message or reasoning item
    kind: str
    index: int
    item_id: str
    text: list[str] = field(default_factory=list)
    refusal: list[str] = field(default_factory=list)


@dataclass(slots=True)
class _Call:  # one chat tool call (by its chat index)
    call_id: str = ""
    name: str = ""
    arguments: list[str] = field(default_factory=list)
    index: int | None = None  # output index, once announced
    item_id: str = ""


class StreamTranslator:
    def __init__(self, ctx: Context, *, max_bytes: int) -> None:
        self.ctx, self.max_bytes = ctx, max_bytes
        self.response = skeleton(ctx)
        self.seq = 0
        self.items: dict[int, dict] = {}  # output index -> finished item
        self.next_index = 0
        self.segment: _Segment | None = None
        self.calls: dict[int, _Call] = {}
        self.finish_reason = None
        self.usage: dict | None = None
        self.model = self.service_tier = None
        self.size = 0
        self.ended = False  # a terminal event went out

    @property
    def seen_finish(self) -> bool:
        return self.finish_reason is not None

    def _event(self, kind: str, **payload) -> tuple[str, dict]:
        event = (kind, {"type": kind, "sequence_number": self.seq, **payload})
        self.seq += 1
        return event

    def start(self) -> list[tuple[str, dict]]:
        return [self._event("response.created", response=dict(self.response)),
                self._event("response.in_progress", response=dict(self.response))]

    # --- chunks ---------------------------------------------------------------------------------------------

    def feed(self, chunk: dict) -> list[tuple[str, dict]]:
        if self.ended:
            return []
        error = chunk.get("error")
        if error:
            error = error if isinstance(error, dict) else {"message": str(error)}
            return self.fail(str(error.get("code") or error.get("type") or "upstream_error"),
                             str(error.get("message") or "The upstream reported an error."))
        self.model = chunk.get("model") or self.model
        self.service_tier = chunk.get("service_tier") or self.service_tier
        if isinstance(chunk.get("usage"), dict):
            self.usage = usage_of(chunk["usage"]) or self.usage
        events: list[tuple[str, dict]] = []
        for choice in chunk.get("choices") or ():
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") if isinstance(choice.get("delta"), dict) else {}
            thought = reasoning_text(delta)
            if thought:
                self._text(events, "reasoning", thought)
            content = delta.get("content")
            if isinstance(content, str) and content:
                self._text(events, "message", content)
            refusal = delta.get("refusal")
            if isinstance(refusal, str) and refusal:
                self._open_segment(events, "message").refusal.append(refusal)
                self._grow(len(refusal))
            for call in delta.get("tool_calls") or ():
                if isinstance(call, dict):
                    self._tool_delta(events, call)
            if choice.get("finish_reason"):
                self.finish_reason = choice["finish_reason"]
        return events

    def _grow(self, n: int) -> None:
        self.size += n
        if self.size > self.max_bytes:
            raise BadAnswer(f"the streamed answer is larger than {self.max_bytes} bytes")

    def _new_index(self) -> int:
        if self.next_index >= MAX_ITEMS:
            raise BadAnswer(f"the streamed answer has more than {MAX_ITEMS} output items")
        self.next_index += 1
        return self.next_index - 1

    def _open_segment(self, events: list, kind: str) -> _Segment:
        seg = self.segment
        if seg is not None and seg.kind == kind:
            return seg
        self._close_segment(events)
        seg = self.segment = _Segment(kind, self._new_index(), new_id("msg_gw_" if kind == "message" else "rs_gw_"))
        if kind == "message":
            item = {"id": seg.item_id, "type": "message", "status": "in_progress", "role": "assistant", "content": []}
        else:
            item = {"id": seg.item_id, "type": "reasoning", "status": "in_progress", "summary": [], "content": []}
        events.append(self._event("response.output_item.added", output_index=seg.index, item=item))
        events.append(self._event("response.content_part.added", item_id=seg.item_id, output_index=seg.index,
                                  content_index=0, part=dict(_PARTS[kind][0])))
        return seg

    def _text(self, events: list, kind: str, delta: str) -> None:
        seg = self._open_segment(events, kind)
        self._grow(len(delta))
        seg.text.append(delta)
        extra = {"logprobs": []} if kind == "message" else {}
        events.append(self._event(_PARTS[kind][1] + ".delta", item_id=seg.item_id, output_index=seg.index,
                                  content_index=0, delta=delta, **extra))

    def _close_segment(self, events: list, status: str = "completed") -> None:
        seg, self.segment = self.segment, None
        if seg is None:
            return
        text, where = "".join(seg.text), {"item_id": seg.item_id, "output_index": seg.index, "content_index": 0}
        if seg.kind == "message":
            item = message_item(seg.item_id, text, refusal="".join(seg.refusal) or None, status=status)
            events.append(self._event("response.output_text.done", **where, text=text, logprobs=[]))
            events.append(self._event("response.content_part.done", **where, part=item["content"][0]))
        else:
            item = reasoning_item(seg.item_id, text, status=status)
            events.append(self._event("response.reasoning_text.done", **where, text=text))
            events.append(self._event("response.content_part.done", **where, part=item["content"][0]))
        events.append(self._event("response.output_item.done", output_index=seg.index, item=item))
        self.items[seg.index] = item

    def _tool_delta(self, events: list, delta: dict) -> None:
        key = delta.get("index", 0)
        if not isinstance(key, int) or isinstance(key, bool):
            raise BadAnswer("a tool call delta without a numeric index")
        call = self.calls.get(key)
        if call is None:
            if len(self.calls) >= MAX_ITEMS:
                raise BadAnswer(f"the streamed answer has more than {MAX_ITEMS} tool calls")
            call = self.calls[key] = _Call()
        if isinstance(delta.get("id"), str) and delta["id"] and not call.call_id:
            call.call_id = delta["id"]
        function = delta.get("function") if isinstance(delta.get("function"), dict) else {}
        name, arguments = function.get("name"), function.get("arguments")
        if isinstance(name, str) and name and call.index is None:
            self._grow(len(name))
            call.name += name  # a name may arrive in pieces; it is announced with the first arguments
        if isinstance(arguments, str) and arguments:
            if call.index is None:
                self._announce(events, call)
            self._grow(len(arguments))
            call.arguments.append(arguments)
            events.append(self._event("response.function_call_arguments.delta", item_id=call.item_id,
                                      output_index=call.index, delta=arguments))

    def _announce(self, events: list, call: _Call) -> None:
        self._close_segment(events)
        call.index, call.item_id = self._new_index(), new_id("fc_gw_")
        call.call_id = call.call_id or new_id("call_gw_")
        events.append(self._event("response.output_item.added", output_index=call.index,
                                  item=function_call_item(call.item_id, call.call_id, call.name, "", self.ctx,
                                                          status="in_progress")))

    # --- the end --------------------------------------------------------------------------------------------

    def finish(self) -> list[tuple[str, dict]]:
        """The stream ended well ([DONE], or the end after a finish_reason): close and complete."""
        if self.ended:
            return []
        status, incomplete = status_of(self.finish_reason)
        item_status = "incomplete" if incomplete else "completed"
        events: list[tuple[str, dict]] = []
        self._close_segment(events, item_status)
        for call in self.calls.values():
            if call.index is None:
                self._announce(events, call)  # a call with no arguments at all
        for call in sorted(self.calls.values(), key=lambda c: c.index):
            arguments = "".join(call.arguments)
            item = function_call_item(call.item_id, call.call_id, call.name, arguments, self.ctx, status=item_status)
            events.append(self._event("response.function_call_arguments.done", item_id=call.item_id,
                                      output_index=call.index, name=item["name"], arguments=arguments))
            events.append(self._event("response.output_item.done", output_index=call.index, item=item))
            self.items[call.index] = item
        output = [self.items[i] for i in sorted(self.items)]
        final = finished(dict(self.response), status=status, incomplete=incomplete, output=output, usage=self.usage,
                         model=self.model, service_tier=self.service_tier)
        self.response = final
        self.ended = True
        events.append(self._event("response." + status, response=final))
        return events

    def fail(self, code: str, message: str) -> list[tuple[str, dict]]:
        """The stream cannot end well: error + response.failed (nothing after a terminal event)."""
        if self.ended:
            return []
        self.ended = True
        error = {"type": "api_error", "code": code, "message": message, "param": None}
        failed = dict(self.response, status="failed", error={"code": "server_error", "message": message},
                      output=[], usage=self.usage)
        self.response = failed
        return [self._event("error", code=code, message=message, param=None, error=error),
                self._event("response.failed", response=failed)]
