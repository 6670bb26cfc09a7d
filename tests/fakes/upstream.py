"""A fake Azure OpenAI / OpenAI upstream: a real aiohttp HTTP server on 127.0.0.1, in a background thread.

Usage::

    with FakeUpstream("azure", deployments=["gpt-5.5-prod"]) as fake:
        ...point the gateway at fake.url (Azure api_base) or fake.openai_base (OpenAI mode)...
        assert fake.last().json["model"] == "gpt-5.5-prod"

Routes (a trailing slash is tolerated):

* azure, "v1" form (no api-version needed, any given one is ignored; auth `api-key` or `Authorization: Bearer`):
  ``/openai/v1/responses``, ``/openai/v1/responses/{compact,input_tokens}``, ``/openai/v1/responses/{id}``
  (GET, DELETE; GET ``?stream=true`` replays the SSE), ``.../{id}/cancel`` (POST), ``.../{id}/input_items`` (GET),
  ``/openai/v1/chat/completions``, ``/openai/v1/models``.
* azure, preview form: the same below ``/openai/`` (``/openai/responses?api-version=V`` ...) plus
  ``/openai/deployments/{dep}/chat/completions?api-version=V``; auth `api-key` only. A missing api-version, or one
  different from ``api_version`` given to ``__init__``, gives 404 ``{"error":{"code":"404","message":"Resource not
  found"}}`` (as does any unknown route in azure mode).
* openai: the same below ``/v1/`` with ``Authorization: Bearer``; unknown route -> 404 ``Invalid URL (...)``.

Request pipeline: record (``received``) -> ``hang_seconds`` -> ``reset_before_response`` -> ``fail_status`` ->
route / api-version -> auth (401) -> JSON body (400) -> model / deployment (400 missing, 404 unknown) ->
strict params (400) -> ``previous_response_id`` (404) -> answer.

Chat-only servers: ``speaks_responses = False`` answers every Responses route 404 ``{"detail": "Not Found"}``
(as vLLM's FastAPI does); ``chat_stream_options`` is what chat's ``stream_options`` may hold (an older server:
``set()``); ``chat_script`` scripts the chat answer (text, reasoning, tool calls with their arguments split across
chunks, finish reason).

Responses are stored unless ``store`` is false; ``input_items`` lists them newest first by default (``order=desc``,
like OpenAI). ``reset()`` restores the scenario switches and clears ``received`` (stored responses are kept).
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import struct
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any, Iterable

from aiohttp import web

from . import upstream_payloads as p

RESPONSES_PARAMS = frozenset({
    "model", "input", "instructions", "stream", "stream_options", "tools", "tool_choice", "parallel_tool_calls",
    "reasoning", "store", "previous_response_id", "include", "truncation", "metadata", "max_output_tokens",
    "max_tool_calls", "text", "service_tier", "background", "temperature", "top_p", "top_logprobs", "user",
    "safety_identifier", "prompt_cache_key", "prompt_cache_retention", "prompt", "conversation",
    "context_management", "client_metadata",
})
CHAT_PARAMS = frozenset({
    "model", "messages", "stream", "stream_options", "temperature", "top_p", "n", "stop", "max_tokens",
    "max_completion_tokens", "presence_penalty", "frequency_penalty", "logit_bias", "logprobs", "top_logprobs",
    "user", "tools", "tool_choice", "parallel_tool_calls", "response_format", "seed", "service_tier", "store",
    "metadata", "reasoning_effort", "modalities", "audio", "prediction", "web_search_options", "verbosity",
    "safety_identifier", "prompt_cache_key", "prompt_cache_retention", "functions", "function_call",
    "data_sources", "user_security_context",
})
# (method, path below the API root, operation)
ROUTES = [
    ("POST", r"responses", "create"),
    ("POST", r"responses/compact", "compact"),
    ("POST", r"responses/input_tokens", "input_tokens"),
    ("GET", r"responses/(?P<rid>[^/]+)", "get"),
    ("DELETE", r"responses/(?P<rid>[^/]+)", "delete"),
    ("POST", r"responses/(?P<rid>[^/]+)/cancel", "cancel"),
    ("GET", r"responses/(?P<rid>[^/]+)/input_items", "input_items"),
    ("POST", r"chat/completions", "chat"),
    ("GET", r"models", "models"),
]
JSON_BODY_OPS = {"create", "compact", "input_tokens", "chat"}
SSE_CONTENT_TYPE = "text/event-stream; charset=utf-8"


@dataclass
class Received:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-cased names
    body: bytes
    json: Any | None
    raw_path: str = ""  # as sent, before percent-decoding


class _Reject(Exception):
    """Raised inside the pipeline to answer with an error."""

    def __init__(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None):
        super().__init__(status)
        self.status, self.body, self.headers = status, body, headers or {}


def _has_path(body: Any, dotted: str) -> bool:
    for part in dotted.split("."):
        if not isinstance(body, dict) or part not in body:
            return False
        body = body[part]
    return True


class FakeUpstream:
    # Scenario switches (read per request; see reset()).
    fail_status: int | None
    fail_times: int | None
    retry_after: str
    hang_seconds: float
    event_delay: float
    lockstep: "threading.Semaphore | None"
    deltas: int
    drop_after_events: int | None
    reset_before_response: bool
    reject_params: set[str]
    responses_params: set[str]
    speaks_responses: bool
    chat_stream_options: set[str]
    chat_script: dict[str, Any] | None

    def __init__(self, mode: str = "azure", *, api_key: str = "upstream-secret",
                 deployments: Iterable[str] = ("gpt-5.5-prod",), api_version: str | None = None):
        if mode not in ("azure", "openai"):
            raise ValueError(f"mode must be 'azure' or 'openai', not {mode!r}")
        self.mode = mode
        self.api_key = api_key
        self.deployments = set(deployments)
        self.api_version = api_version
        self.received: list[Received] = []
        self.responses: dict[str, dict[str, Any]] = {}  # id -> {"response": {...}, "input_items": [...]}
        self.port: int | None = None
        self._cond = threading.Condition()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self.reset()

    # ------------------------------------------------------------------------------------------ lifecycle

    @property
    def url(self) -> str:
        if self.port is None:
            raise RuntimeError("FakeUpstream not started")
        return f"http://127.0.0.1:{self.port}"

    @property
    def openai_base(self) -> str:
        return self.url + "/v1"

    @property
    def azure_v1_base(self) -> str:
        return self.url + "/openai/v1"

    def start(self) -> "FakeUpstream":
        if self._thread is not None:
            raise RuntimeError("FakeUpstream already started")
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        self._loop = asyncio.new_event_loop()
        started = threading.Event()
        errors: list[BaseException] = []

        def run() -> None:
            asyncio.set_event_loop(self._loop)
            try:
                self._loop.run_until_complete(self._serve(sock))
            except BaseException as exc:  # surfaced in start()
                errors.append(exc)
                started.set()
                return
            started.set()
            self._loop.run_forever()
            self._loop.close()

        self._thread = threading.Thread(target=run, name=f"fake-upstream-{self.port}", daemon=True)
        self._thread.start()
        started.wait(10)
        if errors:
            raise errors[0]
        return self

    async def _serve(self, sock: socket.socket) -> None:
        app = web.Application(client_max_size=256 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        await web.SockSite(self._runner, sock).start()

    def stop(self) -> None:
        if self._thread is None or self._loop is None:
            return
        asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(15)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(15)
        self._thread = self._loop = self._runner = None

    async def _shutdown(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        # Handlers whose client already went away (e.g. hang_seconds) are not covered by cleanup().
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def __enter__(self) -> "FakeUpstream":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------------------------------ test helpers

    def reset(self) -> None:
        """Restore every scenario switch to its default and clear `received`."""
        self.fail_status = None
        self.fail_times = None
        self.retry_after = "1"
        self.hang_seconds = 0
        self.event_delay = 0
        self.lockstep = None  # a Semaphore: each event after the first waits for one release (the reader saw one)
        self.deltas = 5
        self.drop_after_events = None
        self.reset_before_response = False
        self.reject_params = set()
        self.responses_params = set(RESPONSES_PARAMS)
        self.speaks_responses = True  # False: a chat-only server (vLLM, Ollama, ...): /responses* are 404
        self.chat_stream_options = {"include_usage", "include_obfuscation"}  # what chat's stream_options may hold
        self.chat_script = None  # the chat answer: see upstream_payloads.build_chat_completion; a list: one per call
        self.clear()

    def clear(self) -> None:
        with self._cond:
            self.received.clear()

    def last(self) -> Received:
        with self._cond:
            if not self.received:
                raise AssertionError("FakeUpstream received no request")
            return self.received[-1]

    def wait_for(self, count: int = 1, timeout: float = 5.0) -> list[Received]:
        """Block until at least `count` requests were received; returns a snapshot of `received`."""
        with self._cond:
            if not self._cond.wait_for(lambda: len(self.received) >= count, timeout):
                raise AssertionError(f"expected {count} upstream requests, got {len(self.received)}")
            return list(self.received)

    # ------------------------------------------------------------------------------------------ pipeline

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = None
        rec = Received(request.method, request.path, dict(request.query),
                       {k.lower(): v for k, v in request.headers.items()}, raw, parsed, request.raw_path)
        with self._cond:
            self.received.append(rec)
            self._cond.notify_all()

        if self.hang_seconds:
            await asyncio.sleep(self.hang_seconds)
        if self.reset_before_response:
            self._abort(request, rst=True)
            return web.Response()  # aiohttp fails to write it (ConnectionError) and drops it quietly
        try:
            self._check_failure()
            op, params = self._resolve(request)
            body = self._check_body(op, rec)
            return await self._dispatch(request, op, params, body)
        except _Reject as rej:
            return self._json(rej.status, rej.body, rej.headers)

    def _json(self, status: int, body: Any, headers: dict[str, str] | None = None) -> web.Response:
        return web.json_response(body, status=status, headers={"x-request-id": uuid.uuid4().hex, **(headers or {})})

    def _check_failure(self) -> None:
        with self._cond:
            status = self.fail_status
            if status is None:
                return
            if self.fail_times is not None:
                if self.fail_times <= 0:
                    return
                self.fail_times -= 1
        headers = {"Retry-After": str(self.retry_after)} if status == 429 else {}
        raise _Reject(status, p.failure_body(self.mode, status, str(self.retry_after)), headers)

    def _not_found_route(self, request: web.Request) -> _Reject:
        if self.mode == "azure":
            return _Reject(404, p.azure_error("404", "Resource not found"))
        return _Reject(404, p.openai_error(f"Invalid URL ({request.method} {request.path})"))

    def _resolve(self, request: web.Request) -> tuple[str, dict[str, str]]:
        """Map the URL to an operation and check api-version + auth."""
        path, params, bearer_ok, needs_version = request.path, {}, True, False
        if self.mode == "openai":
            rest = path[len("/v1/"):] if path.startswith("/v1/") else None
        elif path.startswith("/openai/v1/"):
            rest = path[len("/openai/v1/"):]
        elif m := re.fullmatch(r"/openai/deployments/([^/]+)/chat/completions/?", path):
            rest, params, bearer_ok, needs_version = "chat/completions", {"deployment": m[1]}, False, True
        elif path.startswith("/openai/"):
            rest, bearer_ok, needs_version = path[len("/openai/"):], False, True
        else:
            rest = None
        op = None
        if rest is not None:
            for method, pattern, name in ROUTES:
                m = re.fullmatch(pattern, rest.rstrip("/"))
                if m and request.method == method:
                    op, params = name, {**params, **m.groupdict()}
                    break
        if op is None or (not self.speaks_responses and op not in ("chat", "models")):
            if op is not None:  # what a chat-only server (FastAPI-based, like vLLM) answers
                raise _Reject(404, {"detail": "Not Found"})
            raise self._not_found_route(request)
        if needs_version:
            version = request.query.get("api-version")
            if not version or (self.api_version is not None and version != self.api_version):
                raise _Reject(404, p.azure_error("404", "Resource not found"))
        self._check_auth(request, bearer_ok)
        return op, params

    def _check_auth(self, request: web.Request, bearer_ok: bool) -> None:
        bearer = request.headers.get("Authorization", "")
        if self.mode == "azure":
            if request.headers.get("api-key") == self.api_key or (bearer_ok and bearer == f"Bearer {self.api_key}"):
                return
            raise _Reject(401, p.azure_error("401", p.AZURE_401_MESSAGE))
        if bearer == f"Bearer {self.api_key}":
            return
        given = bearer.removeprefix("Bearer ").strip()
        masked = given if len(given) <= 8 else given[:3] + "*" * (len(given) - 7) + given[-4:]
        raise _Reject(401, p.openai_error(
            f"Incorrect API key provided: {masked}. You can find your API key at "
            "https://platform.openai.com/account/api-keys.", code="invalid_api_key"))

    def _check_body(self, op: str, rec: Received) -> dict[str, Any]:
        if op not in JSON_BODY_OPS:
            return {}
        if not isinstance(rec.json, dict):
            raise _Reject(400, p.openai_error(p.INVALID_JSON_MESSAGE))
        return rec.json

    def _check_model(self, model: Any) -> None:
        if not model:
            raise _Reject(400, p.openai_error("Missing required parameter: 'model'.", param="model",
                                              code="missing_required_parameter"))
        if model in self.deployments:
            return
        if self.mode == "azure":
            raise _Reject(404, p.azure_error("DeploymentNotFound", p.AZURE_DEPLOYMENT_NOT_FOUND_MESSAGE))
        raise _Reject(404, p.openai_error(
            f"The model `{model}` does not exist or you do not have access to it.", code="model_not_found"))

    def _check_stream_options(self, body: dict[str, Any], allowed: set[str]) -> None:
        opts = body.get("stream_options")
        if opts is None:
            return
        if body.get("stream") is not True:
            raise _Reject(400, p.openai_error("The 'stream_options' parameter is only allowed when 'stream' is enabled.",
                                              param="stream_options", code="invalid_value"))
        for key in opts if isinstance(opts, dict) else ():
            if key not in allowed:
                raise _Reject(400, p.unknown_parameter(f"stream_options.{key}"))

    def _check_responses_params(self, body: dict[str, Any]) -> None:
        if "messages" in body:
            raise _Reject(400, p.openai_error(p.MESSAGES_MOVED_MESSAGE, param="messages", code="unsupported_parameter"))
        for key in body:
            if key not in self.responses_params:
                raise _Reject(400, p.unknown_parameter(key))
        if self.mode == "azure" and "stream_options" in body:
            opts = body["stream_options"]
            keys = list(opts) if isinstance(opts, dict) else []
            sub = "include_usage" if "include_usage" in keys else (keys[0] if keys else None)
            raise _Reject(400, p.unknown_parameter(f"stream_options.{sub}" if sub else "stream_options"))
        self._check_stream_options(body, {"include_obfuscation"})
        self._check_rejected(body)

    def _check_chat_params(self, body: dict[str, Any]) -> None:
        for key in body:
            if key not in CHAT_PARAMS:
                raise _Reject(400, p.unknown_parameter(key))
        if "messages" not in body:
            raise _Reject(400, p.openai_error("Missing required parameter: 'messages'.", param="messages",
                                              code="missing_required_parameter"))
        self._check_stream_options(body, self.chat_stream_options)
        self._check_rejected(body)

    def _check_rejected(self, body: dict[str, Any]) -> None:
        for dotted in sorted(self.reject_params):
            if _has_path(body, dotted):
                raise _Reject(400, p.unknown_parameter(dotted))

    def _check_previous(self, body: dict[str, Any]) -> None:
        prev = body.get("previous_response_id")
        if prev and prev not in self.responses:
            raise _Reject(404, p.openai_error(f"Previous response with id '{prev}' not found.",
                                              param="previous_response_id", code="previous_response_not_found"))

    def _stored(self, rid: str) -> dict[str, Any]:
        if rid not in self.responses:
            raise _Reject(404, p.openai_error(f"Response with id '{rid}' not found."))
        return self.responses[rid]

    # ------------------------------------------------------------------------------------------ operations

    async def _dispatch(self, request: web.Request, op: str, params: dict[str, str],
                        body: dict[str, Any]) -> web.StreamResponse:
        if op in ("create", "compact", "input_tokens"):
            self._check_model(body.get("model"))
        if op == "create":
            self._check_responses_params(body)
            self._check_previous(body)
            return await self._create_response(request, body)
        if op == "compact":
            self._check_previous(body)
            return self._json(200, p.build_compaction(body))
        if op == "input_tokens":
            return self._json(200, {"object": "response.input_tokens",
                                    "input_tokens": max(p.count_words(body.get("input")), 1)})
        if op == "chat":
            model = params.get("deployment") or body.get("model")
            self._check_model(model)
            self._check_chat_params(body)
            return await self._chat(request, model, body)
        if op == "models":
            return self._json(200, {"object": "list", "data": [
                {"id": d, "object": "model", "created": 1700000000, "owned_by": "system"}
                for d in sorted(self.deployments)]})
        stored = self._stored(params["rid"])
        if op == "get":
            response = stored["response"]
            if request.query.get("stream") == "true":
                after = int(request.query.get("starting_after", -1))
                events = p.number_events(p.response_events(response, with_obfuscation=self.mode == "openai"))
                return await self._stream(request, [p.frame(e) for e in events if e["sequence_number"] > after])
            return self._json(200, response)
        if op == "delete":
            del self.responses[params["rid"]]
            return self._json(200, {"id": params["rid"], "object": "response.deleted", "deleted": True})
        if op == "cancel":
            stored["response"] = {**stored["response"], "status": "cancelled"}
            return self._json(200, stored["response"])
        return self._json(200, self._input_items_page(stored["input_items"], request.query))

    async def _create_response(self, request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
        response = p.build_response(body, deltas=self.deltas)
        if body.get("store", True) is not False:
            self.responses[response["id"]] = {"response": response, "input_items": p.input_items(body.get("input"))}
        if body.get("stream") is not True:
            return self._json(200, response)
        opts = body.get("stream_options") or {}
        obfuscate = self.mode == "openai" and opts.get("include_obfuscation", True) is not False
        events = p.number_events(p.response_events(response, with_obfuscation=obfuscate))
        return await self._stream(request, [p.frame(e) for e in events])

    def _next_chat_script(self) -> dict[str, Any] | None:
        with self._cond:
            script = self.chat_script
            if isinstance(script, list):  # one per call, the last one for every call after
                return script.pop(0) if len(script) > 1 else script[0]
            return script

    async def _chat(self, request: web.Request, model: str, body: dict[str, Any]) -> web.StreamResponse:
        script = self._next_chat_script()
        if body.get("stream") is not True:
            return self._json(200, p.build_chat_completion(self.mode, model, body, deltas=self.deltas, script=script))
        chunks = p.chat_chunks(self.mode, model, body, deltas=self.deltas, script=script)
        frames = [p.frame(c, with_event_line=False) for c in chunks] + [b"data: [DONE]\n\n"]
        return await self._stream(request, frames)

    @staticmethod
    def _input_items_page(items: list[dict[str, Any]], query: Any) -> dict[str, Any]:
        ordered = list(reversed(items)) if query.get("order", "desc") == "desc" else list(items)
        after = query.get("after")
        if after:
            ids = [i["id"] for i in ordered]
            ordered = ordered[ids.index(after) + 1:] if after in ids else []
        limit = int(query.get("limit", 20))
        page = ordered[:limit]
        return {"object": "list", "data": page, "first_id": page[0]["id"] if page else None,
                "last_id": page[-1]["id"] if page else None, "has_more": len(ordered) > limit}

    # ------------------------------------------------------------------------------------------ transport

    async def _stream(self, request: web.Request, frames: list[bytes]) -> web.StreamResponse:
        """Send SSE frames one by one (flushed each time), honouring event_delay / lockstep / drop_after_events."""
        resp = web.StreamResponse(status=200, headers={
            "Content-Type": SSE_CONTENT_TYPE, "Cache-Control": "no-cache", "x-request-id": uuid.uuid4().hex})
        await resp.prepare(request)
        try:
            for index, data in enumerate(frames):
                if self.drop_after_events is not None and index >= self.drop_after_events:
                    break
                if index and self.event_delay:
                    await asyncio.sleep(self.event_delay)
                if index and self.lockstep is not None:
                    gate = self.lockstep
                    if not await asyncio.get_running_loop().run_in_executor(None, gate.acquire, True, 10):
                        break  # the reader never saw the previous event: the stream ends short
                await resp.write(data)
            else:
                await resp.write_eof()
                return resp
        except ConnectionError:  # the client went away
            return resp
        await self._drain(request)
        self._abort(request)
        return resp  # aiohttp's write_eof() now fails with ConnectionError, which it ignores quietly

    @staticmethod
    async def _drain(request: web.Request, timeout: float = 2.0) -> None:
        transport, deadline = request.transport, time.monotonic() + timeout
        while transport is not None and transport.get_write_buffer_size() and time.monotonic() < deadline:
            await asyncio.sleep(0.005)

    @staticmethod
    def _abort(request: web.Request, *, rst: bool = False) -> None:
        transport = request.transport
        if transport is None:
            return
        if rst:  # SO_LINGER 0 -> close() sends a TCP RST instead of a FIN
            sock = transport.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()
