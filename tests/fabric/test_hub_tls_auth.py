"""The mqtt reader against a mosquitto with TLS (mqtts://, ca_file) and with a password file (username, password)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from conftest import Events, need
from mqtt_broker import MOSQUITTO, Broker, free_port

import paho.mqtt.client as mqtt
from tagd.readers.base import ReaderAdded, ReaderError, ReaderWorker, TagSeen
from tagd.readers.mqtt import MqttReader

pytestmark = pytest.mark.mosquitto


@pytest.fixture
def tls_broker(tmp_path: Path, certificate):
    need(MOSQUITTO is not None, "mosquitto is not installed (apt-get install mosquitto)")
    b = Broker(tmp_path, free_port(), tls=certificate)
    b.start()
    yield b
    b.stop()


@pytest.fixture
def auth_broker(tmp_path: Path):
    need(MOSQUITTO is not None, "mosquitto is not installed (apt-get install mosquitto)")
    b = Broker(tmp_path, free_port(), users={"hub": "s3cret-pass"})
    b.start()
    yield b
    b.stop()


def _scan_through(reader: MqttReader, publish) -> TagSeen:
    events = Events()
    worker = ReaderWorker(reader, events.put).start()
    try:
        events.wait(ReaderAdded)
        publish()
        return events.wait(TagSeen)
    finally:
        worker.stop()


def test_mqtts_with_the_brokers_ca_file_reads_scans(tls_broker: Broker, certificate) -> None:
    cert, _ = certificate
    reader = MqttReader(f"mqtts://127.0.0.1:{tls_broker.port}/zaparoo/tokens",
                        {"ca_file": str(cert), "client_id": f"t-{time.monotonic_ns()}"})

    def publish() -> None:
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        c.tls_set(ca_certs=str(cert))
        c.connect("127.0.0.1", tls_broker.port)
        c.loop_start()
        c.publish("zaparoo/tokens", b"**launch.system:snes", qos=1).wait_for_publish(5)
        c.disconnect()
        c.loop_stop()

    assert _scan_through(reader, publish).token.text == "**launch.system:snes"


def test_mqtts_without_the_ca_refuses_a_self_signed_broker(tls_broker: Broker) -> None:
    reader = MqttReader(f"mqtts://127.0.0.1:{tls_broker.port}/t", {"client_id": f"t-{time.monotonic_ns()}"})
    with pytest.raises(ReaderError, match="certificate verify failed"):
        reader.open()


def test_username_and_password_are_sent_and_a_wrong_one_is_named_not_leaked(auth_broker: Broker) -> None:
    good = MqttReader(f"127.0.0.1:{auth_broker.port}/zaparoo/tokens",
                      {"username": "hub", "password": "s3cret-pass", "client_id": f"t-{time.monotonic_ns()}"})

    def publish() -> None:
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        c.username_pw_set("hub", "s3cret-pass")
        c.connect("127.0.0.1", auth_broker.port)
        c.loop_start()
        c.publish("zaparoo/tokens", json.dumps({"uid": "0411", "text": "x"}).encode(), qos=1).wait_for_publish(5)
        c.disconnect()
        c.loop_stop()

    assert _scan_through(good, publish).token.uid == "0411"
    bad = MqttReader(f"127.0.0.1:{auth_broker.port}/t", {"username": "hub", "password": "wrong-pass-9",
                                                         "client_id": f"t-{time.monotonic_ns()}"})
    with pytest.raises(ReaderError, match="refused the connection") as info:
        bad.open()
    assert "wrong-pass-9" not in str(info.value)
