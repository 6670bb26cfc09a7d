"""A do-nothing TCP relay (uvloop), run on the gateway's core: the floor of any proxy there.

    python -m bench.tcprelay --port 9200 --to 127.0.0.1:9100

Each client connection gets its own upstream connection and bytes are copied both ways
untouched. Measured like the gateway (client and upstream on core 0, relay on core 1), it
shows what the two extra cross-core hops and one event loop cost on this machine, so the
gateway's own cost is `gateway − relay` rather than `gateway − direct`.
"""

import argparse
import asyncio


class _Up(asyncio.Protocol):
    def __init__(self, down: "_Down") -> None:
        self.down = down

    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.down.transport.write(data)

    def connection_lost(self, exc) -> None:
        self.down.transport.close()


class _Down(asyncio.Protocol):
    target: tuple[str, int] = ("127.0.0.1", 9100)

    def connection_made(self, transport) -> None:
        self.transport, self.up, self.pending = transport, None, []
        asyncio.get_running_loop().create_task(self._connect())

    async def _connect(self) -> None:
        try:
            _, self.up = await asyncio.get_running_loop().create_connection(lambda: _Up(self), *self.target)
        except OSError:
            self.transport.close()
            return
        for data in self.pending:
            self.up.transport.write(data)
        self.pending = []

    def data_received(self, data: bytes) -> None:
        if self.up is None:
            self.pending.append(data)
        else:
            self.up.transport.write(data)

    def connection_lost(self, exc) -> None:
        if self.up is not None:
            self.up.transport.close()


async def serve(port: int) -> None:
    server = await asyncio.get_running_loop().create_server(_Down, "127.0.0.1", port, backlog=4096)
    async with server:
        await server.serve_forever()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--to", required=True, help="host:port of the upstream")
    args = ap.parse_args()
    host, _, port = args.to.rpartition(":")
    _Down.target = (host, int(port))
    import uvloop

    uvloop.run(serve(args.port))


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        pass
