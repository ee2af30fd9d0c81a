"""The API in process: a real Daemon (store, pipeline, API server) on a free port, a replay/file reader."""

from __future__ import annotations

import asyncio
import json
import random
import socket

import aiohttp
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from fake_core import FakeCore, free_port
from tagd.daemon.api.jsonrpc import Dispatcher
from tagd.daemon.api.server import is_loopback
from tagd.daemon.config import Config
from tagd.daemon.service import Daemon
from tagd.web.server import Request


def make_config(tmp_path, **extra) -> Config:
    raw = {"readers": {"auto_detect": False}, "database": str(tmp_path / "tagd.db"),
           "api": {"listen": "127.0.0.1:0"}}
    raw.update(extra)
    return Config.model_validate(raw)


@pytest.fixture
async def daemon(tmp_path):
    tagfile = tmp_path / "tag.txt"
    d = Daemon(make_config(tmp_path), tmp_path / "config.toml", extra_readers=[f"file:{tagfile}"])
    await d.start()
    d.tagfile = tagfile
    yield d
    await d.stop()


@pytest.fixture
async def client(daemon):
    async with aiohttp.ClientSession() as session:
        yield Client(session, daemon.api.port)


class Client:
    def __init__(self, session, port):
        self.session, self.port, self.n = session, port, 0
        self.base = f"http://127.0.0.1:{port}"

    async def post(self, payload, path="/api"):
        body = payload if isinstance(payload, (str, bytes)) else json.dumps(payload)
        async with self.session.post(self.base + path, data=body) as r:
            return r.status, (await r.json() if r.status == 200 else None)

    async def call(self, method, params=None):
        self.n += 1
        msg = {"jsonrpc": "2.0", "id": self.n, "method": method}
        if params is not None:
            msg["params"] = params
        status, resp = await self.post(msg)
        assert status == 200
        return resp


async def test_invalid_json_is_parse_error_with_null_id(client):
    assert (await client.post("{nope"))[1] == {"jsonrpc": "2.0", "id": None,
                                               "error": {"code": -32700, "message": "Parse error"}}


async def test_wrong_jsonrpc_version_is_invalid_request(client):
    resp = (await client.post({"jsonrpc": "1.0", "id": 5, "method": "version"}))[1]
    assert resp["error"]["code"] == -32600 and resp["id"] == 5


async def test_unknown_method_without_core_is_method_not_found(client):
    assert (await client.call("media.search", {"query": "x"}))["error"]["code"] == -32601


async def test_method_names_are_case_insensitive(client):
    assert (await client.call("VERSION"))["result"]["platform"] == "tagd"


async def test_notification_gets_no_reply(client):
    status, body = await client.post({"jsonrpc": "2.0", "method": "version"})
    assert status == 204 and body is None


async def test_handler_error_is_code_1_with_a_message(client):
    resp = await client.call("readers.write", {})
    assert resp["error"] == {"code": 1, "message": "invalid params: text is required"}


async def test_health_method_and_endpoint(client):
    assert (await client.call("health"))["result"] == {"status": "ok"}
    async with client.session.get(client.base + "/health") as r:
        assert await r.text() == "OK"


async def test_websocket_ping_pong_and_rpc(client):
    async with client.session.ws_connect(f"ws://127.0.0.1:{client.port}/api/v0.1") as ws:
        await ws.send_str("ping")
        assert (await ws.receive()).data == "pong"
        await ws.send_str(json.dumps({"jsonrpc": "2.0", "id": "a", "method": "health"}))
        assert json.loads((await ws.receive()).data)["result"] == {"status": "ok"}


async def wait_for(predicate, timeout=3.0):
    for _ in range(int(timeout / 0.05)):
        if await predicate():
            return True
        await asyncio.sleep(0.05)
    return False


