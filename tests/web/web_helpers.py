"""Hand-built HTTP and WebSocket bytes for the tagd.web tests: nothing here uses tagd.web itself.

A raw connection (:class:`Raw`) speaks exactly the bytes a test gives it, so the server's protocol
behaviour is checked against RFC 9112 / RFC 6455 rather than against another implementation's reading of them.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import struct
from typing import Any, Awaitable, Callable

import pytest

from tagd.web.server import HttpServer

HOST = "127.0.0.1"
WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

# opcodes, RFC 6455 §5.2
CONT, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA


def frame(opcode: int, payload: bytes = b"", *, fin: bool = True, mask: bool = True, rsv: int = 0) -> bytes:
    """One WebSocket frame; masked (as a client must send it) unless ``mask=False``."""
    head = bytes([(0x80 if fin else 0) | (rsv << 4) | opcode])
    bit = 0x80 if mask else 0
    n = len(payload)
    if n < 126:
        head += bytes([bit | n])
    elif n < 1 << 16:
        head += bytes([bit | 126]) + struct.pack("!H", n)
    else:
        head += bytes([bit | 127]) + struct.pack("!Q", n)
    if not mask:
        return head + payload
    key = os.urandom(4)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def close_frame(code: int, reason: bytes = b"", **kw: object) -> bytes:
    return frame(CLOSE, struct.pack("!H", code) + reason, **kw)  # type: ignore[arg-type]


def accept_for(key: str) -> str:
    return base64.b64encode(hashlib.sha1(key.encode() + WS_GUID).digest()).decode()


def new_key() -> str:
    return base64.b64encode(os.urandom(16)).decode()


def upgrade_request(path: str = "/ws", key: str | None = None, version: str = "13") -> tuple[bytes, str]:
    key = new_key() if key is None else key
    head = (f"GET {path} HTTP/1.1\r\nHost: {HOST}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: {version}\r\n\r\n").encode()
    return head, key


def parse_head(raw: bytes) -> tuple[int, dict[str, str]]:
    lines = raw.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    return status, headers


class Raw:
    """One TCP connection to the server, driven byte by byte."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> "Raw":
        reader, writer = await asyncio.open_connection(HOST, port)
        return cls(reader, writer)

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def head(self, timeout: float = 5.0) -> tuple[int, dict[str, str]]:
        """The next response head (status, lower-case headers)."""
        raw = await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), timeout)
        return parse_head(raw)

    async def response(self, timeout: float = 5.0) -> tuple[int, dict[str, str], bytes]:
        """The next response, whole (Content-Length or chunked framing, or until EOF)."""
        status, headers = await self.head(timeout)
        if "content-length" in headers:
            body = await asyncio.wait_for(self.reader.readexactly(int(headers["content-length"])), timeout)
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            body = b"".join([c async for c in self.chunks(timeout)])
        else:
            body = await asyncio.wait_for(self.reader.read(), timeout)
        return status, headers, body

    async def chunks(self, timeout: float = 5.0):  # type: ignore[no-untyped-def]
        """The chunks of a chunked body as they arrive (RFC 9112 §7.1), until the last chunk."""
        while True:
            size_line = await asyncio.wait_for(self.reader.readuntil(b"\r\n"), timeout)
            size = int(size_line.split(b";")[0], 16)
            if size == 0:
                assert await asyncio.wait_for(self.reader.readuntil(b"\r\n"), timeout) == b"\r\n"
                return
            data = await asyncio.wait_for(self.reader.readexactly(size + 2), timeout)
            assert data.endswith(b"\r\n")
            yield data[:-2]

    async def eof(self, timeout: float = 5.0) -> bytes:
        """Everything until the server closes (a reset counts as a close)."""
        out = b""
        try:
            while chunk := await asyncio.wait_for(self.reader.read(65536), timeout):
                out += chunk
        except ConnectionResetError:
            pass
        return out

    async def ws_frame(self, timeout: float = 5.0) -> tuple[bool, int, bytes]:
        """The next frame from the server: (fin, opcode, payload); server frames must not be masked."""
        b0, b1 = await asyncio.wait_for(self.reader.readexactly(2), timeout)
        assert not b1 & 0x80, "a server frame must not be masked (RFC 6455 §5.1)"
        n = b1 & 0x7F
        if n == 126:
            n = struct.unpack("!H", await self.reader.readexactly(2))[0]
        elif n == 127:
            n = struct.unpack("!Q", await self.reader.readexactly(8))[0]
        payload = await asyncio.wait_for(self.reader.readexactly(n), timeout)
        return bool(b0 & 0x80), b0 & 0x0F, payload

    async def ws_close_code(self, timeout: float = 5.0) -> int:
        """Skip frames until the server's close frame; its status code."""
        while True:
            _, opcode, payload = await self.ws_frame(timeout)
            if opcode == CLOSE:
                return struct.unpack("!H", payload[:2])[0]

    async def upgrade(self, path: str = "/ws", extra: bytes = b"") -> None:
        """The opening handshake (``extra`` goes in the same write); checks the 101 and its accept key."""
        req, key = upgrade_request(path)
        await self.send(req + extra)
        status, headers = await self.head()
        assert status == 101, status
        assert headers["upgrade"].lower() == "websocket"
        assert "upgrade" in headers["connection"].lower()
        assert headers["sec-websocket-accept"] == accept_for(key)

    def close(self) -> None:
        self.writer.close()


async def get(port: int, path: str = "/") -> tuple[int, dict[str, str], bytes]:
    """One ``GET`` on a new connection (Connection: close)."""
    raw = await Raw.open(port)
    try:
        await raw.send(f"GET {path} HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n".encode())
        return await raw.response()
    finally:
        raw.close()


# --- the server fixture (here, not in a conftest.py: tests/conftest.py is imported as "conftest" by other tests) ---

Start = Callable[..., Awaitable[HttpServer]]


@pytest.fixture
async def start_server() -> Any:
    """``server = await start_server(handler, **HttpServer kwargs)``; ``server.port`` is where it listens."""
    servers: list[HttpServer] = []

    async def start(handler: Any, **kwargs: Any) -> HttpServer:
        server = HttpServer(handler, **kwargs)
        await server.start("127.0.0.1", 0)
        servers.append(server)
        return server

    yield start
    for server in servers:
        await server.close()
