"""Issue 13's transport items against tagd.web over real sockets: each test is named after what it stops.

Item 6 (out of descriptors), item 7 (slowloris), item 9 (empty continuation frames), item 13 (HEAD, absolute-form
targets, Content-Length with Transfer-Encoding). The API-level items are in tests/daemon/test_api_hostile.py.
"""

from __future__ import annotations

import asyncio
import configparser
import json
import os
import pathlib
import subprocess
import sys
import textwrap
from typing import Any

import pytest

from tagd.web import server as server_module
from tagd.web.server import Request, Response, Upgrade, json_response
from tagd.web.websocket import WebSocket
from web_helpers import CONT, HOST, TEXT, Raw, frame, get
from web_helpers import start_server  # noqa: F401  (a fixture)

ROOT = pathlib.Path(__file__).resolve().parents[2]


async def app(request: Request) -> Any:
    if request.path == "/hold":  # busy until the client goes away
        await request.disconnected.wait()
        return Response(200, "held")
    if request.path == "/ws":
        async def echo(ws: WebSocket) -> None:
            async for message in ws:
                await ws.send(message)
        return Upgrade(echo, max_message=1000, heartbeat=None)
    return json_response({"method": request.method, "path": request.path, "query": request.query,
                          "body": request.body.decode("latin-1")})


async def open_from(port: int, source: str) -> Raw:
    reader, writer = await asyncio.open_connection(HOST, port, local_addr=(source, 0))
    return Raw(reader, writer)


async def settle(server: Any, n: int) -> None:
    for _ in range(100):
        if len(server.admission) >= n:
            return
        await asyncio.sleep(0.02)


# --- item 7: slowloris ------------------------------------------------------------------------------------------

