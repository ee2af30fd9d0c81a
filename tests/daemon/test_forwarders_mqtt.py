"""The mqtt forwarder against a real mosquitto broker started by the test, checked by a paho subscriber."""

from __future__ import annotations

import asyncio
import queue
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from conftest import need
from mqtt_broker import MOSQUITTO, Broker, broker, free_port  # noqa: F401 (broker is a fixture)

from tagd.daemon.config import MqttCore
from tagd.daemon.forwarders import ForwardError, build_forwarders
from tagd.daemon.forwarders.mqtt import MqttForwarder
from tagd.token import Token

pytestmark = pytest.mark.mosquitto
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
