"""Play sessions in a running daemon: from the core's media notifications, a core disconnect, tagd's stop, a held tag
with no core; the sessions/integrations API; retroshelf receiving them; RomM's last played."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest
from service_helpers import FakeTime  # (first: it puts tests/daemon, with fake_core, on the path)
from fake_core import FakeCore, free_port  # noqa: I001
from servers import ROMM_CLIENT_TOKEN, Retroshelf, Romm, Serving, make_rom

from tagd.daemon.config import Config
from tagd.daemon.service import Daemon
from tagd.integrations.credentials import Credentials, credentials_dir
from tagd.readers.base import TagGone, TagSeen
from tagd.token import Token

CHRONO = {"systemId": "SNES", "systemName": "Super Nintendo", "mediaPath": "/media/fat/games/SNES/Chrono Trigger.sfc",
          "mediaName": "Chrono Trigger"}


def config(tmp_path, **extra) -> Config:
    raw = {"readers": {"auto_detect": False}, "database": str(tmp_path / "tagd.db"), "api": {"listen": "127.0.0.1:0"}}
    raw.update(extra)
    return Config.model_validate(raw)


async def call(d: Daemon, method: str, params=None):
    async with aiohttp.ClientSession() as s:
        msg = {"jsonrpc": "2.0", "id": 1, "method": method, **({"params": params} if params is not None else {})}
        async with s.post(f"http://127.0.0.1:{d.api.port}/api", data=json.dumps(msg)) as r:
            body = await r.json()
    if "error" in body:
        raise AssertionError(body["error"])
    return body["result"]


async def until(cond, timeout=5.0):
    for _ in range(int(timeout / 0.01)):
        if cond():
            return True
        await asyncio.sleep(0.01)
    return False


@pytest.fixture
async def core():
    c = FakeCore(free_port())
    await c.start()
    yield c
    await c.stop()


async def started(tmp_path, core=None, **extra):
    cores = [{"type": "zaparoo", "url": f"ws://127.0.0.1:{core.port}/api/v0.1"}] if core else [{"type": "stdout"}]
    d = Daemon(config(tmp_path, core=cores, **extra), tmp_path / "config.toml")
    await d.start()
    t = FakeTime()
    d.integrations.clock = t.clock
    notes: list = []
    d.integrations.notify = lambda m, p: notes.append((m, p))
    if core:
        assert await until(lambda: core.clients)
    return d, t, notes


async def test_media_started_then_stopped_is_one_pending_session_announced_and_listed(tmp_path, core):
    d, t, notes = await started(tmp_path, core)
    try:
        await core.notify("media.started", CHRONO)
        assert await until(lambda: d.integrations.tracker.current is not None)
        t.now += 5400
        await core.notify("media.stopped", {**CHRONO, "launcherId": "x", "elapsed": 5400})
        assert await until(lambda: notes)
        result = await call(d, "sessions", {"status": "pending"})
    finally:
        await d.stop()
    assert notes[0][0] == "sessions.added"
    (s,) = result["sessions"]
    assert s == notes[0][1]
    assert (s["romPath"], s["romName"], s["duration"], s["platformHint"], s["status"]) == \
        (CHRONO["mediaPath"], "Chrono Trigger", 5400, "snes", "pending")
    assert result["counts"]["pending"] == 1


async def test_a_short_session_is_dropped_and_the_minimum_is_configurable(tmp_path, core):
    d, t, notes = await started(tmp_path, core, sessions={"min_duration": 120})
    try:
        await core.notify("media.started", CHRONO)
        assert await until(lambda: d.integrations.tracker.current is not None)
        t.now += 100
        await core.notify("media.stopped", {})
        assert await until(lambda: d.integrations.tracker.current is None)
        assert (await call(d, "sessions"))["sessions"] == []
    finally:
        await d.stop()
    assert notes == []


async def test_a_core_disconnect_and_tagds_own_stop_end_the_session(tmp_path):
    port = free_port()
    core = FakeCore(port)
    await core.start()
    d, t, notes = await started(tmp_path, core)
    try:
        await core.notify("media.started", CHRONO)
        assert await until(lambda: d.integrations.tracker.current is not None)
        t.now += 60
        await core.stop()  # Core goes away mid-game
        assert await until(lambda: notes)
        core = FakeCore(port)
        await core.start()
        assert await until(lambda: core.clients, 15)
        await core.notify("media.started", {**CHRONO, "mediaName": "Secret of Mana", "mediaPath": "som.sfc"})
        assert await until(lambda: d.integrations.tracker.current is not None)
        t.now += 45
    finally:
        await d.stop()
        await core.stop()
    assert [p["duration"] for _, p in notes] == [60, 45]
    assert notes[1][1]["romName"] == "Secret of Mana"


async def test_hold_mode_without_a_core_times_the_held_tag(tmp_path):
    d, t, notes = await started(tmp_path, readers={"auto_detect": False, "scan": {"mode": "hold"}})
    try:
        await d.pipeline.handle(TagSeen("file-x", Token(uid="04aa", text="/roms/gba/Advance Wars (USA).gba")))
        assert await until(lambda: d.integrations.tracker.current is not None)
        t.now += 600
        await d.pipeline.handle(TagGone("file-x"))
        assert await until(lambda: notes)
    finally:
        await d.stop()
    s = notes[0][1]
    assert (s["romPath"], s["romName"], s["duration"]) == ("/roms/gba/Advance Wars (USA).gba", "Advance Wars", 600)


async def test_tap_mode_without_a_core_makes_no_sessions(tmp_path):
    d, t, notes = await started(tmp_path)
    try:
        await d.pipeline.handle(TagSeen("file-x", Token(uid="04aa", text="/roms/x.gba")))
        t.now += 600
        await d.pipeline.handle(TagGone("file-x"))
        assert d.integrations.tracker.current is None
    finally:
        await d.stop()
    assert notes == []


async def test_linked_services_get_the_session_and_last_played_and_the_api_shows_the_links(tmp_path, core):
    shelf, romm = Retroshelf(), Romm([make_rom(7, name="Chrono Trigger")])
    romm.roms[7]["fs_name"] = "Chrono Trigger.sfc"
    async with Serving(shelf.app()) as rs, Serving(romm.app()) as rm:
        creds = Credentials(credentials_dir(tmp_path / "tagd.db"))
        creds.save("retroshelf", {"base_url": rs.url, "client_id": "rs_test_client", "access_token": shelf.access_token,
                                  "sync_client_id": shelf.sync_client_id})
        creds.save("romm", {"url": rm.url, "access_token": ROMM_CLIENT_TOKEN, "auth": "client token"})
        d, t, notes = await started(tmp_path, core)
        try:
            await core.notify("media.started", CHRONO)
            assert await until(lambda: romm.played == [7])
            t.now += 300
            await core.notify("media.stopped", {})
            assert await until(lambda: len(shelf.sessions) == 1)
            assert await until(lambda: d.integrations.store.counts()["synced"] == 1)
            status = await call(d, "integrations")
            synced = (await call(d, "sessions", {"status": "synced"}))["sessions"]
        finally:
            await d.stop()
    sent = shelf.sessions[0]
    assert sent["romPath"] == CHRONO["mediaPath"] and sent["romHash"] == romm.roms[7]["md5_hash"]
    assert sent["duration"] == 300 and sent["platformHint"] == "snes"
    assert synced[0]["matched"] is True and synced[0]["gameName"] == "Chrono Trigger"
    assert status["retroshelf"]["state"] == "linked" and status["retroshelf"]["sessions"]["synced"] == 1
    assert status["romm"]["state"] == "linked" and status["playren"]["state"] == "unlinked"
    text = json.dumps(status)
    assert shelf.access_token not in text and ROMM_CLIENT_TOKEN not in text


async def test_sessions_params_are_checked(tmp_path):
    d, _, _ = await started(tmp_path)
    try:
        with pytest.raises(AssertionError, match="status must be one of"):
            await call(d, "sessions", {"status": "nope"})
        with pytest.raises(AssertionError, match="limit"):
            await call(d, "sessions", {"limit": 0})
        assert (await call(d, "sessions.retry", {})) == {"retried": 0}
    finally:
        await d.stop()


async def test_a_revoked_link_stops_the_queue_and_asks_to_link_again(tmp_path):
    from tagd.integrations.sessions import Session
    from tagd.integrations.store import IntegrationStore

    shelf = Retroshelf()
    shelf.revoked = True
    store = IntegrationStore(tmp_path / "tagd.db")
    store.add_sessions([Session("a.sfc", "A", 90, 1781229600, "snes")])
    store.close()
    async with Serving(shelf.app()) as rs:
        Credentials(credentials_dir(tmp_path / "tagd.db")).save("retroshelf", {
            "base_url": rs.url, "client_id": "rs_test_client", "access_token": shelf.access_token,
            "sync_client_id": shelf.sync_client_id})
        d, _, _ = await started(tmp_path)
        try:
            assert await until(lambda: d.integrations.status()["retroshelf"]["state"] == "relink")
            status = await call(d, "integrations")
            inbox = await call(d, "inbox")
        finally:
            await d.stop()
    assert "link again" in status["retroshelf"]["error"] and status["retroshelf"]["sessions"]["pending"] == 1
    assert any("tagd link retroshelf" in m["title"] for m in inbox["messages"])
    assert shelf.access_token not in json.dumps([status, inbox])
