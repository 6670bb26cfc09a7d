"""The HTTP listener: uvicorn's httptools protocol with the client-side bounds it lacks.

uvicorn with httptools has no limit on request header size or count and no timeout for
reading a request's headers: a 16 MB header was accepted, endless headers pushed the
process from 72 to 289 MB, and a slowloris connection stayed open indefinitely. uvicorn
takes its HTTP protocol as a class (`--http gateway.listener:BoundedHttpToolsProtocol`,
what `make run`, the tests and the benchmark use); this one adds, per connection:

- a request head (request line and headers) larger than GATEWAY_MAX_REQUEST_HEAD_BYTES
  (64 KiB) gets `431 Request Header Fields Too Large` and the connection is closed;
- more than GATEWAY_MAX_REQUEST_HEADERS (100) header fields: the same;
- a head not complete within GATEWAY_REQUEST_HEAD_TIMEOUT seconds (10) of its first byte,
  or a new connection that sends nothing for that long: `408 Request Timeout`, closed.

Idle keep-alive connections between requests are closed by uvicorn itself after
`--timeout-keep-alive` (5 s); a response taking long (a stream) is never cut by these
bounds. The head is counted in the reads that did not complete it, so memory held for an
unfinished head stays within the limit plus one socket read.
"""

import os

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol


def _setting(name: str, default: float) -> float:
    return float(os.environ.get(name, default))


class _Refused(Exception):
    pass


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    MAX_HEAD_BYTES = int(_setting("GATEWAY_MAX_REQUEST_HEAD_BYTES", 64 * 1024))
    MAX_HEADERS = int(_setting("GATEWAY_MAX_REQUEST_HEADERS", 100))
    HEAD_TIMEOUT = _setting("GATEWAY_REQUEST_HEAD_TIMEOUT", 10.0)

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._in_head = False  # a request head has begun and is not complete yet
        self._started = False  # any request began on this connection
        self._head_bytes = 0
        self._header_count = 0
        self._head_timer = None
        self._refused = False

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self._arm_head_timer()

    def connection_lost(self, exc) -> None:
        self._cancel_head_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        super().data_received(data)
        if self._in_head and not self._refused and not self.transport.is_closing():
            self._head_bytes += len(data)
            if self._head_bytes > self.MAX_HEAD_BYTES:
                self._refuse(431, "Request header fields too large.")
            else:
                self._arm_head_timer()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head, self._started, self._header_count, self._head_bytes = True, True, 0, 0

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_count += 1
        if self._header_count > self.MAX_HEADERS:
            self._refuse(431, "Too many request header fields.")
            raise _Refused  # stops the parser; uvicorn's own 400 for it is suppressed below
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_head, self._head_bytes = False, 0
        self._cancel_head_timer()
        super().on_headers_complete()

    def send_400_response(self, msg: str) -> None:
        if not self._refused:
            super().send_400_response(msg)

    def _arm_head_timer(self) -> None:
        if self._head_timer is None:
            self._head_timer = self.loop.call_later(self.HEAD_TIMEOUT, self._head_timed_out)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if (self._in_head or not self._started) and not self.transport.is_closing():
            self._refuse(408, "The request headers did not arrive in time.")

    def _refuse(self, status: int, message: str) -> None:
        self._refused = True
        self._cancel_head_timer()
        body = message.encode()
        self.transport.write(STATUS_LINE[status] + b"content-type: text/plain; charset=utf-8\r\n"
                             b"content-length: %d\r\nconnection: close\r\n\r\n%b" % (len(body), body))
        self.transport.close()
