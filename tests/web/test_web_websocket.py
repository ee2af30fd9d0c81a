"""WebSocket on tagd.web's server (RFC 6455): the handshake, message assembly, limits, control frames,
protocol errors, heartbeat and shutdown, driven by hand-built frames (web_helpers.frame, masked as a client
must) and, for a round trip with an independent implementation, by aiohttp's client."""

from __future__ import annotations

import asyncio
import struct
from typing import Any

import aiohttp
import pytest

from tagd.web.server import Request, Response, Upgrade
from tagd.web.websocket import WebSocket, WebSocketClosed
from web_helpers import BINARY, CLOSE, CONT, HOST, PING, PONG, TEXT, Raw, close_frame, frame, upgrade_request
from web_helpers import start_server  # noqa: F401  (a fixture)

MAX_MESSAGE = 1000


class App:
    """/ws echoes (max_message 1000, no heartbeat); /hb echoes with heartbeat 0.2 s; /boom's handler raises.
    Each socket's close code is kept in ``codes`` once its handler ends."""

    def __init__(self) -> None:
        self.codes: list[int | None] = []
        self.ended = asyncio.Event()

    async def __call__(self, request: Request) -> Any:
        if request.path == "/ws":
            return Upgrade(self.echo, max_message=MAX_MESSAGE, heartbeat=None)
        if request.path == "/hb":
            return Upgrade(self.echo, max_message=MAX_MESSAGE, heartbeat=0.2)
        if request.path == "/boom":
            return Upgrade(self.boom)
        return Response(200, "plain")

    async def echo(self, ws: WebSocket) -> None:
        try:
            async for message in ws:
                await ws.send(message)
        except WebSocketClosed:
            pass
        finally:
            self.codes.append(ws.close_code)
            self.ended.set()

    async def boom(self, ws: WebSocket) -> None:
        await ws.receive()
        raise RuntimeError("a WebSocket handler bug")


@pytest.fixture
async def app_server(start_server: Any) -> tuple[App, Any]:
    app = App()
    return app, await start_server(app)


@pytest.fixture
async def ws(app_server: tuple[App, Any]) -> Any:
    """A raw connection to /ws, past the handshake."""
    raw = await Raw.open(app_server[1].port)
    await raw.upgrade("/ws")
    yield raw
    raw.close()


async def handler_close_code(app: App) -> int | None:
    await asyncio.wait_for(app.ended.wait(), 2)
    return app.codes[-1]


async def plain_get_works(port: int) -> bool:
    raw = await Raw.open(port)
    await raw.send(f"GET / HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n".encode())
    status, _, body = await raw.response()
    raw.close()
    return status == 200 and body == b"plain"


# --- the handshake --------------------------------------------------------------------


async def test_upgrade_with_version_other_than_13_gets_426(app_server: tuple[App, Any]) -> None:
    raw = await Raw.open(app_server[1].port)
    await raw.send(upgrade_request("/ws", version="8")[0])
    status, _ = await raw.head()
    assert status == 426
    raw.close()
    assert await plain_get_works(app_server[1].port)


async def test_426_names_the_supported_version(app_server: tuple[App, Any]) -> None:
    # RFC 6455 §4.4: the refusal MUST carry a Sec-WebSocket-Version header with the versions understood
    raw = await Raw.open(app_server[1].port)
    await raw.send(upgrade_request("/ws", version="8")[0])
    status, headers = await raw.head()
    assert status == 426
    assert headers.get("sec-websocket-version") == "13"
    raw.close()


@pytest.mark.parametrize("key", ["not base64 at all!", "AAAAAAAAAAAAAAAAAAAA", ""],
                         ids=["not-base64", "15-bytes", "missing"])
async def test_upgrade_with_bad_key_gets_400(app_server: tuple[App, Any], key: str) -> None:
    raw = await Raw.open(app_server[1].port)
    await raw.send(upgrade_request("/ws", key=key)[0])
    status, _ = await raw.head()
    assert status == 400
    raw.close()
    assert await plain_get_works(app_server[1].port)


