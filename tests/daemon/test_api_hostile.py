"""Issue 13's API and launch items, each test named after what it stops: item 3 (a client that never reads),
item 4 (launch floods, foreign pages, stale and unsafe launches, option-like text), item 13 (HEAD /health).
The transport items (slowloris, descriptors, fragments) are in tests/web/test_web_hostile.py."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tagd.daemon.api import server as api_server
from tagd.daemon.api.jsonrpc import Dispatcher
from tagd.daemon.api.server import ApiServer
from tagd.daemon.config import parse_config
from tagd.daemon.forwarders import Forwarder, ForwardError, build_forwarders
from tagd.daemon.mappings import MappingTable
from tagd.daemon.pipeline import Pipeline
from tagd.token import Token
from test_api import make_config
from test_forwarders import RECORDER, exec_forwarder, hook_server, webhook  # noqa: F401  (hook_server: a fixture)

EVIL = "https://evil.example"


@pytest.fixture
async def api():
    dispatcher = Dispatcher()

    @dispatcher.method("big")
    async def big(params: Any) -> str:
        return "x" * 500_000

    launched: list[Token] = []

    async def run_text(token: Token) -> None:
        launched.append(token)

    server = ApiServer(dispatcher, [], run_text)
    await server.start("127.0.0.1", 0)
    server.launched = launched
    yield server
    await server.close()


# --- item 3: a WebSocket client's outbox is bounded in bytes -------------------------------------------------

def masked_text_frame(payload: bytes) -> bytes:
    assert len(payload) < 126
    return bytes([0x81, 0x80 | len(payload)]) + b"\0\0\0\0" + payload  # a zero mask leaves the payload as is


async def test_outbox_bytes_a_client_that_never_reads_is_dropped_and_others_unaffected(api: ApiServer) -> None:
    r, w = await asyncio.open_connection("127.0.0.1", api.port)
    w.write(b"GET /api HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
    assert (await r.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 101")
    request = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "big"}).encode()
    w.write(masked_text_frame(request) * 60)  # 60 answers of 500 KB, and it never reads one
    peak = 0
    async with aiohttp.ClientSession() as s, s.ws_connect(f"ws://127.0.0.1:{api.port}/api") as reader:
        for _ in range(300):
            peak = max([peak, *(c.outbox.bytes for c in api.clients.values())])
            if len(api.clients) == 1:  # the reader only
                break
            await asyncio.sleep(0.01)
        assert len(api.clients) == 1 and getattr(api, "dropped", 0) == 1
        assert peak <= api_server.OUTBOX_BYTES
        await reader.send_str(json.dumps({"jsonrpc": "2.0", "id": 2, "method": "big"}))
        assert len(json.loads((await reader.receive(timeout=5)).data)["result"]) == 500_000
    w.close()


# --- item 4: GET /run follows POST's origin rules -------------------------------------------------------------

async def test_get_run_from_a_foreign_origin_is_refused_like_post(api: ApiServer) -> None:
    async with aiohttp.ClientSession() as s:
        async with s.get(f"http://127.0.0.1:{api.port}/run/**launch.random:snes", headers={"Origin": EVIL}) as r:
            assert r.status == 403
        async with s.post(f"http://127.0.0.1:{api.port}/api", data="{}", headers={"Origin": EVIL}) as r:
            assert r.status == 403
    assert api.launched == []


async def test_get_run_from_another_sites_page_without_an_origin_is_refused(api: ApiServer) -> None:
    async with aiohttp.ClientSession() as s:  # an <img src=…/run/…> on a web site sends no Origin
        headers = {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "no-cors", "Sec-Fetch-Dest": "image"}
        async with s.get(f"http://127.0.0.1:{api.port}/run/x", headers=headers) as r:
            assert r.status == 403
        clicked = {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate", "Sec-Fetch-User": "?1"}
        async with s.get(f"http://127.0.0.1:{api.port}/run/y", headers=clicked) as r:
            assert r.status == 200  # a launch link the user clicked
    assert [t.text for t in api.launched] == ["y"]


# --- item 4: launch queue per forwarder bounded, stale launches dropped, unsafe marked --------------------------

class Slow(Forwarder):
    kind = "slow"

    def __init__(self) -> None:
        super().__init__("slow")
        self.started: list[str] = []
        self.gate = asyncio.Event()

    async def launch(self, token: Token) -> None:
        self.started.append(token.text)
        await self.gate.wait()


class Store:
    def add_history(self, token: Token, success: bool) -> None:
        pass

    def add_inbox(self, *args: Any, **kw: Any) -> None:
        pass


def pipeline(forwarders: list[Forwarder], tmp_path: Path) -> Pipeline:
    return Pipeline(make_config(tmp_path), Store(), MappingTable([]), forwarders)


async def test_launch_queue_per_forwarder_is_bounded(tmp_path: Path) -> None:
    slow = Slow()
    p = pipeline([slow], tmp_path)
    runs = [asyncio.ensure_future(p.run_token(Token(text=f"t{i}", unsafe=True))) for i in range(100)]
    for _ in range(1000):  # a loaded machine may take a while to run 100 tasks; none may take the core's turn
        if sum(r.done() for r in runs) >= 100 - 16:
            break
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.1)  # and with the core stuck, no more finish
    refused = [r for r in runs if r.done()]
    assert len(refused) == 100 - 16 and not any(r.result() for r in refused)  # refused at once, not queued
    slow.gate.set()
    assert sum(await asyncio.gather(*runs)) == 16
    assert slow.started == [f"t{i}" for i in range(16)]  # in order


async def test_stale_launches_are_dropped_by_max_age_by_default_on_every_core(tmp_path: Path, capsys) -> None:
    fws = build_forwarders(parse_config('[[core]]\ntype = "stdout"\n[[core]]\ntype = "exec"\nargv = ["true"]\n').core)
    assert [fw.max_age for fw in fws] == [10.0, 10.0]
    p = pipeline(fws, tmp_path)
    old = Token(text="late", scan_ns=time.time_ns() - 11 * 10**9)
    assert await p.run_token(old) is False
    assert "late" not in capsys.readouterr().out
    assert await p.run_token(Token(text="fresh")) is True


async def test_unsafe_launches_are_marked_for_every_core(tmp_path: Path, capsys, hook_server) -> None:
    out = tmp_path / "out.json"
    fw = exec_forwarder([sys.executable, "-c", RECORDER, str(out), "{text}"])
    await fw.launch(Token(text="x", unsafe=True))
    assert json.loads(out.read_text())["env"]["TAGD_UNSAFE"] == "1"
    await fw.launch(Token(text="x"))
    assert json.loads(out.read_text())["env"]["TAGD_UNSAFE"] == "0"
    [stdout] = build_forwarders(parse_config('[[core]]\ntype = "stdout"\n').core)
    await stdout.launch(Token(text="x", unsafe=True))
    assert json.loads(capsys.readouterr().out)["unsafe"] is True
    base, received, _ = hook_server
    hook = webhook(f"{base}/launch")
    await hook.launch(Token(text="x", unsafe=True))
    await hook.launch(Token(text="x"))
    assert [r["headers"].get("X-Tagd-Unsafe") for r in received] == ["1", None]


async def test_unsafe_launches_go_to_the_mqtt_unsafe_topic() -> None:
    from tagd.daemon.forwarders.mqtt import MqttForwarder

    [fw] = build_forwarders(parse_config('[[core]]\ntype = "mqtt"\nhost = "127.0.0.1"\ntopic = "zaparoo/scan"\n').core)
    assert isinstance(fw, MqttForwarder)
    published: list[str] = []

    class Info:
        rc = 0

    fw._connected.set()
    fw._client.publish = lambda topic, payload, qos: published.append(topic) or Info()  # type: ignore[assignment]
    await fw.launch(Token(text="**launch.random", unsafe=True))
    await fw.launch(Token(text="**launch.random"))
    assert published == ["zaparoo/scan/unsafe", "zaparoo/scan"]


async def test_exec_text_starting_with_a_dash_is_not_taken_as_an_option(tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    fw = exec_forwarder([sys.executable, "-c", RECORDER, str(out), "{text}"])
    with pytest.raises(ForwardError, match='put "--" before the placeholder'):
        await fw.launch(Token(text="--output=/etc/passwd"))
    assert not out.exists()
    fw = exec_forwarder([sys.executable, "-c", RECORDER, str(out), "--", "{text}"])
    await fw.launch(Token(text="--output=/etc/passwd"))
    assert json.loads(out.read_text())["argv"][-1] == "--output=/etc/passwd"


# --- item 13: HEAD /health ------------------------------------------------------------------------------------

async def test_head_health_is_200(api: ApiServer) -> None:
    async with aiohttp.ClientSession() as s:
        async with s.head(f"http://127.0.0.1:{api.port}/health") as r:
            assert r.status == 200 and await r.read() == b""
