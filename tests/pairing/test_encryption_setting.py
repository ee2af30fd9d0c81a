"""The Zaparoo App's ``encryption`` setting is ``[service] encryption`` (issue 12), with Core's meaning and rule.

Core's settings report it; Core's settings.update changes it only for a caller on the device itself ("encryption
setting: method is only available from localhost"), even for a paired admin. "Another machine" is 127.0.0.2, as in
test_pairing_api.py.
"""

from __future__ import annotations

import json

import aiohttp

from tagd.daemon.config import load_config
from tagd.daemon.service import Daemon
from test_pairing_api import REMOTE, Session, make_daemon, pair, plaintext_refused, rpc_post, started
from zaparoo_client import EncryptedChannel

LOCALHOST_ONLY = "encryption setting: method is only available from localhost"


async def settings(session, daemon):
    return (await rpc_post(session, daemon, "settings"))[1]["result"]


async def plaintext_answered(remote, daemon):
    async with remote.ws_connect(f"http://127.0.0.1:{daemon.api.port}/api") as ws:
        await ws.send_str(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "version", "params": {}}))
        return "result" in json.loads((await ws.receive(timeout=5)).data)


async def test_settings_report_service_encryption(tmp_path):
    for value in (False, True):
        daemon = await started(make_daemon(tmp_path / str(value), service={"encryption": value}))
        try:
            async with aiohttp.ClientSession() as local:
                assert (await settings(local, daemon))["encryption"] is value
        finally:
            await daemon.stop()


async def test_encryption_update_from_loopback_applies_at_once_and_survives_a_restart(tmp_path):
    daemon = await started(make_daemon(tmp_path, service={"allowed_ips": [REMOTE]}))
    path = tmp_path / "config.toml"
    try:
        async with aiohttp.ClientSession() as local, aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(local_addr=(REMOTE, 0))) as remote:
            assert await plaintext_answered(remote, daemon)  # allowed_ips lets plaintext in
            assert (await rpc_post(local, daemon, "settings.update", {"encryption": True}))[1] == \
                {"jsonrpc": "2.0", "id": 1, "result": {}}
            assert (await settings(local, daemon))["encryption"] is True
            assert await plaintext_refused(remote, daemon, "version")  # now even an allowed address must pair
    finally:
        await daemon.stop()
    assert load_config(path).service.encryption is True  # in the file: [service] encryption
    again = await started(Daemon(load_config(path), path))
    try:
        async with aiohttp.ClientSession() as local:
            assert (await settings(local, again))["encryption"] is True
            assert (await rpc_post(local, again, "settings.update", {"encryption": False}))[1]["result"] == {}
        assert load_config(path).service.encryption is False
    finally:
        await again.stop()


async def test_encryption_update_from_another_machine_is_refused_and_changes_nothing(tmp_path):
    daemon = await started(make_daemon(tmp_path, service={"allowed_ips": [REMOTE]}))
    try:
        async with aiohttp.ClientSession() as local, aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(local_addr=(REMOTE, 0))) as remote:
            status, reply = await rpc_post(remote, daemon, "settings.update", {"encryption": True})
            assert status == 200 and reply["error"]["message"] == LOCALHOST_ONLY
            admin = await pair(daemon, local, remote, "admin phone")
            async with remote.ws_connect(f"http://127.0.0.1:{daemon.api.port}/api") as ws:
                s = Session(ws, EncryptedChannel(admin.auth_token, admin.pairing_key))
                reply = await s.call("settings.update", {"encryption": True, "debugLogging": True})
                assert reply["error"]["message"] == LOCALHOST_ONLY  # a paired admin too, and the whole update
                assert "result" in await s.call("settings.update", {"errorReporting": True})  # other keys: yes
            shown = await settings(local, daemon)
            assert shown["encryption"] is False and shown["debugLogging"] is False
            assert daemon.config.service.encryption is False
    finally:
        await daemon.stop()
    assert load_config(tmp_path / "config.toml").service.encryption is False
