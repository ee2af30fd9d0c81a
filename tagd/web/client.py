"""HTTP/1.1 and WebSocket clients on asyncio streams (h11, wsproto): one request, or one WebSocket, per call.

``http://``/``ws://`` connect in the clear, ``https://``/``wss://`` with TLS: the system's CA certificates, or
the ``tls`` context given (e.g. one trusting a home server's self-signed certificate).
Every failure — the host does not resolve or refuses, TLS fails, the server breaks the protocol, the timeout
passes, a WebSocket handshake is refused — is an :class:`HttpError` whose message says which; a refused
handshake also carries the server's status. There is no connection pool: tagd's requests are launches and
stops, seconds apart, and a fresh connection on a LAN costs about a millisecond.
"""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import h11
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, RejectConnection, RejectData, Request as WsRequest
from wsproto.utilities import RemoteProtocolError

from tagd.web.websocket import READ_CHUNK, WebSocket

DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}
MAX_RESPONSE = 16 << 20


class HttpError(Exception):
    """A request or connection failed; ``status`` is the server's when it answered at all."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class HttpResponse:
    status: int
    headers: dict[str, str]
    body: bytes


def tls_context(ca_file: str = "") -> ssl.SSLContext | None:
    """A context that trusts only ``ca_file`` (PEM: a CA, or a server's self-signed certificate);
    None for ``""`` (the system's CAs). ValueError naming the file if it cannot be loaded."""
    if not ca_file:
        return None
    try:
        return ssl.create_default_context(cafile=ca_file)
    except (OSError, ssl.SSLError) as exc:
        raise ValueError(f"cannot load {ca_file} as PEM certificates: {getattr(exc, 'strerror', None) or exc}") from None


async def _open(url: str, schemes: tuple[str, str],
                tls: ssl.SSLContext | None) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, str, str]:
    parts = urlsplit(url)
    if parts.scheme not in schemes or not parts.hostname:
        raise HttpError(f"expected a {schemes[0]}:// or {schemes[1]}:// URL")
    try:
        port = parts.port or DEFAULT_PORTS[parts.scheme]
    except ValueError:
        raise HttpError("bad port") from None
    secure = (tls or ssl.create_default_context()) if parts.scheme == schemes[1] else None
    try:
        reader, writer = await asyncio.open_connection(parts.hostname, port, ssl=secure, limit=READ_CHUNK)
    except ssl.SSLError as exc:
        why = getattr(exc, "verify_message", "") or exc.reason or str(exc)
        raise HttpError(f"TLS with {parts.hostname}:{port} failed: {why}") from None
    except OSError as exc:
        raise HttpError(f"cannot connect to {parts.hostname}:{port}: {exc.strerror or exc}") from None
    host = parts.netloc.rpartition("@")[2]
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return reader, writer, host, target


async def request(method: str, url: str, *, headers: dict[str, str] | None = None, body: bytes = b"",
                  timeout: float = 10.0, tls: ssl.SSLContext | None = None) -> HttpResponse:
    """One request; the whole response (any status: the caller decides what a failure is)."""
    try:
        return await asyncio.wait_for(_request(method, url, headers or {}, body, tls), timeout)
    except asyncio.TimeoutError:
        raise HttpError(f"{method} {url} did not answer within {timeout:g} s") from None


async def _request(method: str, url: str, headers: dict[str, str], body: bytes,
                   tls: ssl.SSLContext | None) -> HttpResponse:
    try:
        reader, writer, host, target = await _open(url, ("http", "https"), tls)
    except HttpError as exc:
        raise HttpError(f"{method} {url} failed: {exc}") from None
    conn = h11.Connection(h11.CLIENT)
    response: h11.Response | None = None
    answered = False  # any byte back from the server
    try:
        head = h11.Request(method=method, target=target, headers=[
            ("host", host), ("content-length", str(len(body))), ("connection", "close"), *headers.items()])
        writer.write(conn.send(head) + conn.send(h11.Data(data=body)) + conn.send(h11.EndOfMessage()))
        await writer.drain()
        data = bytearray()
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                chunk = await reader.read(READ_CHUNK)
                answered = answered or bool(chunk)
                conn.receive_data(chunk)
            elif isinstance(event, h11.Response):
                response = event
            elif isinstance(event, h11.Data):
                data += event.data
                if len(data) > MAX_RESPONSE:
                    raise HttpError(f"{method} {url}: response over {MAX_RESPONSE} bytes", response and response.status_code)
            elif isinstance(event, (h11.EndOfMessage, h11.ConnectionClosed)):
                break
        if response is None:
            raise HttpError(f"{method} {url}: the server closed the connection without answering")
        return HttpResponse(response.status_code, {k.decode("latin-1"): v.decode("latin-1") for k, v in response.headers},
                            bytes(data))
    except h11.ProtocolError as exc:
        if not answered:
            raise HttpError(f"{method} {url}: the server closed the connection without answering") from None
        raise HttpError(f"{method} {url}: bad HTTP from the server: {exc}") from None
    except ConnectionError as exc:
        raise HttpError(f"{method} {url}: connection lost: {exc}") from None
    finally:
        writer.close()


async def connect_websocket(url: str, *, headers: dict[str, str] | None = None, timeout: float = 10.0,
                            max_message: int = 16 << 20, heartbeat: float | None = None,
                            tls: ssl.SSLContext | None = None) -> WebSocket:
    """Open a WebSocket; HttpError if it cannot be reached or the server refuses the handshake."""
    try:
        return await asyncio.wait_for(_connect_websocket(url, headers or {}, max_message, heartbeat, tls), timeout)
    except asyncio.TimeoutError:
        raise HttpError(f"{url} did not complete a WebSocket handshake within {timeout:g} s") from None


async def _connect_websocket(url: str, headers: dict[str, str], max_message: int,
                             heartbeat: float | None, tls: ssl.SSLContext | None) -> WebSocket:
    try:
        reader, writer, host, target = await _open(url, ("ws", "wss"), tls)
    except HttpError as exc:
        raise HttpError(f"{url}: {exc}") from None
    ws = WSConnection(ConnectionType.CLIENT)
    try:
        writer.write(ws.send(WsRequest(host=host, target=target, extra_headers=list(headers.items()))))
        await writer.drain()
        while True:
            data = await reader.read(READ_CHUNK)
            if not data:
                raise HttpError(f"{url}: the server closed the connection during the handshake")
            ws.receive_data(data)
            for event in ws.events():
                if isinstance(event, AcceptConnection):
                    assert ws.connection is not None
                    return WebSocket(reader, writer, ws.connection, max_message=max_message, heartbeat=heartbeat)
                if isinstance(event, (RejectConnection, RejectData)):
                    status: Any = getattr(event, "status_code", None)
                    raise HttpError(f"{url}: WebSocket handshake refused (HTTP {status})", status)
    except (RemoteProtocolError, h11.ProtocolError) as exc:
        writer.close()
        raise HttpError(f"{url}: bad WebSocket handshake from the server: {exc}") from None
    except ConnectionError as exc:
        writer.close()
        raise HttpError(f"{url}: connection lost during the handshake: {exc}") from None
    except BaseException:
        writer.close()
        raise