async def test_tap_shows_in_readers_tokens_history_and_notifications(daemon, client):
    async def reader_up():
        return daemon.reader_infos()
    assert await wait_for(reader_up)  # its readers.added is sent before the socket below exists
    async with client.session.ws_connect(f"ws://127.0.0.1:{client.port}/api") as ws:
        readers = (await client.call("readers"))["result"]["readers"]
        assert readers[0]["driver"] == "file" and readers[0]["readerId"].startswith("file-")
        daemon.tagfile.write_text("**launch.system:snes")
        msg = json.loads((await ws.receive(timeout=3)).data)
        assert msg["method"] == "tokens.added" and msg["params"]["text"] == "**launch.system:snes"
    tokens = (await client.call("tokens"))["result"]
    assert tokens["active"][0]["text"] == "**launch.system:snes" and tokens["last"]["text"] == "**launch.system:snes"

    async def recorded():
        return (await client.call("tokens.history"))["result"]["entries"]
    assert await wait_for(recorded)
    entry = (await recorded())[0]
    assert entry["text"] == "**launch.system:snes" and entry["success"] is False  # no core configured


async def test_run_injects_a_token_and_requires_something(client):
    assert (await client.call("run", {}))["error"]["message"] == "invalid params: one of uid, text or data is required"
    assert (await client.call("run", {"text": "**launch.random:snes"}))["result"] == {}
    assert (await client.call("run", "**launch.random:nes"))["result"] == {}

    async def two():
        return len((await client.call("tokens.history"))["result"]["entries"]) == 2
    assert await wait_for(two)


async def test_get_run_launches(client):
    async with client.session.get(client.base + "/run/**launch.system:gb") as r:
        assert r.status == 200

    async def one():
        return (await client.call("tokens.history"))["result"]["entries"]
    assert await wait_for(one)


async def test_mapping_crud_and_bad_regex(client):
    new = {"label": "m", "enabled": True, "type": "uid", "match": "exact", "pattern": "04:AA", "override": "@SNES/x"}
    assert (await client.call("mappings.new", new))["result"] == {}
    rows = (await client.call("mappings"))["result"]["mappings"]
    assert rows[0]["pattern"] == "04:AA" and rows[0]["type"] == "uid"
    mid = rows[0]["id"]
    assert (await client.call("mappings.update", {"id": mid, "override": "@SNES/y"}))["result"] == {}
    assert (await client.call("mappings"))["result"]["mappings"][0]["override"] == "@SNES/y"
    bad = dict(new, match="regex", pattern="a(b")
    err = (await client.call("mappings.new", bad))["error"]
    assert err["code"] == 1 and "regex" in err["message"]
    assert (await client.call("mappings.delete", {"id": mid}))["result"] == {}
    assert (await client.call("mappings"))["result"]["mappings"] == []
    assert (await client.call("mappings.delete", {"id": "nope"}))["error"]["code"] == 1


async def test_mapping_applies_to_the_next_tap(daemon, client):
    await client.call("mappings.new", {"type": "text", "match": "partial", "pattern": "mario", "override": "@SNES/SMW"})
    await asyncio.sleep(0.3)
    daemon.tagfile.write_text("super mario")

    async def mapped():
        e = (await client.call("tokens.history"))["result"]["entries"]
        return e and e[0]["text"] == "@SNES/SMW"
    assert await wait_for(mapped)


async def test_settings_read_update_and_bad_value(client, daemon):
    s = (await client.call("settings"))["result"]
    assert s["readersScanMode"] == "tap"
    assert (await client.call("settings.update", {"readersScanMode": "hold", "readersScanExitDelay": 2}))["result"] == {}
    assert daemon.pipeline.config.readers.scan.mode == "hold"
    err = (await client.call("settings.update", {"readersScanMode": "sideways"}))["error"]
    assert err["code"] == 1 and "readersScanMode" in err["message"]
    assert (await client.call("settings.reload"))["result"] == {}
    assert daemon.config.readers.scan.mode == "hold"  # it was written to the config file


async def test_inbox_lists_deletes_and_clears(client, daemon):
    daemon.store.add_inbox("Reader lost", "readers")
    daemon.store.add_inbox("Core down", "core")
    msgs = (await client.call("inbox"))["result"]["messages"]
    assert sorted(m["title"] for m in msgs) == ["Core down", "Reader lost"]
    assert (await client.call("inbox.delete", {"id": msgs[0]["id"]}))["result"] == {}
    assert len((await client.call("inbox"))["result"]["messages"]) == 1
    assert (await client.call("inbox.clear"))["result"] == {}
    assert (await client.call("inbox"))["result"]["messages"] == []


