"""End to end: `tagd run` in a subprocess, `tagd sim pn532` on a pty, a fake Zaparoo Core in a subprocess."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request

import pytest

from conftest import FIXTURES
from fake_core import free_port
from procs import Proc, emulated_pn532, fake_core, rpc, wait_until



class Stack:
    def __init__(self, tmp_path, mode="tap", exit_delay=0.0, core=True, extra=""):
        self.tmp = tmp_path
        self.api_port = free_port()
        self.core_port = free_port()
        self.core = self.start_core() if core else None
        self.sim = emulated_pn532(tmp_path / "pn532")
        self.config = tmp_path / "config.toml"
        core_section = f"""
[[core]]
type = "zaparoo"
url = "ws://127.0.0.1:{self.core_port}/api/v0.1"
max_age = 10
""" if core else ""
        self.config.write_text(f"""
database = "{tmp_path / 'tagd.db'}"
[readers]
auto_detect = false
[[readers.connect]]
driver = "pn532uart"
path = "{tmp_path / 'pn532'}"
[readers.scan]
mode = "{mode}"
exit_delay = {exit_delay}
[api]
listen = "127.0.0.1:{self.api_port}"
{core_section}
[[mappings.entry]]
token_key = ""
match_pattern = "0416c6c2d73881"
zapscript = "@SNES/Super Mario World (mapped)"
{extra}
""")
        self.daemon = self.start_daemon()

    def start_core(self):
        return fake_core(self.core_port)

    def start_daemon(self, env=None):
        d = Proc([sys.executable, "-m", "tagd", "run", "--config", str(self.config)], env=env)
        wait_until(lambda: self._health(), timeout=15)
        wait_until(lambda: rpc(self.api_port, "readers")["result"]["readers"], timeout=10)
        return d

    def _health(self):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.api_port}/health", timeout=1) as r:
                return r.read() == b"OK"
        except OSError:
            return False

    def core_request(self, method, timeout=10.0):
        return json.loads(self.core.wait_line(lambda line: json.loads(line)["method"] == method, timeout))

    def close(self):
        for p in (self.daemon, self.sim, self.core):
            if p is not None:
                p.stop()


@pytest.fixture
def stack(tmp_path):
    s = Stack(tmp_path)
    yield s
    s.close()


def test_tap_sends_run_with_the_mapped_text_to_the_core(stack):
    stack.sim.send(f"place {FIXTURES / 'smw-ntag213.nfc'}")
    req = stack.core_request("run")
    assert req["params"]["text"] == "@SNES/Super Mario World (mapped)"
    assert req["params"]["uid"] == "0416c6c2d73881" and req["params"]["type"] == "NTAG"
    stack.sim.send("remove")
    stack.sim.send(f"place {FIXTURES / 'snes-ntag215.nfc'}")
    assert stack.core_request("run")["params"]["text"] == "**launch.system:snes"


def test_a_classic_card_left_on_the_reader_launches_once(stack):
    stack.sim.send(f"place {FIXTURES / 'genesis-classic1k.nfc'}")
    assert stack.core_request("run")["params"]["text"] == "**launch.random:genesis"
    time.sleep(1.5)  # a dozen presence checks
    runs = [json.loads(x) for x in list(stack.core.lines.queue)]
    assert [r for r in runs if r["method"] == "run"] == []


def test_hold_mode_stops_after_exit_delay_and_put_back_cancels(tmp_path):
    s = Stack(tmp_path, mode="hold", exit_delay=1.5)
    try:
        s.sim.send(f"place {FIXTURES / 'snes-ntag215.nfc'}")
        s.core_request("run")
        s.sim.send("remove")
        time.sleep(0.3)
        s.sim.send(f"place {FIXTURES / 'snes-ntag215.nfc'}")  # put back within the delay: nothing happens
        time.sleep(2.0)  # past exit_delay
        assert all(json.loads(x)["method"] != "stop" for x in list(s.core.lines.queue))
        t0 = time.monotonic()
        s.sim.send("remove")
        s.core_request("stop", timeout=5)
        assert 1.4 <= time.monotonic() - t0 < 5.0  # exit_delay is the floor; the ceiling only catches "never"
    finally:
        s.close()


def test_core_down_records_a_failed_launch_and_tagd_reconnects(stack):
    stack.core.stop()
    stack.sim.send(f"place {FIXTURES / 'snes-ntag215.nfc'}")
    entries = wait_until(lambda: rpc(stack.api_port, "tokens.history")["result"]["entries"])
    assert entries[0]["success"] is False and entries[0]["text"] == "**launch.system:snes"
    inbox = rpc(stack.api_port, "inbox")["result"]["messages"]
    assert any(m["category"] == "core" and m["severity"] == 2 for m in inbox)
    stack.core = stack.start_core()
    stack.sim.send("remove")
    wait_until(lambda: not rpc(stack.api_port, "tokens")["result"]["active"])
    # Straight away, whatever the backoff is at: the tap itself makes the forwarder try the core again.
    stack.sim.send(f"place {FIXTURES / 'smw-ntag213.nfc'}")
    assert stack.core_request("run", timeout=15)["params"]["text"] == "@SNES/Super Mario World (mapped)"
    newest = lambda: rpc(stack.api_port, "tokens.history")["result"]["entries"][0]  # noqa: E731
    assert wait_until(lambda: newest()["text"] == "@SNES/Super Mario World (mapped)" and newest()["success"])


async def notifications_after(port, trigger, done, settle=0.3, timeout=10.0):
    """Connect a WebSocket client to tagd's API, run ``trigger`` (blocking), and collect notifications until
    ``done(collected)``, then ``settle`` seconds more (to catch a duplicate)."""
    import aiohttp

    got: list[dict] = []
    async with aiohttp.ClientSession() as session, session.ws_connect(f"ws://127.0.0.1:{port}/api") as ws:
        await asyncio.to_thread(trigger)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not done(got):
            msg = await ws.receive(timeout=max(0.01, deadline - loop.time()))
            got.append(json.loads(msg.data))
        with contextlib.suppress(asyncio.TimeoutError):
            while True:
                got.append(json.loads((await ws.receive(timeout=settle)).data))
    return got


def test_cores_media_notifications_reach_tagds_clients_and_each_tap_is_announced_once(stack):
    tap = lambda: stack.sim.send(f"place {FIXTURES / 'smw-ntag213.nfc'}")  # noqa: E731
    got = asyncio.run(notifications_after(stack.api_port, tap, lambda g: any(m["method"] == "media.started" for m in g)))
    started = next(m for m in got if m["method"] == "media.started")
    assert started["params"]["mediaName"] == "@SNES/Super Mario World (mapped)"
    assert set(started["params"]) == {"systemId", "systemName", "mediaPath", "mediaName"}
    assert [m["method"] for m in got].count("tokens.added") == 1  # tagd's own; Core's echo is not relayed


def test_api_stop_reaches_the_core_and_its_media_stopped_comes_back(stack):
    stop = lambda: rpc(stack.api_port, "stop")  # noqa: E731
    got = asyncio.run(notifications_after(stack.api_port, stop, lambda g: any(m["method"] == "media.stopped" for m in g)))
    assert stack.core_request("stop")["method"] == "stop"
    stopped = next(m for m in got if m["method"] == "media.stopped")
    assert {"launcherId", "elapsed"} <= set(stopped["params"])


def post_raw(port, body: bytes):
    req = urllib.request.Request(f"http://127.0.0.1:{port}/api", body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return r.status, r.read()


def test_the_api_error_cases_of_spec_5_through_tagd_run(stack):
    port = stack.api_port
    status, body = post_raw(port, b"{not json")
    assert json.loads(body) == {"jsonrpc": "2.0", "id": None, "error": {"code": -32700, "message": "Parse error"}}
    err = json.loads(post_raw(port, json.dumps({"jsonrpc": "1.0", "id": 7, "method": "version"}).encode())[1])
    assert err["id"] == 7 and err["error"]["code"] == -32600
    assert rpc(port, "VERSION")["result"]["platform"] == "tagd"  # method names are case-insensitive
    err = rpc(port, "run", {})["error"]
    assert err["code"] == 1 and "invalid params" in err["message"]
    err = rpc(port, "boom")["error"]  # not tagd's: proxied to the core, whose error comes back unchanged
    assert err == {"code": 1, "message": "no such system"}
    status, body = post_raw(port, json.dumps({"jsonrpc": "2.0", "method": "health"}).encode())
    assert status in (200, 204) and body == b""  # a notification gets no reply
    assert rpc(port, "health")["result"] == {"status": "ok"}


def test_without_a_core_an_unknown_method_is_32601(tmp_path):
    s = Stack(tmp_path, core=False)
    try:
        err = rpc(s.api_port, "media.search", {"query": "mario"})["error"]
        assert err["code"] == -32601
    finally:
        s.close()


def test_readers_write_through_the_api_and_the_written_tag_does_not_launch(stack):
    stack.sim.send(f"place {FIXTURES / 'factory-ntag213.nfc'}")
    time.sleep(0.5)
    resp = rpc(stack.api_port, "readers.write", {"text": "**launch.system:gba"})
    assert resp["result"] == {}
    assert rpc(stack.api_port, "tokens")["result"]["active"][0]["text"] == "**launch.system:gba"  # read back
    stack.sim.send("remove")
    time.sleep(0.3)
    stack.sim.send("stats")
    history = rpc(stack.api_port, "tokens.history")["result"]["entries"]
    assert all(e["text"] != "**launch.system:gba" for e in history)
    runs = [json.loads(x) for x in list(stack.core.lines.queue)]
    assert all(r["params"].get("text") != "**launch.system:gba" for r in runs if r["method"] == "run")


def test_oversize_text_for_the_tag_is_a_clear_api_error(stack):
    stack.sim.send(f"place {FIXTURES / 'smw-ntag213.nfc'}")
    time.sleep(0.5)
    err = rpc(stack.api_port, "readers.write", {"text": "x" * 400})["error"]
    assert err["code"] == 1 and "holds" in err["message"]
    assert rpc(stack.api_port, "health")["result"] == {"status": "ok"}


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_shuts_down_cleanly_and_sd_notify_says_ready_and_stopping(tmp_path, sig):
    sock_path = str(tmp_path / "notify.sock")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    srv.bind(sock_path)
    srv.settimeout(10)
    s = Stack(tmp_path, core=False)
    try:
        s.daemon.stop()
        env = dict(os.environ, NOTIFY_SOCKET=sock_path)
        s.daemon = s.start_daemon(env=env)
        assert b"READY=1" in srv.recv(4096)
        s.daemon.p.send_signal(signal.SIGHUP)  # systemctl reload: RELOADING=1 (with the clock systemd wants), READY=1
        reloading = srv.recv(4096)
        assert reloading.startswith(b"RELOADING=1\nMONOTONIC_USEC=") and b"READY=1" in srv.recv(4096)
        assert s.daemon.stop(sig) == 0
        assert b"STOPPING=1" in srv.recv(4096)
    finally:
        s.close()
        srv.close()


def test_kill_9_during_mapping_writes_keeps_every_acknowledged_mapping(tmp_path):
    s = Stack(tmp_path, core=False)
    acked: list[str] = []
    stop = threading.Event()

    def writer(n):
        i = 0
        while not stop.is_set():
            pattern = f"w{n}-{i}"
            try:
                r = rpc(s.api_port, "mappings.new", {"type": "text", "match": "exact", "pattern": pattern,
                                                     "override": "o"}, timeout=5)
            except OSError:
                return  # the daemon died under us: this one was never acknowledged
            if r.get("result") == {}:
                acked.append(pattern)
            i += 1

    try:
        threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        wait_until(lambda: len(acked) >= 40, timeout=20)
        s.daemon.stop(signal.SIGKILL)  # while the four writers are mid-request
        stop.set()
        for t in threads:
            t.join(10)
        s.daemon = s.start_daemon()
        patterns = {m["pattern"] for m in rpc(s.api_port, "mappings")["result"]["mappings"]}
        assert set(acked) <= patterns
    finally:
        stop.set()
        s.close()


@pytest.mark.parametrize("text, key, reason", [
    ('[readers.scan]\nmode = "sideways"\n', "readers.scan.mode", "'tap' or 'hold'"),
    ('[[mappings.entry]]\nmatch_pattern = "ok"\nzapscript = "x"\n[[mappings.entry]]\nmatch_pattern = "/a(b/"\n'
     'zapscript = "y"\n', "mappings.entry[1].match_pattern", "invalid regex: missing ): a(b"),
])
def test_bad_config_exits_2_naming_file_key_and_reason(tmp_path, text, key, reason):
    cfg = tmp_path / "bad.toml"
    cfg.write_text(text)
    r = subprocess.run([sys.executable, "-m", "tagd", "run", "--config", str(cfg)], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 2, r.stderr
    assert f"{cfg}: {key}: " in r.stderr and reason in r.stderr and "Traceback" not in r.stderr


def test_sighup_reloads_the_config_and_a_broken_file_changes_nothing(stack):
    text = stack.config.read_text()
    assert "exit_delay = 0.0\n" in text
    stack.config.write_text(text.replace("(mapped)", "(reloaded)").replace("exit_delay = 0.0\n", "exit_delay = 0.25\n"))
    stack.daemon.p.send_signal(signal.SIGHUP)
    wait_until(lambda: rpc(stack.api_port, "settings")["result"]["readersScanExitDelay"] == 0.25, timeout=10)
    stack.sim.send(f"place {FIXTURES / 'smw-ntag213.nfc'}")
    assert stack.core_request("run")["params"]["text"] == "@SNES/Super Mario World (reloaded)"
    stack.sim.send("remove")
    stack.config.write_text(text + '\n[readers.scan]\nmode = "sometimes"\n')  # broken: the table twice
    stack.daemon.p.send_signal(signal.SIGHUP)
    wait_until(lambda: any(m["severity"] == 2 and m["category"] == "config"
                           for m in rpc(stack.api_port, "inbox")["result"]["messages"]), timeout=10)
    assert stack.daemon.p.poll() is None
    stack.sim.send(f"place {FIXTURES / 'snes-ntag215.nfc'}")  # still reading, with the reloaded mappings
    assert stack.core_request("run")["params"]["text"] == "**launch.system:snes"
