"""A TCP relay between a gateway server and PostgreSQL, to stage a database outage for the
server alone (the test itself keeps its own connection)."""

from __future__ import annotations

import socket
import threading
from urllib.parse import urlsplit


class TcpRelay:
    """127.0.0.1:<port> → target, one thread pair per connection; `cut()` drops every connection
    and refuses new ones until `restore()`."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = 0
        self.listener: socket.socket | None = None
        self.conns: list[socket.socket] = []
        self.lock = threading.Lock()

    def start(self) -> "TcpRelay":
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", self.port))
        self.port = self.listener.getsockname()[1]
        self.listener.listen(64)
        threading.Thread(target=self._accept, args=(self.listener,), daemon=True).start()
        return self

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            with self.lock:
                self.conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def cut(self) -> None:
        try:  # wakes the accept() under way: a closed fd alone leaves the socket listening until it returns
            self.listener.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.listener.close()
        with self.lock:
            conns, self.conns = self.conns, []
        for s in conns:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    restore = start


def relayed_database(database_url: str) -> tuple[TcpRelay, str]:
    """(a started relay to the database, the same URL through the relay)."""
    parts = urlsplit(database_url)
    relay = TcpRelay((parts.hostname or "127.0.0.1", parts.port or 5432)).start()
    through = parts._replace(netloc=parts.netloc.replace(f"{parts.hostname}:{parts.port or 5432}",
                                                         f"127.0.0.1:{relay.port}")).geturl()
    return relay, through
