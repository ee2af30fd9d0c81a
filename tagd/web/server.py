"""A small HTTP/1.1 server on asyncio streams and h11, with WebSocket upgrades (wsproto) and streamed bodies.

The handler gets each :class:`Request` whole (head and body read, within the limits) and returns one of
- :class:`Response` — status, body, headers; the connection is kept alive for the next request;
- :class:`Stream` — the head now, then each chunk its async iterator yields (server-sent events), until the
  iterator ends or the client goes away;
- :class:`Upgrade` — for a request that asks for a WebSocket (:attr:`Request.wants_websocket`): the server
  answers 101 and runs ``Upgrade.handler`` with the :class:`~tagd.web.websocket.WebSocket`.

Limits, each answered with its own status before the connection closes: a request head over 16 KiB (431),
a body over ``max_body`` (413), a malformed request (400) — among them one with both Content-Length and
Transfer-Encoding (RFC 9112 §6.3: the two framings are how requests are smuggled) —, no slot (503: see
:mod:`tagd.web.admission` for who gets one when ``max_connections`` are open; accepting survives running out
of descriptors, :mod:`tagd.web.listener`). ``Expect: 100-continue`` is honoured. A request head must arrive
whole within HEAD_TIMEOUT of its first byte and the whole request within REQUEST_TIMEOUT (408); a keep-alive
connection idle for IDLE_TIMEOUT is closed, a new one that sends nothing within FIRST_REQUEST_TIMEOUT too.
Targets in absolute form (``GET http://host/health``, RFC 9112 §3.2.2) are served as their path. While the handler runs, the connection is
watched: a client that closes it sets :attr:`Request.disconnected`. A client gone mid-request is let go quietly.
A handler that raises is logged and answered 500: nothing a client sends can stop the server.
Once three quarters of a crowd (CROWD or more connections open at once) have gone, ``after_crowd`` is called
(again at each further quarter while the crowd was still CROWD or more): the daemon gives memory back then.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import re
import logging
import socket
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Awaitable, Callable, Union
from urllib.parse import parse_qsl, unquote, urlsplit

import h11
from wsproto.connection import Connection, ConnectionType

from tagd.web.admission import Admission, loopback_address
from tagd.web.listener import Listener, StreamProtocol, raise_nofile_limit
from tagd.web.websocket import GOING_AWAY, INTERNAL_ERROR, WebSocket

log = logging.getLogger(__name__)

MAX_HEAD = 16 * 1024
READ_CHUNK = 1 << 16
HEAD_TIMEOUT = 10.0  # from a request's first byte to the end of its head (slowloris sends a byte a second)
REQUEST_TIMEOUT = 30.0
MAX_CONNECTIONS = 1024
IDLE_TIMEOUT = 75.0
FIRST_REQUEST_TIMEOUT = 10.0  # a new connection that sends nothing for this long is closed (it holds a slot)
CROWD = 64  # connections open at once: once there were this many, ``after_crowd`` is called as they go
LINGER = 2.0  # after refusing a request, how long its unread rest is drained before the close
LINGER_BYTES = 1 << 20
_SURROGATE = re.compile("[\ud800-\udfff]")
WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 §1.3


@dataclass
class Request:
    method: str
    target: str  # as sent, e.g. "/run/%2A%2Alaunch?key=x"
    path: str  # percent-decoded (UTF-8), without the query
    query: dict[str, str]  # first value of each name
    headers: dict[str, str]  # lower-case names; repeated headers joined with ", "
    peer: str  # the client's address ("" when unknown)
    body: bytes = b""
    local: str = ""  # the address of ours the request came in on
    # set when the client closes the connection while the handler runs (a handler may stop waiting for it)
    disconnected: asyncio.Event = field(default_factory=asyncio.Event)
    @property
    def wants_websocket(self) -> bool:
        return (self.method == "GET" and "websocket" in self.headers.get("upgrade", "").lower()
                and "upgrade" in _tokens(self.headers.get("connection", "")))


@dataclass
class Response:
    status: int = 200
    body: bytes | str = b""
    content_type: str = "text/plain; charset=utf-8"
    headers: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class Stream:
    chunks: AsyncIterator[bytes]
    content_type: str = "application/octet-stream"
    headers: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class Upgrade:
    handler: Callable[[WebSocket], Awaitable[None]]
    max_message: int = 1 << 20
    heartbeat: float | None = 30.0


Handler = Callable[[Request], Awaitable[Union[Response, Stream, Upgrade]]]


def json_text(obj: Any) -> str:
    """JSON text that always encodes as UTF-8: with a lone surrogate in it (from a core, a tag …) the message is
    sent with ``\\uXXXX`` escapes (still JSON; the raw code point is not UTF-8) instead of being unsendable."""
    text = json.dumps(obj, ensure_ascii=False)
    return json.dumps(obj) if _SURROGATE.search(text) else text


def json_response(obj: Any, status: int = 200) -> Response:
    return Response(status, json_text(obj), "application/json; charset=utf-8")


def _host(address: Any) -> str:
    """The host part of a socket address ("" for a Unix socket or none)."""
    return str(address[0]) if isinstance(address, tuple) and address else ""


def _parsed(conn: h11.Connection) -> Any:
    """h11's next event; a malformed request is refused with the status h11 suggests (400, 431 …)."""
    try:
        return conn.next_event()
    except h11.RemoteProtocolError as exc:
        raise _Refused(exc.error_status_hint, f"bad request: {exc}") from None


