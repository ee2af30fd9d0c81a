"""The Origin check: web pages other than the allowed ones cannot drive the key-less loopback API."""

from __future__ import annotations

import json

import aiohttp
import pytest

from tagd.daemon.api.origins import OriginPolicy, expand
from tagd.daemon.service import Daemon
from test_api import make_config

EVIL = "https://evil.example"


def policy(allowed=(), hostname="retro") -> OriginPolicy:
    return OriginPolicy(7497, list(allowed), hostname=hostname)


@pytest.mark.parametrize("origin", ["capacitor://localhost", "ionic://localhost", "https://zaparoo.app",
                                    "http://localhost", "https://localhost", "http://localhost:7497",
                                    "http://127.0.0.1:7497", "https://[::1]:7497", "http://retro", "http://retro:7497",
                                    "https://retro.local", "HTTPS://ZAPAROO.APP", "https://zaparoo.app/"])
def test_the_apps_and_this_machines_origins_are_allowed(origin):
    assert policy().allows(origin)


@pytest.mark.parametrize("origin", [EVIL, "null", "", "http://localhost:8080", "http://127.0.0.1",
                                    "https://zaparoo.app.evil.example", "http://retro.evil", "file://"])
def test_other_origins_are_refused(origin):
    assert not policy().allows(origin)


def test_no_origin_header_is_not_a_browser_and_passes():
    assert policy().allows(None)


def test_the_address_a_request_came_in_on_is_this_machines_origin_with_the_api_port():
    p = policy()
    assert p.allows("http://192.168.1.20:7497", "192.168.1.20")
    assert p.allows("http://192.168.1.20:7497", "::ffff:192.168.1.20")
    assert not p.allows("http://192.168.1.20:8000", "192.168.1.20")
    assert not p.allows("http://192.168.1.99:7497", "192.168.1.20")


@pytest.mark.parametrize("entry, origins", [
    ("batocera.local", ["http://batocera.local:7497", "https://batocera.local:7497", "http://batocera.local",
                        "https://batocera.local"]),
    ("http://ko.ts.net/", ["http://ko.ts.net", "http://ko.ts.net:7497"]),
    ("https://dash.home:8443", ["https://dash.home:8443"]),
    ("app://shell", ["app://shell"]),
    ("  ", []),
])
def test_allowed_origins_entries_expand_as_zaparoo_core_does(entry, origins):
    assert sorted(expand(entry, 7497)) == sorted(origins)
    assert all(policy([entry], hostname="").allows(o) for o in origins)


def test_an_entry_with_a_port_allows_only_that_port():
    assert not policy(["https://dash.home:8443"]).allows("https://dash.home")


# --- through the daemon ------------------------------------------------------


@pytest.fixture
async def daemon(tmp_path):
    d = Daemon(make_config(tmp_path, api={"listen": "127.0.0.1:0", "allowed_origins": ["dash.home"]}),
               tmp_path / "config.toml")
    await d.start()
    yield d
    await d.stop()


def rpc(method, params=None) -> str:
    return json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, **({"params": params} if params else {})})


async def test_a_websocket_from_a_foreign_page_is_refused_403(daemon):
    async with aiohttp.ClientSession() as s:
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await s.ws_connect(f"ws://127.0.0.1:{daemon.api.port}/api", origin=EVIL)
        assert refused.value.status == 403
        async with s.ws_connect(f"ws://127.0.0.1:{daemon.api.port}/api", origin="https://zaparoo.app") as ws:
            await ws.send_str("ping")
            assert (await ws.receive(timeout=3)).data == "pong"


async def test_a_post_from_a_foreign_page_is_refused_and_changes_nothing(daemon):
    new = {"type": "text", "match": "exact", "pattern": "x", "override": "**input.keyboard:rm -rf"}
    async with aiohttp.ClientSession() as s:
        async with s.post(f"http://127.0.0.1:{daemon.api.port}/api", data=rpc("mappings.new", new),
                          headers={"Origin": EVIL, "Content-Type": "text/plain"}) as r:
            assert r.status == 403 and "allowed_origins" in await r.text()
    assert daemon.store.mappings() == []


async def test_a_post_from_an_allowed_page_is_answered_with_cors_headers(daemon):
    origin = f"http://dash.home:{daemon.api.port}"
    async with aiohttp.ClientSession() as s:
        async with s.post(f"http://127.0.0.1:{daemon.api.port}/api", data=rpc("health"),
                          headers={"Origin": origin}) as r:
            assert r.status == 200 and r.headers["Access-Control-Allow-Origin"] == origin
            assert (await r.json())["result"] == {"status": "ok"}


async def test_a_preflight_from_an_allowed_page_gets_the_cors_answer_and_a_foreign_one_403(daemon):
    url = f"http://127.0.0.1:{daemon.api.port}/api"
    ask = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"}
    async with aiohttp.ClientSession() as s:
        async with s.options(url, headers={"Origin": "https://zaparoo.app", **ask}) as r:
            assert r.status == 204
            assert r.headers["Access-Control-Allow-Origin"] == "https://zaparoo.app"
            assert "POST" in r.headers["Access-Control-Allow-Methods"]
            assert "content-type" in r.headers["Access-Control-Allow-Headers"].lower()
        async with s.options(url, headers={"Origin": EVIL, **ask}) as r:
            assert r.status == 403 and "Access-Control-Allow-Origin" not in r.headers


async def test_events_from_a_foreign_page_are_refused(daemon):
    async with aiohttp.ClientSession() as s:
        async with s.get(f"http://127.0.0.1:{daemon.api.port}/api/v0.1/events", headers={"Origin": EVIL}) as r:
            assert r.status == 403


async def test_a_health_check_works_from_any_page_but_the_page_cannot_read_it(daemon):
    async with aiohttp.ClientSession() as s:
        async with s.get(f"http://127.0.0.1:{daemon.api.port}/health", headers={"Origin": EVIL}) as r:
            assert r.status == 200 and "Access-Control-Allow-Origin" not in r.headers
