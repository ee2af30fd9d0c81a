"""tagd.web.server and clients that hang up or never speak: quiet closes, disconnect detection, the first-request
timeout, and responses that cannot be encoded as they are."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import struct

import pytest

from tagd.web import server as server_module
from tagd.web.server import Request, Response, json_response
from web_helpers import HOST, Raw, get
from web_helpers import start_server  # noqa: F401  (a fixture)


async def ok(request: Request) -> Response:
    return Response(200, "ok")


def rst_close(raw: Raw) -> None:
    """Close with a reset (SO_LINGER 0), as a client that crashes or is killed does."""
    sock = raw.writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    raw.writer.transport.abort()


@pytest.mark.parametrize("reset", [False, True])
async def test_a_client_gone_mid_body_is_let_go_quietly(start_server, caplog, reset):
    # Content-Length 1000, 10 bytes, close: was "Unhandled exception in client_connected_cb" (ENOTCONN, write_eof)
    server = await start_server(ok)
    caplog.set_level(logging.WARNING)
    for _ in range(5):
        raw = await Raw.open(server.port)
        await raw.send(f"POST /api HTTP/1.1\r\nHost: {HOST}\r\nContent-Length: 1000\r\n\r\n".encode() + b"0123456789")
        await asyncio.sleep(0.05)
        rst_close(raw) if reset else raw.close()
    await asyncio.sleep(0.5)
    assert (await get(server.port))[0] == 200  # still serving
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, [r.getMessage() for r in errors]


async def test_a_client_that_closes_while_its_handler_runs_is_seen(start_server):
    seen = asyncio.Event()

    async def slow(request: Request) -> Response:
        if request.path != "/x":
            return Response(200, "ok")
        await asyncio.wait_for(request.disconnected.wait(), 5)
        seen.set()
        return Response(200, "too late")

    server = await start_server(slow)
    raw = await Raw.open(server.port)
    await raw.send(f"POST /x HTTP/1.1\r\nHost: {HOST}\r\nContent-Length: 2\r\n\r\nhi".encode())
    await asyncio.sleep(0.1)
    raw.close()
    await asyncio.wait_for(seen.wait(), 3)
    assert (await get(server.port))[0] == 200


async def test_a_request_pipelined_behind_a_slow_one_still_gets_its_answer(start_server):
    # the disconnect watch reads on while a handler runs: what it reads must reach the next cycle
    async def handler(request: Request) -> Response:
        if request.path == "/slow":
            await asyncio.sleep(0.3)
        assert not request.disconnected.is_set()
        return Response(200, f"[{request.path}]")

    server = await start_server(handler)
    raw = await Raw.open(server.port)
    await raw.send(f"GET /slow HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode())
    await asyncio.sleep(0.1)
    await raw.send(f"POST /b HTTP/1.1\r\nHost: {HOST}\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi".encode())
    first, second = await raw.response(), await raw.response()
    raw.close()
    assert (first[0], first[2], second[0], second[2]) == (200, b"[/slow]", 200, b"[/b]")


async def test_a_connection_that_never_sends_a_request_is_closed_soon(start_server, monkeypatch):
    # 1024 such sockets held every slot for IDLE_TIMEOUT (75 s); a new connection now has FIRST_REQUEST_TIMEOUT
    monkeypatch.setattr(server_module, "FIRST_REQUEST_TIMEOUT", 0.3)
    monkeypatch.setattr(server_module, "IDLE_TIMEOUT", 30.0)
    server = await start_server(ok)
    idle = await Raw.open(server.port)
    assert await idle.eof(timeout=3) == b""  # closed, unanswered, well before IDLE_TIMEOUT
    idle.close()
    # a keep-alive connection between requests still has IDLE_TIMEOUT
    kept = await Raw.open(server.port)
    await kept.send(f"GET / HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode())
    assert (await kept.response())[0] == 200
    await asyncio.sleep(0.6)
    await kept.send(f"GET / HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n".encode())
    assert (await kept.response())[0] == 200
    kept.close()


async def test_a_json_response_with_a_lone_surrogate_is_still_valid_json(start_server):
    # json.dumps(ensure_ascii=False) keeps "\ud800" raw, which UTF-8 cannot encode: the handler's answer was lost
    async def handler(request: Request) -> Response:
        if request.path == "/text":
            return Response(200, "x\ud800")
        return json_response({"id": "\ud800", "ok": "é"})

    server = await start_server(handler)
    status, _, body = await get(server.port, "/json")
    assert status == 200 and json.loads(body) == {"id": "\ud800", "ok": "é"}
    status, _, body = await get(server.port, "/text")
    assert status == 200 and body == b"x?"
