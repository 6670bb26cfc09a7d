"""Raw loopback HTTP servers for the upstream tests: they write exactly the bytes a test
chooses, so a misbehaving upstream is easy to stage."""

import asyncio
import datetime
import ipaddress
from types import SimpleNamespace


class Server:
    """A loopback server: `handler(reader, writer, server)` answers each connection;
    `connections` counts them and `requests` keeps each request (head and body)."""

    def __init__(self, handler) -> None:
        self.handler, self.connections, self.requests, self.closed = handler, 0, [], asyncio.Event()

    async def __aenter__(self):
        async def serve(reader, writer):
            self.connections += 1
            try:
                await self.handler(reader, writer, self)
            except (ConnectionError, asyncio.IncompleteReadError):
                pass
            finally:
                writer.close()
                self.closed.set()

        self.server = await asyncio.start_server(serve, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"
        return self

    async def __aexit__(self, *exc):
        self.server.close()

    async def read_request(self, reader) -> bytes:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                       if line.lower().startswith(b"content-length:")), 0)
        body = await reader.readexactly(length) if length else b""
        self.requests.append(head + body)
        return head + body


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%b\r\n" % (len(data), data)


async def keep_alive_json(reader, writer, server):
    while True:
        await server.read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 11\r\n"
                     b"x-request-id: r1\r\nx-multi: a\r\nx-multi: b\r\n\r\n{\"ok\":true}")
        await writer.drain()


def dep(**overrides):
    """The timeouts of a deployment (what relay.open_upstream reads)."""
    values = {"provider": "openai", "connect_timeout": 1.0, "first_byte_timeout": 1.0, "idle_timeout": 1.0,
              "total_timeout": 5.0}
    return SimpleNamespace(**(values | overrides))


def self_signed(tmp_path):
    """A certificate for localhost/127.0.0.1, written as PEM files."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=1))
            .not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return str(cert_path), str(key_path)
