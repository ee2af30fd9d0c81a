"""The API's HTTP side through a real Daemon: every path and method, statuses, URL decoding, slow clients.

aiohttp is the client: an implementation independent of tagd.web, as the Zaparoo App's would be.
"""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest

from tagd.daemon.api import server as api_server
from tagd.daemon.service import Daemon
from test_api import make_config

HEALTH = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "health"})


@pytest.fixture
async def daemon(tmp_path):
    d = Daemon(make_config(tmp_path), tmp_path / "config.toml")
    await d.start()
    yield d
    await d.stop()


@pytest.fixture
async def session():
    async with aiohttp.ClientSession() as s:
        yield s


def base(daemon) -> str:
    return f"http://127.0.0.1:{daemon.api.port}"


@pytest.mark.parametrize("path", ["/api", "/api/v0", "/api/v0.1"])
async def test_every_api_path_serves_websocket_and_post(daemon, session, path):
    async with session.ws_connect(f"ws://127.0.0.1:{daemon.api.port}{path}") as ws:
        await ws.send_str(HEALTH)
        assert json.loads((await ws.receive(timeout=3)).data)["result"] == {"status": "ok"}
    async with session.post(base(daemon) + path, data=HEALTH) as r:
        assert r.status == 200 and r.content_type == "application/json"
        assert (await r.json())["result"] == {"status": "ok"}


async def test_a_plain_get_on_an_api_path_is_400(daemon, session):
    async with session.get(base(daemon) + "/api") as r:
        assert r.status == 400 and "WebSocket" in await r.text()


async def test_an_unknown_path_is_404_and_a_wrong_method_405(daemon, session):
    async with session.get(base(daemon) + "/nope") as r:
        assert r.status == 404
    async with session.put(base(daemon) + "/api", data=HEALTH) as r:
        assert r.status == 405 and "POST" in r.headers["Allow"]
    async with session.post(base(daemon) + "/health") as r:
        assert r.status == 405


async def test_a_post_body_over_1_mib_is_413_and_the_api_still_answers(daemon, session):
    async with session.post(base(daemon) + "/api", data=b" " * ((1 << 20) + 1)) as r:
        assert r.status == 413
    async with session.post(base(daemon) + "/api", data=HEALTH) as r:
        assert r.status == 200


async def test_get_run_decodes_the_percent_encoded_utf8_text(daemon, session):
    seen = []
    daemon.pipeline.run_token = lambda token: seen.append(token) or asyncio.sleep(0)
    async with session.get(base(daemon) + "/run/%40SNES%2FSuper%20Mario%20World%20%E2%98%85") as r:
        assert r.status == 200
    async with session.get(base(daemon) + "/run/@N64/Mario Kart 64?x=1") as r:
        assert r.status == 200
    await asyncio.sleep(0.05)
    assert [t.text for t in seen] == ["@SNES/Super Mario World ★", "@N64/Mario Kart 64"]
    assert all(t.unsafe for t in seen)


async def test_get_run_without_text_is_400(daemon, session):
    async with session.get(base(daemon) + "/run/") as r:
        assert r.status == 400


async def test_post_keeps_the_connection_alive_between_requests(daemon, session):
    for _ in range(3):
        async with session.post(base(daemon) + "/api", data=HEALTH) as r:
            assert r.status == 200
    assert len(daemon.api.http._connections) == 1


async def test_a_websocket_client_that_stops_reading_is_dropped_and_others_still_get_notifications(
        daemon, session, monkeypatch):
    monkeypatch.setattr(api_server, "OUTBOX_BYTES", 1_000_000)
    reader = await session.ws_connect(f"ws://127.0.0.1:{daemon.api.port}/api")
    # a raw socket that completes the handshake and then never reads
    r, w = await asyncio.open_connection("127.0.0.1", daemon.api.port)
    w.write(b"GET /api HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
    assert (await r.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 101")
    await asyncio.sleep(0.1)
    assert len(daemon.api.clients) == 2
    big = "x" * 60_000  # fills the stalled socket's buffers quickly
    for i in range(200):
        daemon.notify("media.started", {"mediaName": big, "n": i})
        await asyncio.sleep(0)
        if len(daemon.api.clients) == 1:
            break
        if i % 10 == 0:
            while True:  # the live client keeps reading
                try:
                    await reader.receive(timeout=0.01)
                except asyncio.TimeoutError:
                    break
    assert len(daemon.api.clients) == 1
    for _ in range(100):  # its connection is released, not left waiting for a peer that never reads
        if len(daemon.api.http._connections) == 1:
            break
        await asyncio.sleep(0.02)
    assert len(daemon.api.http._connections) == 1
    daemon.notify("tokens.removed")
    while True:
        msg = json.loads((await reader.receive(timeout=3)).data)
        if msg["method"] == "tokens.removed":
            break
    await reader.close()
    w.close()


async def test_stopping_the_daemon_closes_websocket_clients_with_going_away(tmp_path, session):
    d = Daemon(make_config(tmp_path), tmp_path / "config.toml")
    await d.start()
    ws = await session.ws_connect(f"ws://127.0.0.1:{d.api.port}/api")
    await d.stop()
    msg = await ws.receive(timeout=3)
    assert msg.type == aiohttp.WSMsgType.CLOSE and msg.data == 1001


@pytest.mark.parametrize("prefix", ["/run/", "/r/", "/l/"])
async def test_every_run_path_launches_as_zaparoo_cores_do(daemon, session, prefix):
    seen = []
    daemon.pipeline.run_token = lambda token: seen.append(token) or asyncio.sleep(0)
    async with session.get(base(daemon) + prefix + "@SNES/Super Mario World") as r:
        assert r.status == 200
    await asyncio.sleep(0.05)
    assert [t.text for t in seen] == ["@SNES/Super Mario World"]


@pytest.mark.parametrize("path", ["/api/events", "/api/v0/events", "/api/v0.1/events"])
async def test_every_events_path_streams_notifications(daemon, session, path):
    async with session.get(base(daemon) + path) as r:
        assert r.status == 200 and r.headers["Content-Type"].startswith("text/event-stream")
        assert await r.content.readline() == b": connected\n"
        await r.content.readline()
        daemon.notify("tokens.removed")
        line = await asyncio.wait_for(r.content.readline(), 3)
        assert json.loads(line[len(b"data: "):]) == {"jsonrpc": "2.0", "method": "tokens.removed"}