async def test_slowloris_connections_that_never_finish_a_head_make_room_for_a_health_probe(start_server: Any) -> None:
    server = await start_server(app, max_connections=8)
    lorises = [await Raw.open(server.port) for _ in range(8)]
    for raw in lorises:
        await raw.send(b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ")  # never finished
    await settle(server, 8)
    for _ in range(5):
        status, _, _ = await get(server.port, "/health")
        assert status == 200
    assert server.admission.evicted >= 1
    for raw in lorises:
        raw.close()


async def test_slowloris_head_read_timeout_is_408_long_before_the_request_timeout(
        start_server: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(server_module, "HEAD_TIMEOUT", 0.3)
    monkeypatch.setattr(server_module, "REQUEST_TIMEOUT", 10.0)
    server = await start_server(app)
    raw = await Raw.open(server.port)
    loop = asyncio.get_running_loop()
    start = loop.time()

    async def drip() -> None:
        for byte in b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"s" * 500:
            await raw.send(bytes([byte]))
            await asyncio.sleep(0.01)

    dripper = asyncio.ensure_future(drip())
    try:
        status, _ = await raw.head(timeout=5)
    finally:
        dripper.cancel()
        await asyncio.gather(dripper, return_exceptions=True)
    assert status == 408 and loop.time() - start < 1.5
    raw.close()


async def test_slowloris_per_ip_limit_refuses_a_strangers_extra_connections(start_server: Any) -> None:
    server = await start_server(app, trusted=lambda peer: peer == "127.0.0.1")
    server.admission.per_ip = 3
    held = [await open_from(server.port, "127.0.0.2") for _ in range(3)]
    for raw in held:
        await raw.send(b"GET /hold HTTP/1.1\r\nHost: x\r\n\r\n")
    await settle(server, 3)
    extra = await open_from(server.port, "127.0.0.2")
    status, _, body = await extra.response()
    assert status == 503 and b"127.0.0.2" in body
    assert (await get(server.port, "/health"))[0] == 200  # this machine is not limited
    for raw in [*held, extra]:
        raw.close()


async def test_slowloris_strangers_never_starve_loopback_clients(start_server: Any) -> None:
    server = await start_server(app, max_connections=8, trusted=lambda peer: peer == "127.0.0.1")
    strangers = []
    for i in range(8):  # strangers, each from its own address, each busy: none can be pushed out
        raw = await open_from(server.port, f"127.0.1.{i + 1}")
        await raw.send(b"GET /hold HTTP/1.1\r\nHost: x\r\n\r\n")
        strangers.append(raw)
    await asyncio.sleep(0.2)
    refused = [raw for raw in strangers if await _refused(raw)]
    assert len(refused) == 8 - (8 - server.admission.reserved)  # the reserved slots are not theirs
    for _ in range(3):
        assert (await get(server.port, "/health"))[0] == 200
    for raw in strangers:
        raw.close()


async def _refused(raw: Raw) -> bool:
    try:
        status, _, _ = await raw.response(timeout=0.2)
    except asyncio.TimeoutError:
        return False
    return status == 503


# --- item 6: out of file descriptors ----------------------------------------------------------------------------

def test_emfile_unit_limit_nofile_covers_max_connections() -> None:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.read(ROOT / "udev" / "tagd.service")
    from tagd.web.listener import FD_SPARE

    assert int(unit["Service"].get("LimitNOFILE", "0")) >= server_module.MAX_CONNECTIONS + FD_SPARE


EMFILE_SERVER = textwrap.dedent("""
    import asyncio, logging, resource, sys
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(name)s %(message)s")
    from tagd.web.server import HttpServer, Response

    async def handler(request):
        return Response(200, "OK")

    async def main():
        server = HttpServer(handler)
        resource.setrlimit(resource.RLIMIT_NOFILE, (40, 40))  # after start-up's imports; the server cannot raise it
        port = await server.start("127.0.0.1", 0)
        print(port, flush=True)
        await asyncio.sleep(6)
        print("starved", server._listener.starved, flush=True)

    asyncio.run(main())
""")


async def test_emfile_on_accept_backs_off_logs_once_and_serving_resumes() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", EMFILE_SERVER, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        assert proc.stdout is not None
        port = int(await asyncio.wait_for(proc.stdout.readline(), 20))
        held = [await Raw.open(port) for _ in range(80)]  # past its 40 descriptors: the rest wait in the backlog
        await asyncio.sleep(1.5)
        for raw in held[:60]:
            raw.close()
        await asyncio.sleep(0.5)
        status, _, body = await asyncio.wait_for(get(port, "/health"), 5)  # it accepts again
        assert status == 200 and body == b"OK"
        for raw in held[60:]:
            raw.close()
        out, err = await asyncio.wait_for(proc.communicate(), 20)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    log = err.decode()
    assert int(out.decode().split()[-1]) > 1  # it did run out, more than once …
    assert log.count("cannot accept connections") == 1, log  # … and said so once in the interval
    assert "Traceback" not in log and "out of system resource" not in log, log


# --- item 9: empty continuation frames ------------------------------------------------------------------------

async def test_empty_continuation_frames_count_against_the_message_limit(start_server: Any) -> None:
    server = await start_server(app)
    raw = await Raw.open(server.port)
    await raw.upgrade("/ws")
    await raw.send(frame(TEXT, b"a", fin=False) + frame(CONT, b"", fin=False) * 200 + frame(CONT, b"", fin=True))
    assert await raw.ws_close_code() == 1009  # 200 fragments × 6 bytes of frame each > 1000
    raw.close()


async def test_empty_continuation_frames_a_few_fragments_still_make_a_message(start_server: Any) -> None:
    server = await start_server(app)
    raw = await Raw.open(server.port)
    await raw.upgrade("/ws")
    await raw.send(frame(TEXT, b"a", fin=False) + frame(CONT, b"", fin=False) * 10 + frame(CONT, b"b", fin=True))
    assert await raw.ws_frame() == (True, TEXT, b"ab")
    raw.close()


# --- item 13: HEAD, absolute-form targets, Content-Length with Transfer-Encoding --------------------------------

async def test_absolute_form_request_target_is_served_as_its_path(start_server: Any) -> None:
    server = await start_server(app)
    raw = await Raw.open(server.port)
    await raw.send(f"GET http://{HOST}:{server.port}/alive?x=1 HTTP/1.1\\r\\nHost: {HOST}\\r\\n\\r\\n".encode()
                   .decode("unicode_escape").encode())
    status, _, body = await raw.response()
    assert status == 200 and json.loads(body)["path"] == "/alive" and json.loads(body)["query"] == {"x": "1"}
    raw.close()


async def test_content_length_with_transfer_encoding_is_refused_400(start_server: Any) -> None:
    server = await start_server(app)
    raw = await Raw.open(server.port)
    await raw.send(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n"
                   b"0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n")
    status, _, body = await raw.response()
    assert status == 400 and b"Transfer-Encoding" in body
    assert b"smuggled" not in await raw.eof(timeout=3)
    raw.close()
