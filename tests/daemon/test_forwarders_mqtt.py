"""The mqtt forwarder against a real mosquitto broker started by the test, checked by a paho subscriber."""

from __future__ import annotations

import asyncio
import queue
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Iterator

import paho.mqtt.client as mqtt
import pytest
from conftest import need

from tagd.daemon.config import MqttCore
from tagd.daemon.forwarders import ForwardError, build_forwarders
from tagd.daemon.forwarders.mqtt import MqttForwarder
from tagd.token import Token

pytestmark = pytest.mark.mosquitto
MOSQUITTO = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Broker:
    def __init__(self, tmp: Path, port: int) -> None:
        self.port = port
        self.conf = tmp / f"mosquitto-{port}.conf"
        self.conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen([MOSQUITTO, "-c", str(self.conf)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("mosquitto did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(5)
            self.proc = None


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    need(MOSQUITTO is not None, "mosquitto is not installed (apt-get install mosquitto)")
    b = Broker(tmp_path, free_port())
    b.start()
    yield b
    b.stop()


class Subscriber:
    def __init__(self, port: int, topic: str) -> None:
        self.messages: queue.Queue[bytes] = queue.Queue()
        self.ready = queue.Queue[bool]()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe(topic, qos=1)
        self.client.on_subscribe = lambda c, u, mid, rcs, p: self.ready.put(True)
        self.client.on_message = lambda c, u, msg: self.messages.put(msg.payload)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        self.ready.get(timeout=5)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def forwarder(port: int, **kw) -> MqttForwarder:
    [fw] = build_forwarders([MqttCore(type="mqtt", host="127.0.0.1", port=port, topic="zaparoo/scan", **kw)])
    assert isinstance(fw, MqttForwarder)
    return fw


async def wait_connected(fw: MqttForwarder, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not fw.connected:
        assert time.monotonic() < deadline, f"not connected: {fw.last_error}"
        await asyncio.sleep(0.05)


@pytest.mark.parametrize("qos", [0, 1])
async def test_launch_publishes_the_token_text_as_payload(broker: Broker, qos: int) -> None:
    sub = Subscriber(broker.port, "zaparoo/scan")
    fw = forwarder(broker.port, qos=qos)
    await fw.start()
    try:
        await wait_connected(fw)
        text = "**launch.system:snes||**input.keyboard:{enter} ünïcode"
        await fw.launch(Token(uid="04aa", text=text))
        assert sub.messages.get(timeout=5) == text.encode("utf-8")
    finally:
        await fw.close()
        sub.close()


async def test_broker_down_fails_fast_and_reconnects_when_it_returns(tmp_path: Path) -> None:
    need(MOSQUITTO is not None, "mosquitto is not installed (apt-get install mosquitto)")
    broker = Broker(tmp_path, free_port())
    fw = forwarder(broker.port)
    await fw.start()
    try:
        t0 = time.monotonic()
        with pytest.raises(ForwardError, match="not connected"):
            await fw.launch(Token(text="x"))
        assert time.monotonic() - t0 < 0.5
        broker.start()
        await wait_connected(fw, timeout=15)
        sub = Subscriber(broker.port, "zaparoo/scan")
        await fw.launch(Token(text="back"))
        assert sub.messages.get(timeout=5) == b"back"
        sub.close()
    finally:
        await fw.close()
        broker.stop()