async def test_frame_in_the_same_write_as_the_upgrade_request_is_delivered(app_server: tuple[App, Any]) -> None:
    raw = await Raw.open(app_server[1].port)
    await raw.upgrade("/ws", extra=frame(TEXT, b"early bird"))
    assert await raw.ws_frame() == (True, TEXT, b"early bird")
    raw.close()


# --- messages -------------------------------------------------------------------------


async def test_text_and_binary_messages_are_echoed(ws: Raw) -> None:
    await ws.send(frame(TEXT, "héllo".encode()))
    assert await ws.ws_frame() == (True, TEXT, "héllo".encode())
    await ws.send(frame(BINARY, b"\x00\xff\x10"))
    assert await ws.ws_frame() == (True, BINARY, b"\x00\xff\x10")


async def test_fragmented_text_message_arrives_whole(ws: Raw) -> None:
    snowman = "☃".encode()  # 3 bytes, split across two fragments
    await ws.send(frame(TEXT, b"frag", fin=False) + frame(CONT, b"mented " + snowman[:1], fin=False))
    await asyncio.sleep(0.05)  # the rest comes in a later TCP segment
    await ws.send(frame(CONT, snowman[1:] + b" message"))
    assert await ws.ws_frame() == (True, TEXT, "fragmented ☃ message".encode())


async def test_ping_between_fragments_is_answered_and_the_message_still_arrives_whole(ws: Raw) -> None:
    await ws.send(frame(TEXT, b"one ", fin=False) + frame(PING, b"mid") + frame(CONT, b"two"))
    assert await ws.ws_frame() == (True, PONG, b"mid")
    assert await ws.ws_frame() == (True, TEXT, b"one two")


async def test_message_of_exactly_max_message_is_delivered(ws: Raw) -> None:
    await ws.send(frame(TEXT, b"m" * MAX_MESSAGE))
    assert await ws.ws_frame() == (True, TEXT, b"m" * MAX_MESSAGE)


async def test_message_over_max_message_closes_with_1009(app_server: tuple[App, Any], ws: Raw) -> None:
    await ws.send(frame(BINARY, b"m" * (MAX_MESSAGE + 1)))
    assert await ws.ws_close_code() == 1009
    assert await handler_close_code(app_server[0]) == 1009
    assert await plain_get_works(app_server[1].port)


async def test_fragmented_message_over_max_message_closes_with_1009(ws: Raw) -> None:
    await ws.send(frame(TEXT, b"a" * 600, fin=False) + frame(CONT, b"b" * 600))
    assert await ws.ws_close_code() == 1009


# --- control frames and closing ---------------------------------------------------------


async def test_ping_is_answered_with_a_pong_carrying_the_same_payload(ws: Raw) -> None:
    await ws.send(frame(PING, b"are you there \x00\xff"))
    assert await ws.ws_frame() == (True, PONG, b"are you there \x00\xff")


async def test_client_close_is_answered_with_a_close_frame_and_the_connection_ends(
        app_server: tuple[App, Any], ws: Raw) -> None:
    await ws.send(close_frame(1000, b"bye"))
    fin, opcode, payload = await ws.ws_frame()
    assert opcode == CLOSE and struct.unpack("!H", payload[:2])[0] == 1000
    assert await ws.eof(timeout=2) == b""
    assert await handler_close_code(app_server[0]) == 1000


async def test_server_close_sends_1001_to_open_sockets(app_server: tuple[App, Any], ws: Raw) -> None:
    await asyncio.wait_for(app_server[1].close(), 3)
    assert await ws.ws_close_code() == 1001


# --- protocol errors by the client --------------------------------------------------------


async def test_unmasked_client_frame_closes_with_1002(app_server: tuple[App, Any], ws: Raw) -> None:
    await ws.send(frame(TEXT, b"naked", mask=False))
    assert await ws.ws_close_code() == 1002
    assert await plain_get_works(app_server[1].port)


