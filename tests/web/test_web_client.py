"""tagd.web.client against aiohttp's web server on 127.0.0.1 (an independent HTTP/WebSocket implementation),
and against raw asyncio servers where the peer must misbehave."""

from __future__ import annotations

import asyncio
import socket
from typing import Any, AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from tagd.web.client import HttpError, connect_websocket, request
from tagd.web.websocket import WebSocketClosed
from web_helpers import HOST
from web_helpers import start_server  # noqa: F401  (a fixture)


class Peer:
    """An aiohttp app: what it was sent is kept in ``seen``; ``release`` lets the slow handler finish."""

    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []
        self.closes: list[Any] = []
        self.release = asyncio.Event()
        self.app = web.Application()
        self.app.router.add_route("*", "/echo", self.echo)
        self.app.router.add_get("/status/{code}", self.status)
        self.app.router.add_get("/slow", self.slow)
        self.app.router.add_get("/ws", self.ws_echo)
        self.app.router.add_get("/ws-secret", self.ws_secret)
        self.app.router.add_get("/ws-bye", self.ws_bye)
        self.app.router.add_get("/ws-huge", self.ws_huge)

    async def echo(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.seen.append({"method": request.method, "path_qs": request.path_qs, "headers": dict(request.headers),
                          "body": body})
        return web.Response(body=b"echo:" + body, headers={"X-Reply": "yes"})

    async def status(self, request: web.Request) -> web.Response:
        return web.Response(status=int(request.match_info["code"]), text="status body")

    async def slow(self, request: web.Request) -> web.Response:
        await self.release.wait()
        return web.Response(text="late")

    async def ws_echo(self, request: web.Request) -> web.WebSocketResponse:
        self.seen.append({"headers": dict(request.headers)})
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for message in ws:
            if message.type is aiohttp.WSMsgType.TEXT:
                await ws.send_str(message.data)
            elif message.type is aiohttp.WSMsgType.BINARY:
                await ws.send_bytes(message.data)
        self.closes.append(ws.close_code)
        return ws

    async def ws_secret(self, request: web.Request) -> web.StreamResponse:
        if request.headers.get("Authorization") != "Bearer s3cret":
            return web.Response(status=401, text="who are you?")
        return await self.ws_echo(request)

    async def ws_bye(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_str("goodbye")
        await ws.close(code=4000, message=b"done with you")
        return ws

    async def ws_huge(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_bytes(b"h" * (2 << 20))
        message = await ws.receive(timeout=5)  # the client's close
        self.closes.append(message.data if message.type is aiohttp.WSMsgType.CLOSE else message.type)
        return ws


@pytest.fixture
async def peer() -> AsyncIterator[tuple[Peer, str]]:
    p = Peer()
    runner = web.AppRunner(p.app)
    await runner.setup()
    site = web.TCPSite(runner, HOST, 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield p, f"{HOST}:{port}"
    p.release.set()
    await runner.cleanup()


@pytest.fixture
def refused_port() -> Any:
    """A port on 127.0.0.1 that is bound but not listening: connecting is refused."""
    sock = socket.socket()
    sock.bind((HOST, 0))
    yield sock.getsockname()[1]
    sock.close()


async def raw_server(callback: Any) -> tuple[asyncio.AbstractServer, int]:
    server = await asyncio.start_server(callback, HOST, 0)
    return server, server.sockets[0].getsockname()[1]


# --- request ---------------------------------------------------------------------------------


async def test_request_returns_status_body_and_headers(peer: tuple[Peer, str]) -> None:
    response = await request("GET", f"http://{peer[1]}/echo")
    assert response.status == 200
    assert response.body == b"echo:"
    assert response.headers["x-reply"] == "yes"  # names lower-case
    assert response.headers["content-length"] == "5"


async def test_request_sends_method_target_body_and_the_callers_headers(peer: tuple[Peer, str]) -> None:
    response = await request("POST", f"http://{peer[1]}/echo?a=1&b=%C3%A9", body=b'{"x": 1}',
                             headers={"Content-Type": "application/json", "X-Api-Key": "k1"})
    assert response.body == b'echo:{"x": 1}'
    seen = peer[0].seen[-1]
    assert seen["method"] == "POST"
    assert seen["path_qs"] == "/echo?a=1&b=%C3%A9"
    assert seen["body"] == b'{"x": 1}'
    assert seen["headers"]["Content-Type"] == "application/json"
    assert seen["headers"]["X-Api-Key"] == "k1"
    assert seen["headers"]["Host"] == peer[1]
    assert seen["headers"]["Content-Length"] == "8"


@pytest.mark.parametrize("code", [404, 500, 302])
async def test_request_returns_a_non_2xx_status_instead_of_raising(peer: tuple[Peer, str], code: int) -> None:
    response = await request("GET", f"http://{peer[1]}/status/{code}")
    assert response.status == code
    assert response.body == b"status body"


async def test_request_timeout_is_an_http_error_saying_it_did_not_answer(peer: tuple[Peer, str]) -> None:
    loop = asyncio.get_running_loop()
    start = loop.time()
    with pytest.raises(HttpError, match="did not answer within 0.2 s") as caught:
        await request("GET", f"http://{peer[1]}/slow", timeout=0.2)
    assert loop.time() - start < 1.5
    assert caught.value.status is None


async def test_request_to_a_refused_port_is_an_http_error_naming_host_and_port(refused_port: int) -> None:
    with pytest.raises(HttpError, match=f"cannot connect to {HOST}:{refused_port}"):
        await request("GET", f"http://{HOST}:{refused_port}/")


@pytest.mark.parametrize("url", ["ftp://127.0.0.1/x", "ws://127.0.0.1/x", "127.0.0.1:80/x", "http:///nohost"])
async def test_request_with_a_bad_url_is_an_http_error(url: str) -> None:
    with pytest.raises(HttpError, match="expected a http:// or https:// URL"):
        await request("GET", url)


async def test_request_with_a_bad_port_is_an_http_error() -> None:
    with pytest.raises(HttpError, match="bad port"):
        await request("GET", "http://127.0.0.1:99999/")


async def test_request_to_a_server_that_closes_without_answering_says_so() -> None:
    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.close()

    server, port = await raw_server(hang_up)
    async with server:
        with pytest.raises(HttpError, match="closed the connection without answering"):
            await request("GET", f"http://{HOST}:{port}/")


async def test_request_to_a_server_speaking_garbage_is_an_http_error() -> None:
    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"SSH-2.0-OpenSSH_9.6\r\n\r\n")
        await writer.drain()
        writer.close()

    server, port = await raw_server(garbage)
    async with server:
        with pytest.raises(HttpError, match="bad HTTP from the server"):
            await request("GET", f"http://{HOST}:{port}/")


async def test_request_reads_a_body_delimited_by_connection_close() -> None:
    async def old_style(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end")
        await writer.drain()
        writer.close()

    server, port = await raw_server(old_style)
    async with server:
        response = await request("GET", f"http://{HOST}:{port}/")
    assert (response.status, response.body) == (200, b"until the end")


# --- connect_websocket ------------------------------------------------------------------------


async def test_connect_websocket_round_trip_with_aiohttp(peer: tuple[Peer, str]) -> None:
    ws = await connect_websocket(f"ws://{peer[1]}/ws", headers={"X-Client": "tagd"})
    await ws.send("hello ☃")
    assert await ws.receive() == "hello ☃"
    await ws.send(b"\x00\x01")
    assert await ws.receive() == b"\x00\x01"
    await ws.close()
    assert peer[0].seen[-1]["headers"]["X-Client"] == "tagd"
    for _ in range(100):
        if peer[0].closes:
            break
        await asyncio.sleep(0.01)
    assert peer[0].closes == [1000]


async def test_connect_websocket_sends_the_callers_headers_in_the_handshake(peer: tuple[Peer, str]) -> None:
    ws = await connect_websocket(f"ws://{peer[1]}/ws-secret", headers={"Authorization": "Bearer s3cret"})
    await ws.send("in")
    assert await ws.receive() == "in"
    await ws.close()


async def test_refused_websocket_handshake_is_an_http_error_with_the_status(peer: tuple[Peer, str]) -> None:
    with pytest.raises(HttpError, match="refused") as caught:
        await connect_websocket(f"ws://{peer[1]}/ws-secret")
    assert caught.value.status == 401


async def test_websocket_to_a_plain_http_path_is_refused_with_its_status(peer: tuple[Peer, str]) -> None:
    with pytest.raises(HttpError) as caught:
        await connect_websocket(f"ws://{peer[1]}/status/404")
    assert caught.value.status == 404


async def test_server_initiated_close_makes_receive_return_none(peer: tuple[Peer, str]) -> None:
    ws = await connect_websocket(f"ws://{peer[1]}/ws-bye")
    assert await ws.receive() == "goodbye"
    assert await asyncio.wait_for(ws.receive(), 2) is None
    assert ws.close_code == 4000
    assert await ws.receive() is None  # and stays closed
    with pytest.raises(WebSocketClosed):
        await ws.send("anyone?")


async def test_message_over_max_message_from_the_server_closes_with_1009(peer: tuple[Peer, str]) -> None:
    ws = await connect_websocket(f"ws://{peer[1]}/ws-huge", max_message=1 << 20)
    assert await asyncio.wait_for(ws.receive(), 5) is None
    assert ws.close_code == 1009
    for _ in range(200):
        if peer[0].closes:
            break
        await asyncio.sleep(0.01)
    assert peer[0].closes == [1009]  # the server was told why


async def test_async_iteration_yields_messages_until_the_server_closes(peer: tuple[Peer, str]) -> None:
    ws = await connect_websocket(f"ws://{peer[1]}/ws-bye")
    assert [m async for m in ws] == ["goodbye"]


async def test_connect_websocket_to_a_refused_port_names_host_and_port(refused_port: int) -> None:
    with pytest.raises(HttpError, match=f"cannot connect to {HOST}:{refused_port}"):
        await connect_websocket(f"ws://{HOST}:{refused_port}/ws")


async def test_connect_websocket_with_an_http_url_is_an_http_error() -> None:
    with pytest.raises(HttpError, match="expected a ws:// or wss:// URL"):
        await connect_websocket(f"http://{HOST}:1/ws")


async def test_connect_websocket_timeout_is_an_http_error() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # takes the handshake and never answers

    server, port = await raw_server(silent)
    async with server:
        with pytest.raises(HttpError, match="did not complete a WebSocket handshake within 0.2 s"):
            await connect_websocket(f"ws://{HOST}:{port}/ws", timeout=0.2)


async def test_connect_websocket_to_a_server_that_hangs_up_is_an_http_error() -> None:
    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.close()

    server, port = await raw_server(hang_up)
    async with server:
        with pytest.raises(HttpError, match="closed the connection during the handshake"):
            await connect_websocket(f"ws://{HOST}:{port}/ws")