async def test_readers_write_without_a_writable_reader_fails_clearly(client):
    err = (await client.call("readers.write", {"text": "x"}))["error"]
    assert err["code"] == 1 and "can write" in err["message"]
    assert (await client.call("readers.write.cancel"))["result"] == {}


async def test_sse_receives_notifications(client, daemon):
    async with client.session.get(client.base + "/api/v0.1/events") as r:
        assert r.headers["Content-Type"].startswith("text/event-stream")
        await r.content.readline()
        await r.content.readline()
        daemon.notify("tokens.removed", None)
        line = await asyncio.wait_for(r.content.readline(), 3)
        assert json.loads(line.decode()[len("data: "):]) == {"jsonrpc": "2.0", "method": "tokens.removed"}


async def test_non_local_clients_need_an_api_key(tmp_path):
    d = Daemon(make_config(tmp_path, api={"listen": "127.0.0.1:0", "keys": ["s3cret"]}), tmp_path / "c.toml")
    await d.start()
    d.api.is_local = lambda request: False
    try:
        url = f"http://127.0.0.1:{d.api.port}/api"
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "version"})
        async with aiohttp.ClientSession() as s:
            async with s.post(url, data=body) as r:
                assert r.status == 401
            async with s.post(url, data=body, headers={"Authorization": "Bearer s3cret"}) as r:
                assert r.status == 200
            async with s.post(url + "?key=s3cret", data=body) as r:
                assert r.status == 200
            async with s.post(url + "?key=wrong", data=body) as r:
                assert r.status == 401
    finally:
        await d.stop()


def forged_request(peer):
    return Request("GET", "/api", "/api", {}, {}, peer)


@pytest.mark.parametrize("peer, local", [("127.0.0.1", True), ("127.8.9.10", True), ("::1", True),
                                         ("::ffff:127.0.0.1", True), ("::ffff:10.0.0.5", False),
                                         ("10.0.0.5", False), ("192.168.1.20", False), ("fe80::1%eth0", False),
                                         ("not an address", False)])
def test_only_loopback_peers_are_local(peer, local):
    assert is_loopback(forged_request(peer)) is local


async def test_loopback_clients_need_no_key_even_when_keys_are_set(tmp_path):
    d = Daemon(make_config(tmp_path, api={"listen": "127.0.0.1:0", "keys": ["s3cret"]}), tmp_path / "c.toml")
    await d.start()
    try:
        async with aiohttp.ClientSession() as s:
            assert (await Client(s, d.api.port).call("health"))["result"] == {"status": "ok"}
    finally:
        await d.stop()


async def test_non_local_websocket_and_events_need_a_key_too(tmp_path):
    d = Daemon(make_config(tmp_path, api={"listen": "127.0.0.1:0", "keys": ["s3cret"]}), tmp_path / "c.toml")
    await d.start()
    d.api.is_local = lambda request: False
    base = f"http://127.0.0.1:{d.api.port}"
    try:
        async with aiohttp.ClientSession() as s:
            async with s.ws_connect(base + "/api/v0.1") as ws:  # connects, but is told to pair (as Core says it)
                await ws.send_str("ping")
                reply = json.loads((await ws.receive()).data)
                assert reply["error"]["code"] == -32002 and reply["id"] is None
                assert (await ws.receive()).type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
            async with s.ws_connect(base + "/api/v0.1?key=s3cret") as ws:
                await ws.send_str("ping")
                assert (await ws.receive()).data == "pong"
            async with s.get(base + "/api/v0.1/events") as r:
                assert r.status == 401
            async with s.get(base + "/run/**launch.system:snes") as r:
                assert r.status == 401
            async with s.get(base + "/api/v0.1/events", headers={"Authorization": "Bearer s3cret"}) as r:
                assert r.status == 200
    finally:
        await d.stop()


async def test_no_keys_configured_means_non_local_clients_are_refused(tmp_path):
    d = Daemon(make_config(tmp_path), tmp_path / "c.toml")
    await d.start()
    d.api.is_local = lambda request: False
    try:
        async with aiohttp.ClientSession() as s:
            async with s.post(f"http://127.0.0.1:{d.api.port}/api?key=", data="{}") as r:
                assert r.status == 401
    finally:
        await d.stop()


