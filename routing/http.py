"""The API's own request and response objects: just what the gateway uses.

`/v1/*` is served by `routing.asgi_api`, not Django's request handler (see there for
why); these two small classes stand in for HttpRequest/HttpResponse on that path.
`META` keeps Django's naming (`HTTP_AUTHORIZATION`, `CONTENT_TYPE`, `QUERY_STRING`).
"""

from collections.abc import AsyncIterator


class ApiRequest:
    __slots__ = ("method", "path", "META", "body")

    def __init__(self, method: str, path: str, meta: dict[str, str], body: bytes) -> None:
        self.method, self.path, self.META, self.body = method, path, meta, body


class Response:
    """A status, headers (last one set wins, case-insensitive) and either bytes or an
    async iterator of bytes (streamed as it yields)."""

    __slots__ = ("status_code", "_headers", "content", "stream", "abandon")

    def __init__(self, content: bytes = b"", *, status: int = 200, content_type: str = "application/json",
                 stream: AsyncIterator[bytes] | None = None) -> None:
        self.status_code = status
        self.content = content
        self.stream = stream
        self.abandon = None  # coroutine function: cleanup when the stream is never iterated
        self._headers: dict[str, tuple[str, str]] = {"content-type": ("content-type", content_type)}

    def __setitem__(self, name: str, value: str) -> None:
        self._headers[name.lower()] = (name, value)

    def items(self):
        return self._headers.values()

    def raw_headers(self) -> list[tuple[bytes, bytes]]:
        headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in self._headers.values()]
        if self.stream is None:
            headers.append((b"content-length", str(len(self.content)).encode()))
        return headers
