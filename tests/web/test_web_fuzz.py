"""Property: nothing a client sends can stop tagd.web's server.

One server runs for the whole module on its own event loop in a thread; each example sends arbitrary bytes
(or near-HTTP garbage, or a WebSocket upgrade followed by arbitrary frames) on a fresh connection, half-closes
it, and then a normal GET on a new connection must still be answered 200. Errors the server did not handle
(an exception escaping a connection task, a WebSocket endpoint failing inside the handler) are collected and
must stay none.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
from typing import Any, AsyncIterator, Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tagd.web.server import HttpServer, Request, Response, Stream, Upgrade
from tagd.web.websocket import WebSocket, WebSocketClosed
from web_helpers import BINARY, CLOSE, CONT, HOST, PING, PONG, TEXT, frame, upgrade_request


class _Collect(logging.Handler):
    def __init__(self, sink: list[str]) -> None:
        super().__init__(logging.ERROR)
        self.sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        self.sink.append(record.getMessage())


class ThreadedServer:
    def __init__(self, errors: list[str]) -> None:
        self.loop = asyncio.new_event_loop()
        self.errors = errors  # exceptions nobody handled on the server's loop
        self.loop.set_exception_handler(lambda loop, ctx: self.errors.append(
            f"{ctx.get('message')}: {ctx.get('exception')!r}"))
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.server = HttpServer(self.handler, max_body=4096, max_connections=64)
        self.port = self.run(self.server.start(HOST, 0))

    def run(self, coro: Any, timeout: float = 10) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    async def handler(self, request: Request) -> Any:
        if request.path == "/ws" and request.wants_websocket:
            return Upgrade(self.echo, max_message=4096, heartbeat=None)
        if request.path == "/events":
            return Stream(self.ticks())
        return Response(200, f"ok {request.method} {len(request.body)}")

    async def echo(self, ws: WebSocket) -> None:
        try:
            async for message in ws:
                await ws.send(message)
        except WebSocketClosed:
            pass

    @staticmethod
    async def ticks() -> AsyncIterator[bytes]:
        for _ in range(3):
            yield b"data: tick\n\n"
            await asyncio.sleep(0.001)

    def close(self) -> None:
        self.run(self.server.close())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


@pytest.fixture(scope="module")
def threaded() -> Iterator[ThreadedServer]:
    errors: list[str] = []
    collect = _Collect(errors)
    web_log = logging.getLogger("tagd.web")
    web_log.addHandler(collect)
    server = ThreadedServer(errors)  # the loop's unhandled errors and tagd.web's error logs, together
    yield server
    server.close()
    web_log.removeHandler(collect)


def send_and_hang_up(port: int, data: bytes) -> None:
    """Send ``data`` on a fresh connection, half-close, and read until the server closes (at most 2 s)."""
    with socket.create_connection((HOST, port), timeout=2) as sock:
        try:
            sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)
            while sock.recv(65536):
                pass
        except OSError:  # reset, timeout: the server may hang up on garbage however it likes
            pass


def plain_get(port: int) -> bytes:
    with socket.create_connection((HOST, port), timeout=5) as sock:
        sock.sendall(f"GET /after HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n".encode())
        out = b""
        while chunk := sock.recv(65536):
            out += chunk
    return out


def assert_still_serving(server: ThreadedServer) -> None:
    answer = plain_get(server.port)
    assert answer.startswith(b"HTTP/1.1 200 "), answer[:200]
    assert answer.endswith(b"ok GET 0")
    assert server.errors == []


# --- near-HTTP garbage -----------------------------------------------------------------------

token = st.text(st.sampled_from("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_."), min_size=1,
                max_size=12)
field_bytes = st.binary(max_size=40) | token.map(str.encode)
methods = st.sampled_from([b"GET", b"POST", b"PUT", b"HEAD", b"OPTIONS", b"DELETE", b"CONNECT", b"PRI", b"G ET",
                           b""]) | field_bytes
targets = st.sampled_from([b"/", b"/ws", b"/events", b"*", b"http://h/x", b"/%ff%00?%%", b"/a?b=c&b=d", b""]) | \
    field_bytes.map(lambda b: b"/" + b)
versions = st.sampled_from([b"HTTP/1.1", b"HTTP/1.0", b"HTTP/2.0", b"HTTP/1.1 ", b"http/1.1", b"HTTP/9", b""])
header_names = st.sampled_from([b"Host", b"Content-Length", b"Transfer-Encoding", b"Expect", b"Connection",
                                b"Upgrade", b"Sec-WebSocket-Key", b"Sec-WebSocket-Version", b" Host", b"X"]) | \
    field_bytes
header_values = st.sampled_from([b"x", b"chunked", b"100-continue", b"close", b"upgrade", b"websocket",
                                 b"13", b"-1", b"0", b"5", b"99999999999999999999", b"5, 6", b"gzip, chunked",
                                 b"dGhlIHNhbXBsZSBub25jZQ==", b"\xff\x00"]) | field_bytes
line_ends = st.sampled_from([b"\r\n", b"\n", b"\r", b""])
chunked_bodies = st.lists(st.tuples(st.integers(0, 0x2000), st.binary(max_size=30)), max_size=4).map(
    lambda chunks: b"".join(f"{n:x}\r\n".encode() + data + b"\r\n" for n, data in chunks))


@st.composite
def near_http(draw: Any) -> bytes:
    eol = draw(line_ends)
    out = draw(methods) + b" " + draw(targets) + b" " + draw(versions) + eol
    for name, value in draw(st.lists(st.tuples(header_names, header_values), max_size=8)):
        out += name + draw(st.sampled_from([b": ", b":", b" : ", b""])) + value + draw(line_ends | st.just(eol))
    out += draw(st.sampled_from([b"\r\n", b"\n", b""]))
    out += draw(st.binary(max_size=60) | chunked_bodies)
    if draw(st.booleans()):  # a pipelined second request, normal or not
        out += draw(st.sampled_from([b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", b"GET /ws HTTP/1.1\r\n", b"\r\n\r\n"]))
    return out


@st.composite
def websocket_garbage(draw: Any) -> bytes:
    """A proper upgrade, then frames: well-formed ones with odd flags, truncated ones, or raw bytes."""
    out = upgrade_request("/ws")[0]
    for _ in range(draw(st.integers(0, 5))):
        kind = draw(st.sampled_from(["frame", "raw"]))
        if kind == "raw":
            out += draw(st.binary(max_size=40))
            continue
        data = frame(draw(st.sampled_from([TEXT, BINARY, CONT, CLOSE, PING, PONG, 0x3, 0xB, 0xF])),
                     draw(st.binary(max_size=200)), fin=draw(st.booleans()), mask=draw(st.booleans()),
                     rsv=draw(st.integers(0, 7)))
        if draw(st.booleans()):
            data = data[:draw(st.integers(0, len(data)))]
        out += data
    return out


FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(data=st.binary(max_size=2048))
def test_arbitrary_bytes_never_stop_the_server(threaded: ThreadedServer, data: bytes) -> None:
    send_and_hang_up(threaded.port, data)
    assert_still_serving(threaded)


@FUZZ
@given(data=near_http())
def test_near_http_garbage_never_stops_the_server(threaded: ThreadedServer, data: bytes) -> None:
    send_and_hang_up(threaded.port, data)
    assert_still_serving(threaded)


@FUZZ
@given(data=websocket_garbage())
def test_websocket_garbage_after_an_upgrade_never_stops_the_server(threaded: ThreadedServer, data: bytes) -> None:
    send_and_hang_up(threaded.port, data)
    assert_still_serving(threaded)


def test_no_connection_is_left_behind_after_the_fuzzing(threaded: ThreadedServer) -> None:
    # every fuzz connection was half-closed by its client: the server must have let each of them go
    async def open_connections() -> int:
        for _ in range(100):
            if not threaded.server._connections:
                return 0
            await asyncio.sleep(0.02)
        return len(threaded.server._connections)

    assert threaded.run(open_connections()) == 0