async def test_invalid_utf8_in_a_text_frame_closes_with_1007(ws: Raw) -> None:
    await ws.send(frame(TEXT, b"bad \xff\xfe utf-8"))
    assert await ws.ws_close_code() == 1007


async def test_reserved_bit_without_an_extension_closes_with_1002(ws: Raw) -> None:
    await ws.send(frame(TEXT, b"rsv", rsv=0b100))
    assert await ws.ws_close_code() == 1002


async def test_close_frame_with_an_invalid_code_closes_with_1002(ws: Raw) -> None:
    await ws.send(close_frame(999))
    assert await ws.ws_close_code() == 1002


async def test_continuation_without_a_message_to_continue_closes_with_1002(ws: Raw) -> None:
    await ws.send(frame(CONT, b"orphan"))
    assert await ws.ws_close_code() == 1002


# --- heartbeat ------------------------------------------------------------------------------


async def test_heartbeat_pings_a_silent_client_then_drops_it_after_twice_the_heartbeat(
        app_server: tuple[App, Any]) -> None:
    raw = await Raw.open(app_server[1].port)
    await raw.upgrade("/hb")
    loop = asyncio.get_running_loop()
    start = loop.time()
    _, opcode, payload = await raw.ws_frame(timeout=2)
    pinged = loop.time() - start
    assert opcode == PING
    assert 0.15 <= pinged < 1.0
    assert await raw.eof(timeout=3) == b""  # dropped, without more frames
    dropped = loop.time() - start
    assert 0.35 <= dropped < 2.0
    assert await handler_close_code(app_server[0]) == 1006
    raw.close()


async def test_heartbeat_keeps_a_client_that_answers_pings(app_server: tuple[App, Any]) -> None:
    raw = await Raw.open(app_server[1].port)
    await raw.upgrade("/hb")
    loop = asyncio.get_running_loop()
    pings = 0
    deadline = loop.time() + 1.5  # seven heartbeats; the drop would come at 0.4 s
    while loop.time() < deadline:
        try:
            _, opcode, payload = await raw.ws_frame(timeout=deadline - loop.time())
        except asyncio.TimeoutError:
            break
        assert opcode == PING
        pings += 1
        await raw.send(frame(PONG, payload))
    assert pings >= 3
    await raw.send(frame(TEXT, b"still here"))
    assert await raw.ws_frame() == (True, TEXT, b"still here")
    raw.close()


# --- handler failures and an independent client ----------------------------------------------


async def test_websocket_handler_exception_closes_the_socket_with_1011_and_the_server_carries_on(
        app_server: tuple[App, Any]) -> None:
    raw = await Raw.open(app_server[1].port)
    await raw.upgrade("/boom")
    await raw.send(frame(TEXT, b"trigger"))
    assert await raw.ws_close_code() == 1011  # RFC 6455 §7.4.1: an unexpected condition on the server
    raw.close()
    assert await plain_get_works(app_server[1].port)


async def test_aiohttp_client_round_trip(app_server: tuple[App, Any]) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(f"ws://{HOST}:{app_server[1].port}/ws") as client:
            await client.send_str("hello ☃")
            assert await client.receive_str(timeout=2) == "hello ☃"
            await client.send_bytes(b"\x01\x02")
            assert await client.receive_bytes(timeout=2) == b"\x01\x02"
            await client.close()
    assert await handler_close_code(app_server[0]) == 1000


async def test_aiohttp_client_is_told_1001_when_the_server_closes(app_server: tuple[App, Any]) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(f"ws://{HOST}:{app_server[1].port}/ws") as client:
            await client.send_str("x")
            assert await client.receive_str(timeout=2) == "x"
            await asyncio.wait_for(app_server[1].close(), 3)
            message = await client.receive(timeout=2)
            assert message.type is aiohttp.WSMsgType.CLOSE
            assert message.data == 1001