async def test_a_port_in_use_fails_start_cleanly(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        d = Daemon(make_config(tmp_path, api={"listen": f"127.0.0.1:{port}"}), tmp_path / "c.toml")
        with pytest.raises(OSError):
            await d.start()
    import gc

    assert gc.get_freeze_count() == 0, "a start that failed left the start-up objects frozen"
    d = Daemon(make_config(tmp_path), tmp_path / "c.toml")  # the store was closed: it opens again
    await d.start()
    await d.stop()


async def test_batches_answer_each_request_and_skip_notifications(client):
    batch = [{"jsonrpc": "2.0", "id": 1, "method": "health"}, {"jsonrpc": "2.0", "method": "health"},
             {"jsonrpc": "2.0", "id": 2, "method": "nope"}, 5]
    resp = (await client.post(batch))[1]
    assert resp[0] == {"jsonrpc": "2.0", "id": 1, "result": {"status": "ok"}}
    assert resp[1]["id"] == 2 and resp[1]["error"]["code"] == -32601
    assert resp[2] == {"jsonrpc": "2.0", "id": None, "error": {"code": -32600, "message": "Invalid Request"}}
    assert len(resp) == 3
    assert (await client.post([]))[1]["error"]["code"] == -32600
    too_many = (await client.post([{"jsonrpc": "2.0", "id": i, "method": "health"} for i in range(101)]))[1]
    assert too_many["error"]["code"] == -32600 and "at most 100" in too_many["error"]["data"]


@pytest.mark.parametrize("body", ['"just a string"', "42", "null", '{"jsonrpc": "2.0", "id": 1}',
                                  '{"jsonrpc": "2.0", "id": 1, "method": 7}', '{"id": 1, "method": "version"}',
                                  '{"jsonrpc": "2.0", "id": {"x": 1}, "method": "version"}'])
async def test_malformed_requests_are_invalid_request(client, body):
    assert (await client.post(body))[1]["error"] == {"code": -32600, "message": "Invalid Request"}


@pytest.mark.parametrize("method, params, message", [
    ("run", [1, 2], "invalid params: expected an object"),
    ("readers.write", {"text": 5}, "invalid params: text: Input should be a valid string"),
    ("mappings.update", {"enabled": False}, "invalid params: id is required"),
    ("mappings.new", {"type": "uid", "match": "exact", "pattern": "04"}, "invalid params: override is required"),
    ("inbox.delete", {}, "invalid params: id is required"),
])
async def test_bad_params_are_code_1_naming_the_field(client, method, params, message):
    assert (await client.call(method, params))["error"] == {"code": 1, "message": message}


async def test_unknown_methods_are_proxied_to_the_core_and_its_notifications_relayed(tmp_path):
    core = FakeCore(free_port())
    await core.start()
    d = Daemon(make_config(tmp_path, core=[{"type": "zaparoo", "url": f"ws://127.0.0.1:{core.port}/api/v0.1"}]),
               tmp_path / "c.toml")
    await d.start()
    try:
        async with aiohttp.ClientSession() as s:
            c = Client(s, d.api.port)
            for _ in range(60):
                if core.clients:
                    break
                await asyncio.sleep(0.05)
            assert (await c.call("media.active"))["result"] is None
            assert "media.active" in core.methods()
            assert (await c.call("boom"))["error"] == {"code": 1, "message": "no such system"}
            async with s.ws_connect(f"ws://127.0.0.1:{d.api.port}/api") as ws:
                # Core's own reader and token notifications are not relayed: tagd announces its own
                await core.notify("tokens.added", {"text": "from core"})
                await core.notify("readers.added", {"driver": "pn532", "path": "core's", "connected": True})
                await core.notify("media.started", {"systemId": "SNES", "mediaName": "SMW"})
                msg = json.loads((await ws.receive(timeout=3)).data)
                assert msg == {"jsonrpc": "2.0", "method": "media.started",
                               "params": {"systemId": "SNES", "mediaName": "SMW"}}
    finally:
        await d.stop()
        await core.stop()


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
                           max_leaves=8)
