"""Two rooms end to end: a satellite `tagd run` with an emulated PN532, a hub `tagd run` with an `mqtt` reader and a
Zaparoo-style core, through a real mosquitto (with persistence) started by the test."""

from __future__ import annotations

import json
import pathlib
import signal
import sys
import time

import pytest
from conftest import FIXTURES, need
from mqtt_broker import MOSQUITTO, Broker, free_port
from procs import Proc, emulated_pn532, fake_core, rpc, wait_until

pytestmark = pytest.mark.mosquitto
SNES, SMW = FIXTURES / "snes-ntag215.nfc", FIXTURES / "smw-ntag213.nfc"


class Rooms:
    def __init__(self, tmp: pathlib.Path, mode: str = "tap", exit_delay: float = 0.0) -> None:
        need(MOSQUITTO is not None, "mosquitto is not installed (apt-get install mosquitto)")
        self.tmp = tmp
        self.broker = Broker(tmp, free_port(), persistence=True)
        self.broker.start()
        self.core_port, self.hub_port, self.sat_port = free_port(), free_port(), free_port()
        self.core = fake_core(self.core_port)
        self.sim = emulated_pn532(tmp / "pn532")
        (tmp / "sat.toml").write_text(f"""
database = "{tmp / 'sat.db'}"
[readers]
auto_detect = false
[[readers.connect]]
driver = "pn532uart"
path = "{tmp / 'pn532'}"
[api]
listen = "127.0.0.1:{self.sat_port}"
[[core]]
type = "mqtt"
host = "127.0.0.1"
port = {self.broker.port}
node = "kitchen"
""")
        (tmp / "hub.toml").write_text(f"""
database = "{tmp / 'hub.db'}"
[readers]
auto_detect = false
[[readers.connect]]
driver = "mqtt"
path = "127.0.0.1:{self.broker.port}/tagd/+"
[readers.scan]
mode = "{mode}"
exit_delay = {exit_delay}
[api]
listen = "127.0.0.1:{self.hub_port}"
[[core]]
type = "zaparoo"
url = "ws://127.0.0.1:{self.core_port}/api/v0.1"
[[mappings.entry]]
token_key = ""
match_pattern = "0416c6c2d73881"
zapscript = "@SNES/Super Mario World (kitchen)"
""")
        self.sat = self.start("sat")
        self.hub = self.start("hub")
        self.sat_reader = wait_until(lambda: rpc(self.sat_port, "readers")["result"]["readers"], 10)[0]["readerId"]
        wait_until(lambda: self.sat_reader in self.hub_readers(), 10)

    def start(self, which: str) -> Proc:
        port = self.sat_port if which == "sat" else self.hub_port
        proc = Proc([sys.executable, "-m", "tagd", "run", "--config", str(self.tmp / f"{which}.toml")])
        wait_until(lambda: self._up(port), 15)
        return proc

    @staticmethod
    def _up(port: int) -> bool:
        try:
            return "result" in rpc(port, "version", timeout=1)
        except OSError:
            return False

    def hub_readers(self) -> list[str]:
        return [r["readerId"] for r in rpc(self.hub_port, "readers")["result"]["readers"]]

    def runs(self) -> list[dict]:
        return [json.loads(line) for line in list(self.core.lines.queue) if json.loads(line)["method"] == "run"]

    def wait_runs(self, n: int, timeout: float = 15.0) -> list[dict]:
        return wait_until(lambda: (r := self.runs()) and len(r) >= n and r, timeout)

    def close(self) -> None:
        for p in (self.hub, self.sat, self.sim, self.core):
            p.stop()
        self.broker.stop()


@pytest.fixture
def rooms(tmp_path):
    r = Rooms(tmp_path)
    yield r
    r.close()


def test_a_tap_in_the_satellite_is_launched_by_the_hub_with_the_satellites_reader_id(rooms: Rooms) -> None:
    rooms.sim.send(f"place {SMW}")
    [run] = rooms.wait_runs(1)
    assert run["params"]["text"] == "@SNES/Super Mario World (kitchen)"  # the hub's mapping applied
    active = wait_until(lambda: rpc(rooms.hub_port, "tokens")["result"]["active"], 5)
    assert active[0]["readerId"] == rooms.sat_reader and active[0]["uid"] == "0416c6c2d73881"
    history = rpc(rooms.hub_port, "tokens.history")["result"]["entries"]
    assert history[0]["success"] is True


def test_hold_mode_on_the_hub_stops_after_the_satellites_tag_is_removed(tmp_path) -> None:
    r = Rooms(tmp_path, mode="hold", exit_delay=0.5)
    try:
        r.sim.send(f"place {SNES}")
        r.wait_runs(1)
        r.sim.send("remove")
        r.core.wait_line(lambda line: json.loads(line)["method"] == "stop", timeout=10)
    finally:
        r.close()


def test_readers_write_through_the_hub_writes_the_satellites_tag(rooms: Rooms) -> None:
    rooms.sim.send(f"place {SNES}")
    rooms.wait_runs(1)
    answer = rpc(rooms.hub_port, "readers.write", {"text": "**launch.random:nes", "readerId": rooms.sat_reader})
    assert answer.get("result") == {}, answer
    # the satellite read it back from the emulated tag: its own active token is the new text
    sat_active = rpc(rooms.sat_port, "tokens")["result"]["active"]
    assert sat_active[0]["text"] == "**launch.random:nes"
    hub_active = wait_until(lambda: [t for t in rpc(rooms.hub_port, "tokens")["result"]["active"]
                                     if t["text"] == "**launch.random:nes"], 5)
    assert hub_active[0]["readerId"] == rooms.sat_reader
    time.sleep(0.5)
    assert len(rooms.runs()) == 1  # the tag just written is not launched


def test_every_tap_is_launched_once_across_a_hub_kill_and_a_broker_restart(rooms: Rooms) -> None:
    taps = [SMW, SNES, SMW, SNES]
    rooms.sim.send(f"place {taps[0]}")
    rooms.wait_runs(1)
    rooms.hub.stop(signal.SIGKILL)  # kill -9: no goodbye, its session stays at the broker
    rooms.sim.send("remove")
    rooms.sim.send(f"place {taps[1]}")
    time.sleep(1.0)
    rooms.hub = rooms.start("hub")
    rooms.wait_runs(2)
    rooms.broker.stop()  # the broker restarts mid-stream; it keeps sessions and queued messages on disk
    rooms.sim.send("remove")
    rooms.sim.send(f"place {taps[2]}")
    time.sleep(1.0)
    rooms.broker.start()
    rooms.wait_runs(3, timeout=30)
    rooms.sim.send("remove")
    rooms.sim.send(f"place {taps[3]}")
    runs = rooms.wait_runs(4, timeout=20)
    time.sleep(1.0)
    texts = [r["params"]["text"] for r in rooms.runs()]
    assert texts == ["@SNES/Super Mario World (kitchen)", "**launch.system:snes",
                     "@SNES/Super Mario World (kitchen)", "**launch.system:snes"], texts
    assert len(runs) == 4


def test_a_satellite_killed_is_marked_offline_by_its_last_will(rooms: Rooms) -> None:
    rooms.sat.stop(signal.SIGKILL)  # no goodbye: the broker publishes its Last Will, the retained "offline"
    wait_until(lambda: rooms.sat_reader not in rooms.hub_readers(), 10)