def _origin_form(target: str) -> str:
    """The path and query of a request target; an absolute-form target (``http://host/path?q``, as proxies
    send and RFC 9112 §3.2.2 says servers accept) loses its scheme and authority."""
    if target.startswith("/") or "://" not in target:
        return target
    parts = urlsplit(target)
    return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


def _tokens(value: str) -> set[str]:
    return {t.strip().lower() for t in value.split(",")}


def websocket_accept(key: str) -> str:
    """Sec-WebSocket-Accept for a Sec-WebSocket-Key (RFC 6455 §4.2.2)."""
    return base64.b64encode(hashlib.sha1(key.encode("ascii", "replace") + WS_GUID).digest()).decode()


class _Refused(Exception):
    """A request the server answers itself (status, reason) and then closes the connection."""

    def __init__(self, status: int, reason: str, headers: list[tuple[str, str]] | None = None) -> None:
        super().__init__(reason)
        self.status, self.reason, self.headers = status, reason, headers or []


class HttpServer:
    def __init__(self, handler: Handler, *, max_body: int = 1 << 20, max_connections: int = MAX_CONNECTIONS,
                 trusted: Callable[[str], bool] = loopback_address,
                 after_crowd: Callable[[], None] | None = None) -> None:
        self.handler = handler
        self.after_crowd = after_crowd  # called as a crowd of connections goes (memory back; see the module doc)
        self.max_body = max_body
        self.max_connections = max_connections
        self.admission = Admission(max_connections, trusted)
        self.port = 0
        self._listener: Listener | None = None
        self._connections: set[asyncio.Task[Any]] = set()
        self._sockets: set[WebSocket] = set()
        self._peak = 0  # the most connections open at once since the last crowd left

    async def start(self, host: str, port: int) -> int:
        """Listen (host "" = every interface); returns the port, which ``port=0`` lets the system pick."""
        raise_nofile_limit(self.max_connections)
        self._listener = Listener(self._adopt)
        self.port = await self._listener.start(host, port)
        return self.port

    async def close(self) -> None:
        """Stop listening, say goodbye (1001) to WebSocket clients and end every connection."""
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        for ws in list(self._sockets):
            await ws.close(GOING_AWAY, "server shutting down")
        tasks = list(self._connections)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _adopt(self, sock: socket.socket, address: Any) -> None:
        """An accepted socket becomes a stream pair served by :meth:`_serve` (what asyncio.start_server does)."""
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=READ_CHUNK)
        protocol = StreamProtocol(reader, self._serve)

        async def connect() -> None:
            try:
                await loop.connect_accepted_socket(lambda: protocol, sock)
            except OSError:
                sock.close()

        loop.create_task(connect())

    # --- one connection -------------------------------------------------------
    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        self._peak = max(self._peak, len(self._connections))
        peer, local = (_host(writer.get_extra_info(key)) for key in ("peername", "sockname"))
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD)
        loop = asyncio.get_running_loop()
        try:
            verdict = self.admission.arrive(task, peer, loop.time())
            if not verdict.admit:
                raise _Refused(503, verdict.reason)
            if isinstance(verdict.evict, asyncio.Task):
                verdict.evict.cancel()  # a connection that had not sent a whole request makes room
            first = True
            while await self._one_request(conn, reader, writer, peer, local, first):
                self.admission.busy(task, False, loop.time())
                conn.start_next_cycle()
                first = False
        except _Refused as refused:
            await self._send_refusal(conn, reader, writer, refused)
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, h11.ProtocolError):
            pass  # the client went away (ENOTCONN, reset …): nothing to answer
        except asyncio.CancelledError:
            pass
        finally:
            self._connections.discard(task)
            self.admission.leave(task)
            writer.close()
            self._thinned()

    @property
    def crowded(self) -> bool:
        """CROWD or more connections open now."""
        return len(self._connections) >= CROWD

    def _thinned(self) -> None:
        """A connection ended: once three quarters of a crowd (``CROWD`` or more at once) have gone, say so."""
        left = len(self._connections)
        if self._peak >= CROWD and left <= self._peak // 4:
            self._peak = left
            if self.after_crowd is not None:
                self.after_crowd()

    async def _one_request(self, conn: h11.Connection, reader: asyncio.StreamReader,
                           writer: asyncio.StreamWriter, peer: str, local: str, first: bool = False) -> bool:
        """Read, handle and answer one request; True when the connection can take another."""
        request = await self._read_request(conn, reader, writer, peer, local,
                                           FIRST_REQUEST_TIMEOUT if first else IDLE_TIMEOUT)
        if request is None:
            return False
        self.admission.busy(asyncio.current_task(), True, 0.0)
        watch = asyncio.ensure_future(self._watch(conn, reader, request))
        try:
            result = await self.handler(request)
        except Exception:
            log.exception("HTTP handler failed on %s %s", request.method, request.path)
            result = Response(500, "internal error")
        finally:
            watch.cancel()
            await asyncio.gather(watch, return_exceptions=True)
        if isinstance(result, Upgrade) and request.wants_websocket:
            await self._upgrade(conn, reader, writer, request, result)
            return False
        if isinstance(result, Stream):
            await self._stream(conn, reader, writer, result)
            return False
        if not isinstance(result, Response):
            result = Response(400, "WebSocket expected")
        body = result.body.encode(errors="replace") if isinstance(result.body, str) else result.body
        head = h11.Response(status_code=result.status, headers=[
            ("content-type", result.content_type), ("content-length", str(len(body))), *result.headers])
        with_body = body and request.method != "HEAD"  # HEAD: GET's head, without the content
        writer.write(conn.send(head) + (conn.send(h11.Data(data=body)) if with_body else b"") + conn.send(h11.EndOfMessage()))
        await writer.drain()
        return conn.our_state is h11.DONE and conn.their_state is h11.DONE

    async def _watch(self, conn: h11.Connection, reader: asyncio.StreamReader, request: Request) -> None:
        """While a handler runs: read on, so that a client closing the connection is seen (``disconnected``).
        What it sends meanwhile (pipelined requests) goes to h11, which keeps it for the next cycle; past a
        request's worth of it, reading stops (and with it the watch)."""
        taken = 0
        while taken <= MAX_HEAD + self.max_body:
            try:
                data = await reader.read(READ_CHUNK)
            except OSError:
                data = b""
            try:
                conn.receive_data(data)
            except RuntimeError:
                return
            if not data:
                request.disconnected.set()
                return
            taken += len(data)

    async def _read_request(self, conn: h11.Connection, reader: asyncio.StreamReader,
                            writer: asyncio.StreamWriter, peer: str, local: str,
                            idle: float = IDLE_TIMEOUT) -> Request | None:
        """The next request, whole; None when the client closed the connection between requests (or sent none
        within ``idle`` seconds)."""
        loop = asyncio.get_running_loop()
        head = _parsed(conn)  # a pipelined request may already be buffered
        deadline = loop.time() + REQUEST_TIMEOUT  # for all of the request, from its first byte
        if head is h11.NEED_DATA:  # between requests: wait as long as a keep-alive connection may idle
            try:
                conn.receive_data(await asyncio.wait_for(reader.read(READ_CHUNK), idle))
            except asyncio.TimeoutError:
                return None
            started = loop.time()
            deadline = started + REQUEST_TIMEOUT
            head = await self._next_event(conn, reader, min(started + HEAD_TIMEOUT, deadline))
        if not isinstance(head, h11.Request):
            return None
        names = {name for name, _ in head.headers}
        if b"content-length" in names and b"transfer-encoding" in names:
            raise _Refused(400, "bad request: both Content-Length and Transfer-Encoding (RFC 9112 §6.3)")
        if len(head.target) + sum(len(n) + len(v) + 4 for n, v in head.headers) > MAX_HEAD:
            raise _Refused(431, f"request head over {MAX_HEAD} bytes")  # h11 only bounds a head still arriving
        headers: dict[str, str] = {}
        for raw_name, raw_value in head.headers:
            name, value = raw_name.decode("latin-1"), raw_value.decode("latin-1")
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        length = headers.get("content-length", "")
        if length.isdigit() and int(length) > self.max_body:
            raise _Refused(413, f"request body over {self.max_body} bytes")
        body = bytearray()
        while True:
            if conn.client_is_waiting_for_100_continue:
                writer.write(conn.send(h11.InformationalResponse(status_code=100, headers=[])))
            event = await self._next_event(conn, reader, deadline)
            if isinstance(event, h11.Data):
                body += event.data
                if len(body) > self.max_body:
                    raise _Refused(413, f"request body over {self.max_body} bytes")
            elif isinstance(event, h11.EndOfMessage):
                break
            else:  # the client went away mid-request
                return None
        target = head.target.decode("latin-1")
        raw_path, _, raw_query = _origin_form(target).partition("?")
        query: dict[str, str] = {}
        for name, value in parse_qsl(raw_query, keep_blank_values=True):
            query.setdefault(name, value)
        return Request(head.method.decode("latin-1"), target, unquote(raw_path, errors="replace"), query,
                       headers, peer, bytes(body), local)

    async def _next_event(self, conn: h11.Connection, reader: asyncio.StreamReader, deadline: float) -> Any:
        while (event := _parsed(conn)) is h11.NEED_DATA:
            remaining = deadline - asyncio.get_running_loop().time()
            try:
                if remaining <= 0:
                    raise asyncio.TimeoutError
                data = await asyncio.wait_for(reader.read(READ_CHUNK), remaining)
            except asyncio.TimeoutError:
                raise _Refused(408, "request not received in time") from None
            conn.receive_data(data)
        return event

    async def _send_refusal(self, conn: h11.Connection, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                            refused: _Refused) -> None:
        if conn.our_state not in (h11.IDLE, h11.SEND_RESPONSE):
            return
        body = refused.reason.encode()
        try:
            writer.write(conn.send(h11.Response(status_code=refused.status, headers=[
                ("content-type", "text/plain; charset=utf-8"), ("content-length", str(len(body))),
                ("connection", "close"), *refused.headers])) + conn.send(h11.Data(data=body)) + conn.send(h11.EndOfMessage()))
            await writer.drain()
            await self._linger(reader, writer)
        except (OSError, h11.ProtocolError):
            pass  # the client is gone already (write_eof on a reset socket is ENOTCONN)

    @staticmethod
    async def _linger(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Close in stages (RFC 9112 §9.6): half-close, then read and drop what the client still sends for a
        moment. Closing with its request unread would make the kernel answer with a reset, which can destroy
        the refusal before the client reads it."""
        if writer.can_write_eof():
            writer.write_eof()
        loop = asyncio.get_running_loop()
        deadline, dropped = loop.time() + LINGER, 0
        while dropped < LINGER_BYTES and (remaining := deadline - loop.time()) > 0:
            try:
                chunk = await asyncio.wait_for(reader.read(READ_CHUNK), remaining)
            except asyncio.TimeoutError:
                return
            if not chunk:
                return
            dropped += len(chunk)

    async def _upgrade(self, conn: h11.Connection, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                       request: Request, upgrade: Upgrade) -> None:
        key = request.headers.get("sec-websocket-key", "").strip()
        if request.headers.get("sec-websocket-version", "").strip() != "13":
            raise _Refused(426, "WebSocket version 13 expected", [("sec-websocket-version", "13")])  # RFC 6455 §4.4
        try:
            valid_key = len(base64.b64decode(key, validate=True)) == 16
        except ValueError:
            valid_key = False
        if not valid_key:
            raise _Refused(400, "bad Sec-WebSocket-Key")
        writer.write(conn.send(h11.InformationalResponse(status_code=101, headers=[
            ("upgrade", "websocket"), ("connection", "Upgrade"), ("sec-websocket-accept", websocket_accept(key))])))
        trailing, _ = conn.trailing_data
        ws = WebSocket(reader, writer, Connection(ConnectionType.SERVER, trailing_data=trailing),
                       max_message=upgrade.max_message, heartbeat=upgrade.heartbeat)
        self._sockets.add(ws)
        try:
            await upgrade.handler(ws)
        except Exception:
            log.exception("WebSocket handler failed on %s", request.path)
            await ws.close(INTERNAL_ERROR, "internal error")
        finally:
            self._sockets.discard(ws)
            await ws.close()

    async def _stream(self, conn: h11.Connection, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                      stream: Stream) -> None:
        """Send the head, then the chunks, until they end or the client closes its side."""
        writer.write(conn.send(h11.Response(status_code=200, headers=[
            ("content-type", stream.content_type), *stream.headers])))  # no length: h11 chunks it

        async def pump() -> None:
            async for chunk in stream.chunks:
                writer.write(conn.send(h11.Data(data=chunk)))
                await writer.drain()
            writer.write(conn.send(h11.EndOfMessage()))
            await writer.drain()

        async def client_gone() -> None:
            while await reader.read(READ_CHUNK):
                pass

        tasks = [asyncio.ensure_future(pump()), asyncio.ensure_future(client_gone())]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            aclose = getattr(stream.chunks, "aclose", None)
            if aclose is not None:
                await aclose()
