"""Pairing and the access model through a real daemon, seen from another machine.

"Another machine" is the address 127.0.0.2: the client binds it as its source and the daemon is told that only
127.0.0.1 is itself (``api.is_local``), so every rule for remote peers applies to it. The client is
zaparoo_client.py, written from Core's encryption document; nothing of tagd's pairing code is used by it.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import stat

import aiohttp
import pytest

from conftest import FIXTURES
from tagd.daemon.api.access import AccessPolicy
from tagd.daemon.config import Config
from tagd.daemon.service import Daemon
from tagd.sim.pn532 import Pn532Emulator
from tagd.sim.tags import EmulatedTag
from zaparoo_client import EncryptedChannel, PairingClient

REMOTE = "127.0.0.2"


def make_daemon(tmp_path, readers=(), **extra):
    config = Config.model_validate({"readers": {"auto_detect": False}, "database": str(tmp_path / "tagd.db"),
                                    "api": {"listen": "127.0.0.1:0"}, **extra})
    return Daemon(config, tmp_path / "config.toml", extra_readers=list(readers))


async def started(daemon):
    await daemon.start()
    daemon.api.is_local = lambda request: request.peer == "127.0.0.1"
    return daemon


@pytest.fixture
async def rig(tmp_path):
    emu = Pn532Emulator()
    daemon = await started(make_daemon(tmp_path, [f"pn532uart:{emu.start()}"]))
    local = aiohttp.ClientSession()
    remote = aiohttp.ClientSession(connector=aiohttp.TCPConnector(local_addr=(REMOTE, 0)))
    for _ in range(100):
        if daemon.reader_infos():
            break
        await asyncio.sleep(0.05)
    try:
        yield daemon, emu, local, remote
    finally:
        await local.close()
        await remote.close()
        await daemon.stop()
        emu.stop()


def base(daemon):
    return f"http://127.0.0.1:{daemon.api.port}"


async def rpc_post(session, daemon, method, params=None):
    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params or {}}
    async with session.post(base(daemon) + "/api", data=json.dumps(body)) as r:
        return r.status, (await r.json() if r.status == 200 else None)


async def pair(daemon, local, remote, name="phone"):
    status, started_ = await rpc_post(local, daemon, "clients.pair.start")
    pin = started_["result"]["pin"]
    client = PairingClient(pin, name)
    async with remote.post(base(daemon) + "/api/pair/start", json=client.start_body()) as r:
        assert r.status == 200
        start = await r.json()
    await asyncio.sleep(1.0)  # /api/pair/* allows one request a second per address
    async with remote.post(base(daemon) + "/api/pair/finish", json=client.finish_body(start)) as r:
        assert r.status == 200
        client.complete(await r.json())
    return client


class Session:
    """An encrypted WebSocket session of a paired client."""

    def __init__(self, ws, channel):
        self.ws, self.channel, self.n = ws, channel, 0

    async def call(self, method, params=None):
        self.n += 1
        await self.ws.send_str(self.channel.send({"jsonrpc": "2.0", "id": self.n, "method": method,
                                                  "params": params or {}}))
        while True:
            msg = self.channel.receive((await self.ws.receive(timeout=10)).data)
            if msg.get("id") == self.n:
                return msg

    async def notification(self, method):
        while True:
            msg = self.channel.receive((await self.ws.receive(timeout=5)).data)
            if msg.get("method") == method:
                return msg


async def plaintext_refused(remote, daemon, method, params=None):
    """A plaintext request over a remote WebSocket: True when answered -32002 and closed."""
    async with remote.ws_connect(base(daemon) + "/api") as ws:
        await ws.send_str(json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params or {}}))
        reply = json.loads((await ws.receive(timeout=5)).data)
        closed = (await ws.receive(timeout=5)).type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
        return reply.get("error", {}).get("code") == -32002 and "result" not in reply and closed


async def test_unpaired_remote_client_cannot_launch_write_or_read_history(rig):
    daemon, emu, local, remote = rig
    for method, params in [("run", {"text": "**launch.system:snes"}), ("launch", {"text": "x"}),
                           ("readers.write", {"text": "**launch.system:nes"}), ("tokens.history", {}),
                           ("settings.update", {"runZapScript": False}), ("clients.pair.start", {})]:
        assert await plaintext_refused(remote, daemon, method, params), method
    assert (await rpc_post(remote, daemon, "run", {"text": "x"}))[0] == 401
    async with remote.get(base(daemon) + "/run/**launch.system:snes") as r:
        assert r.status == 401
    async with remote.get(base(daemon) + "/api/v0.1/events") as r:
        assert r.status == 401
    assert daemon.store.history() == []
    async with remote.get(base(daemon) + "/health") as r:
        assert r.status == 200  # health stays open, as in Core


async def test_paired_remote_client_can_launch_write_and_read_history(rig):
    daemon, emu, local, remote = rig
    client = await pair(daemon, local, remote)
    async with remote.ws_connect(base(daemon) + "/api") as ws:
        s = Session(ws, EncryptedChannel(client.auth_token, client.pairing_key))
        assert (await s.call("run", {"text": "**launch.system:snes"}))["result"] == {}
        history = (await s.call("tokens.history"))["result"]["entries"]
        assert history[0]["text"] == "**launch.system:snes"
        emu.place(EmulatedTag.from_file(FIXTURES / "factory-ntag213.nfc"))
        assert (await s.call("readers.write", {"text": "**launch.system:gba"}))["result"] == {}
        assert (await s.call("tokens"))["result"]["active"][0]["text"] == "**launch.system:gba"
        await ws.send_str(s.channel.send("ping"))
        assert s.channel.receive((await ws.receive(timeout=5)).data) == "pong"


async def test_paired_client_gets_notifications_encrypted_and_others_none(rig):
    daemon, emu, local, remote = rig
    client = await pair(daemon, local, remote)
    async with remote.ws_connect(base(daemon) + "/api") as ws, remote.ws_connect(base(daemon) + "/api") as stranger:
        s = Session(ws, EncryptedChannel(client.auth_token, client.pairing_key))
        await s.call("version")  # the session is open once the first frame decrypts
        daemon.notify("media.started", {"systemId": "SNES", "systemName": "SNES", "mediaPath": "/x",
                                        "mediaName": "Secret Game"})
        assert (await s.notification("media.started"))["params"]["mediaName"] == "Secret Game"
        with pytest.raises(asyncio.TimeoutError):
            await stranger.receive(timeout=0.5)


async def test_pairing_paths_and_clients_methods_shapes(rig):
    daemon, emu, local, remote = rig
    status, started_ = await rpc_post(local, daemon, "clients.pair.start")
    result = started_["result"]
    assert len(result["pin"]) == 6 and result["expiresAt"] > 0 and 290 <= result["expiresIn"] <= 300
    assert (await rpc_post(local, daemon, "clients.pair.cancel"))[1]["result"] == {}
    client = await pair(daemon, local, remote, "My Phone")
    listed = (await rpc_post(local, daemon, "clients"))[1]["result"]["clients"]
    assert [(c["clientId"], c["clientName"], c["role"]) for c in listed] == [(client.client_id, "My Phone", "admin")]
    assert set(listed[0]) == {"clientId", "clientName", "role", "createdAt", "lastSeenAt"}  # no token, no key
    current = (await rpc_post(local, daemon, "clients.current"))[1]["result"]
    assert current == {"role": None, "capabilities": ["profiles.manage", "settings.write", "update.apply"],
                       "paired": False}
    async with remote.ws_connect(base(daemon) + "/api") as ws:
        s = Session(ws, EncryptedChannel(client.auth_token, client.pairing_key))
        assert (await s.call("clients.current"))["result"]["paired"] is True
        refused = await s.call("clients.pair.start")
        assert refused["error"]["message"] == "method is only available from localhost"
        assert "error" in await s.call("clients")


async def test_wrong_pin_three_times_invalidates_the_pin_over_http(rig):
    daemon, emu, local, remote = rig
    pin = (await rpc_post(local, daemon, "clients.pair.start"))[1]["result"]["pin"]
    wrong = "000000" if pin != "000000" else "111111"
    statuses = []
    for _ in range(3):
        client = PairingClient(wrong)
        async with remote.post(base(daemon) + "/api/pair/start", json=client.start_body()) as r:
            start = await r.json()
        await asyncio.sleep(1.0)
        async with remote.post(base(daemon) + "/api/pair/finish", json=client.finish_body(start)) as r:
            statuses.append((r.status, (await r.json())["error"]))
        await asyncio.sleep(1.0)
    assert statuses == [(401, "wrong PIN"), (401, "wrong PIN"), (403, "too many failed attempts")]
    async with remote.post(base(daemon) + "/api/pair/start", json=PairingClient(pin).start_body()) as r:
        assert r.status == 400 and (await r.json())["error"] == "no pairing in progress"


async def test_pairing_requests_are_rate_limited_per_address(rig):
    daemon, emu, local, remote = rig
    async with remote.post(base(daemon) + "/api/pair/start", json={}) as r:
        assert r.status == 400
    async with remote.post(base(daemon) + "/api/pair/start", json={}) as r:
        assert r.status == 429


async def test_a_tampered_frame_closes_the_connection(rig):
    daemon, emu, local, remote = rig
    client = await pair(daemon, local, remote)
    async with remote.ws_connect(base(daemon) + "/api") as ws:
        s = Session(ws, EncryptedChannel(client.auth_token, client.pairing_key))
        await s.call("version")
        frame = json.loads(s.channel.send({"jsonrpc": "2.0", "id": 9, "method": "run", "params": {"text": "evil"}}))
        ct = bytearray(base64.b64decode(frame["e"]))
        ct[-1] ^= 0x01
        await ws.send_str(json.dumps({"e": base64.b64encode(bytes(ct)).decode()}))
        msg = await ws.receive(timeout=5)
        assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
    assert all(h.text != "evil" for h in daemon.store.history())


async def test_unsupported_version_is_answered_in_plaintext(rig):
    daemon, emu, local, remote = rig
    client = await pair(daemon, local, remote)
    async with remote.ws_connect(base(daemon) + "/api") as ws:
        frame = dict(json.loads(EncryptedChannel(client.auth_token, client.pairing_key).send("x")), v=2)
        await ws.send_str(json.dumps(frame))
        reply = json.loads((await ws.receive(timeout=5)).data)
        assert reply["error"]["code"] == -32001 and reply["error"]["data"] == {"supported": [1]}


async def test_paired_clients_survive_a_restart_and_removal_ends_them(tmp_path):
    first = await started(make_daemon(tmp_path))
    local = aiohttp.ClientSession()
    remote = aiohttp.ClientSession(connector=aiohttp.TCPConnector(local_addr=(REMOTE, 0)))
    try:
        client = await pair(first, local, remote)
        await first.stop()
        mode = stat.S_IMODE(os.stat(tmp_path / "tagd.db").st_mode)
        assert mode == 0o600, oct(mode)
        second = await started(make_daemon(tmp_path))
        try:
            async with remote.ws_connect(base(second) + "/api") as ws:
                s = Session(ws, EncryptedChannel(client.auth_token, client.pairing_key))
                assert (await s.call("version"))["result"]
            assert (await rpc_post(local, second, "clients.delete", {"clientId": client.client_id}))[1]["result"] == {}
            async with remote.ws_connect(base(second) + "/api") as ws:
                await ws.send_str(EncryptedChannel(client.auth_token, client.pairing_key).send({"id": 1}))
                assert (await ws.receive(timeout=5)).type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
        finally:
            await second.stop()
    finally:
        await local.close()
        await remote.close()


async def test_allowed_ips_and_keys_open_plaintext_and_encryption_true_closes_the_websocket(rig):
    daemon, emu, local, remote = rig
    daemon.api.access = AccessPolicy(allowed_ips=[REMOTE])
    assert (await rpc_post(remote, daemon, "version"))[0] == 200
    async with remote.ws_connect(base(daemon) + "/api") as ws:
        await ws.send_str("ping")
        assert (await ws.receive(timeout=5)).data == "pong"
    daemon.api.access = AccessPolicy(allowed_ips=["127.0.0.0/30"], encryption=True)
    assert await plaintext_refused(remote, daemon, "version")
    assert (await rpc_post(remote, daemon, "version"))[0] == 200  # POST is the allowed_ips' business only
    daemon.api.access = AccessPolicy(allowed_ips=["10.0.0.0/8"], keys=["k"])
    assert (await rpc_post(remote, daemon, "version"))[0] == 401


async def test_local_clients_need_nothing(rig):
    daemon, emu, local, remote = rig
    async with local.ws_connect(base(daemon) + "/api") as ws:
        await ws.send_str(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "run", "params": {"text": "ok"}}))
        msg = json.loads((await ws.receive(timeout=5)).data)
        while "id" not in msg:  # the tap's tokens.added may come first
            msg = json.loads((await ws.receive(timeout=5)).data)
        assert msg["result"] == {}


async def test_a_member_client_cannot_change_settings_but_an_admin_can(rig):
    daemon, emu, local, remote = rig
    admin = await pair(daemon, local, remote, "admin phone")
    await asyncio.sleep(1.0)
    member = await pair(daemon, local, remote, "kid's tablet")
    for client, allowed in ((member, False), (admin, True)):
        async with remote.ws_connect(base(daemon) + "/api") as ws:
            s = Session(ws, EncryptedChannel(client.auth_token, client.pairing_key))
            current = (await s.call("clients.current"))["result"]
            reply = await s.call("settings.update", {})
            assert ("error" not in reply) is allowed, reply
            if allowed:
                assert current["role"] == "admin" and "settings.write" in current["capabilities"]
            else:
                assert current == {"role": "member", "capabilities": [], "paired": True}
                assert reply["error"]["message"] == "client role does not permit this method"
                assert "result" in await s.call("run", {"text": "**launch.system:nes"})  # members still launch


async def test_tagd_pair_shows_the_pin_and_its_lifetime_and_ends_when_the_app_pairs(rig):
    import io

    from tagd.cli.clients import clients, pair as cli_pair

    daemon, emu, local, remote = rig
    out = io.StringIO()
    url = f"ws://127.0.0.1:{daemon.api.port}/api"
    shown = asyncio.ensure_future(cli_pair(url, "", out))
    for _ in range(100):
        if "PIN:" in out.getvalue():
            break
        await asyncio.sleep(0.05)
    pin = out.getvalue().split("PIN: ")[1].split()[0]
    assert "valid for 5:00" in out.getvalue() or "valid for 4:5" in out.getvalue()
    app = PairingClient(pin, "Pixel")
    async with remote.post(base(daemon) + "/api/pair/start", json=app.start_body()) as r:
        start = await r.json()
    await asyncio.sleep(1.0)
    async with remote.post(base(daemon) + "/api/pair/finish", json=app.finish_body(start)) as r:
        assert r.status == 200
    assert await asyncio.wait_for(shown, 5) == 0
    assert "Paired with Pixel." in out.getvalue()
    listing = io.StringIO()
    assert await clients(url, None, listing) == 0
    assert "Pixel" in listing.getvalue() and "admin" in listing.getvalue()
    assert await clients(url, listing.getvalue().split()[0], io.StringIO()) == 0
    assert daemon.store.clients() == []


async def test_tagd_pair_cancelled_cancels_the_pin(rig):
    import io

    from tagd.cli.clients import pair as cli_pair

    daemon, emu, local, remote = rig
    out = io.StringIO()
    shown = asyncio.ensure_future(cli_pair(f"ws://127.0.0.1:{daemon.api.port}/api", "", out))
    for _ in range(100):
        if "PIN:" in out.getvalue():
            break
        await asyncio.sleep(0.05)
    shown.cancel()
    assert await asyncio.wait_for(shown, 5) == 1
    assert "cancelled" in out.getvalue() and daemon.pairing.pending() is None


async def test_service_allowed_ips_and_encryption_come_from_the_config_and_reload(tmp_path):
    daemon = await started(make_daemon(tmp_path, service={"allowed_ips": [REMOTE]}))
    remote = aiohttp.ClientSession(connector=aiohttp.TCPConnector(local_addr=(REMOTE, 0)))
    try:
        assert (await rpc_post(remote, daemon, "version"))[0] == 200
        await daemon.apply_config(Config.model_validate({
            "readers": {"auto_detect": False}, "database": str(tmp_path / "tagd.db"), "api": {"listen": "127.0.0.1:0"},
            "service": {"allowed_ips": ["10.0.0.0/8"]}}))
        assert (await rpc_post(remote, daemon, "version"))[0] == 401
    finally:
        await remote.close()
        await daemon.stop()


def test_tagd_pair_warns_when_the_api_is_loopback_only(tmp_path):
    import argparse

    from tagd.cli.clients import loopback_only

    cfg = tmp_path / "c.toml"
    cfg.write_text('[api]\nlisten = "127.0.0.1:7497"\n')
    assert loopback_only(argparse.Namespace(url=None, config=str(cfg)))
    cfg.write_text('[api]\nlisten = ":7497"\n')
    assert not loopback_only(argparse.Namespace(url=None, config=str(cfg)))


async def test_pake_key_derivation_and_the_store_run_off_the_event_loop(rig, monkeypatch):
    """Pairing's pure-Python P-256 arithmetic takes tens of ms a step: it must not hold up taps and other clients,
    so start, finish and an encrypted session's first frame run in a worker thread."""
    import threading

    daemon, emu, local, remote = rig
    loop_thread = threading.get_ident()
    seen: dict[str, int] = {}
    service = daemon.pairing
    notified: list[int] = []
    real_notify = service.notify
    monkeypatch.setattr(service, "notify", lambda *a: (notified.append(threading.get_ident()), real_notify(*a)))
    for name in ("_start", "_finish", "_establish"):
        real = getattr(service, name)

        def spy(*args, _real=real, _name=name):
            seen[_name] = threading.get_ident()
            return _real(*args)

        monkeypatch.setattr(service, name, spy)
    client = await pair(daemon, local, remote)
    async with remote.ws_connect(base(daemon) + "/api") as ws:
        assert "result" in await Session(ws, EncryptedChannel(client.auth_token, client.pairing_key)).call("version")
    assert sorted(seen) == ["_establish", "_finish", "_start"]
    assert loop_thread not in seen.values()
    assert notified == [loop_thread]  # clients.paired is sent from the loop: it reaches asyncio objects