METHODS = ["version", "health", "readers", "readers.write", "readers.write.cancel", "tokens", "tokens.history", "run",
           "stop", "mappings", "mappings.new", "mappings.update", "mappings.delete", "mappings.reload", "settings",
           "inbox", "inbox.delete", "inbox.clear", "nope", "", "RUN"]
requests = st.fixed_dictionaries({}, optional={
    "jsonrpc": st.sampled_from(["2.0", "1.0", 2]) | json_values, "id": st.integers() | st.text(max_size=5) | json_values,
    "method": st.sampled_from(METHODS) | json_values, "params": json_values})
messages = st.one_of(requests.map(json.dumps), st.lists(requests, max_size=3).map(json.dumps),
                     st.text(max_size=60), st.binary(max_size=60))


def check_response(resp):
    items = resp if isinstance(resp, list) else [resp]
    for r in items:
        assert r["jsonrpc"] == "2.0" and "id" in r and (("result" in r) ^ ("error" in r))
        if "error" in r:
            assert isinstance(r["error"]["code"], int) and isinstance(r["error"]["message"], str)


async def test_10000_random_messages_each_get_a_valid_answer_and_the_daemon_stays_up(daemon, client):
    rpc: Dispatcher = daemon.api.dispatcher
    samples: list = []

    @settings(max_examples=2_000, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(messages)
    def collect(m):
        samples.append(m)

    collect()
    # hypothesis' generation is the slow part: stretch its 2,000 messages to 10,000 with seeded damage
    rnd = random.Random(7)
    for m in list(samples):
        text = m if isinstance(m, str) else m.decode("latin-1")
        cut = rnd.randrange(len(text) + 1)
        pos = rnd.randrange(len(text) + 1)
        samples += [text[:cut], text[:pos] + rnd.choice('{}[]",:0\\') + text[pos:], f"[{text},{text}]",
                    text.replace('"', "'")]
    assert len(samples) == 10_000
    for m in samples:
        resp = await rpc.handle_text(m)
        if resp is not None:
            check_response(resp)
    # over a real socket: whether a message is answered depends only on its shape, so the count is known
    over_ws = [m if isinstance(m, str) else m.decode("latin-1") for m in samples[:500]]
    expected = 0
    for m in over_ws:
        expected += m == "ping" or await rpc.handle_text(m) is not None
    async with client.session.ws_connect(f"ws://127.0.0.1:{client.port}/api") as ws:
        for m in over_ws:
            await ws.send_str(m)
        await ws.send_str(json.dumps({"jsonrpc": "2.0", "id": "last", "method": "health"}))
        got = 0
        while got < expected + 1:
            data = (await ws.receive(timeout=20)).data
            got += 1
            if data != "pong":
                check_response(json.loads(data))
    assert got == expected + 1
    assert (await client.call("health"))["result"] == {"status": "ok"}


async def test_a_core_url_that_points_back_at_tagd_is_refused_not_looped(tmp_path):
    """With tagd on Zaparoo's port, the default zaparoo url reaches tagd itself: every run would be forwarded to
    its own run, without end. Its own requests are refused (508), and the launch fails once, saying why."""
    from tagd.token import Token

    port = free_port()
    config = make_config(tmp_path, api={"listen": f"127.0.0.1:{port}"},
                         core=[{"type": "zaparoo", "url": f"ws://127.0.0.1:{port}/api/v0.1"},
                               {"type": "webhook", "url": f"http://localhost:{port}/api"}])
    d = Daemon(config, tmp_path / "config.toml")
    await d.start()
    try:
        assert await d.pipeline.run_token(Token(text="**launch.system:snes")) is False
        await asyncio.sleep(0.5)  # a loop would have added hundreds of entries by now
        assert len(d.store.history(100)) == 1
        bodies = " ".join(m.body for m in d.store.inbox())
        assert "this tagd's own API, not Zaparoo Core" in bodies and "not a webhook receiver" in bodies
        async with aiohttp.ClientSession() as s:  # another client is served as before
            async with s.post(f"http://127.0.0.1:{port}/api", json={"jsonrpc": "2.0", "id": 1, "method": "health"}) as r:
                assert (await r.json())["result"] == {"status": "ok"}
    finally:
        await d.stop()
