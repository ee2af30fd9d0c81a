"""The mqtt reader (Core mode and hub mode) and a satellite node, through a real mosquitto started by the test."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time

import paho.mqtt.client as mqtt
import pytest
from conftest import Events, until
from mqtt_broker import Broker, broker  # noqa: F401 (fixture)

from tagd.daemon.fabric import topics as fab
from tagd.daemon.fabric.node import FabricNode, NodeSettings
from tagd.readers.base import (Capability, ReaderAdded, ReaderInfo, ReaderLost, ReaderWorker, TagGone, TagSeen,
                               WriteCancelled, WriteError, WriteRequest)
from tagd.readers.mqtt import MqttReader
from tagd.token import Token

pytestmark = pytest.mark.mosquitto
SAT_INFO = ReaderInfo("pn532uart", "/dev/ttyUSB0", "1-2.3", "PN532 v1.6", Capability.READ | Capability.WRITE |
                      Capability.REMOVABLE)


def publish(port: int, topic: str, payload: bytes, qos: int = 1) -> None:
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    c.connect("127.0.0.1", port)
    c.loop_start()
    c.publish(topic, payload, qos=qos).wait_for_publish(5)
    c.disconnect()
    c.loop_stop()


def start_reader(port: int, topic: str, **options) -> tuple[ReaderWorker, Events]:
    events = Events()
    worker = ReaderWorker(MqttReader(f"127.0.0.1:{port}/{topic}", {"client_id": f"hub-{time.monotonic_ns()}",
                                                                     **options}), events.put).start()
    events.wait(ReaderAdded)
    return worker, events


def test_core_mode_a_plain_payload_is_one_scan_of_zapscript(broker: Broker) -> None:
    worker, events = start_reader(broker.port, "zaparoo/tokens")
    try:
        publish(broker.port, "zaparoo/tokens", "**launch.system:snes".encode())
        seen = events.wait(TagSeen)
        assert (seen.token.type, seen.token.text) == ("mqtt", "**launch.system:snes")
        assert seen.reader_id == worker.info.reader_id and worker.info.reader_id.startswith("mqtt-")
    finally:
        worker.stop()


def test_core_mode_a_token_json_payload_is_that_token(broker: Broker) -> None:
    worker, events = start_reader(broker.port, "zaparoo/tokens")
    try:
        publish(broker.port, "zaparoo/tokens", json.dumps({"uid": "04aabbcc", "text": "@SNES/Zelda",
                                                           "type": "NTAG"}).encode())
        seen = events.wait(TagSeen)
        assert (seen.token.uid, seen.token.text, seen.token.type) == ("04aabbcc", "@SNES/Zelda", "NTAG")
    finally:
        worker.stop()


class Satellite:
    """A FabricNode (the satellite half of tagd) on its own loop thread, fed reader events by the test."""

    def __init__(self, port: int, node: str = "kitchen", write=None, home_assistant: bool = True) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.node = FabricNode(NodeSettings(broker=f"127.0.0.1:{port}", node=node, home_assistant=home_assistant),
                               "0.2.0", write)
        self.call(self.node.start())
        deadline = time.monotonic() + 5
        while not self.node.connected:
            assert time.monotonic() < deadline, "satellite did not connect"
            time.sleep(0.02)

    def call(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(10)

    def event(self, ev) -> None:
        async def go():
            self.node.on_reader_event(ev)
        self.call(go())

    def close(self) -> None:
        self.call(self.node.close())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


def test_a_satellite_reader_appears_on_the_hub_with_its_own_reader_id(broker: Broker) -> None:
    worker, events = start_reader(broker.port, "tagd/+")
    sat = Satellite(broker.port)
    try:
        sat.event(ReaderAdded(SAT_INFO))
        added = events.wait(ReaderAdded)
        assert added.info.reader_id == SAT_INFO.reader_id and added.info.remote == "kitchen"
        assert Capability.WRITE in added.info.capabilities and added.info.driver == "pn532uart"
        assert worker.serves(SAT_INFO.reader_id) is added.info
        sat.event(TagSeen(SAT_INFO.reader_id, Token(type="NTAG", uid="04a1b2", text="@SNES/Mario")))
        seen = events.wait(TagSeen)
        assert (seen.reader_id, seen.token.uid, seen.token.text, seen.launch) == (
            SAT_INFO.reader_id, "04a1b2", "@SNES/Mario", True)
        sat.event(TagGone(SAT_INFO.reader_id))
        assert events.wait(TagGone).reader_id == SAT_INFO.reader_id
        sat.event(ReaderLost(SAT_INFO.reader_id, "unplugged"))
        assert events.wait(ReaderLost).reader_id == SAT_INFO.reader_id
        assert worker.serves(SAT_INFO.reader_id) is None
    finally:
        sat.close()
        worker.stop()


def test_a_redelivered_event_is_seen_once(broker: Broker) -> None:
    worker, events = start_reader(broker.port, "tagd/+")
    try:
        payload = fab.event_payload("pn532-aaaaaaaa", "tag", Token(uid="01", text="x"), event_id="same-id")
        publish(broker.port, "tagd/den/events", payload)
        publish(broker.port, "tagd/den/events", payload)
        publish(broker.port, "tagd/den/events", fab.event_payload("pn532-aaaaaaaa", "removed", event_id="next"))
        assert events.wait(TagSeen).token.text == "x"
        events.wait(TagGone)
        assert not any(isinstance(e, TagSeen) for e in list(events.q.queue))
    finally:
        worker.stop()


def test_a_tap_older_than_max_age_is_recorded_not_launched(broker: Broker) -> None:
    worker, events = start_reader(broker.port, "tagd/+", max_age=5)
    try:
        publish(broker.port, "tagd/den/events", fab.event_payload("pn532-aaaaaaaa", "tag", Token(uid="01", text="x"),
                                                                  now=time.time() - 60))
        seen = events.wait(TagSeen)
        assert seen.launch is False and seen.detail["age"] >= 60
    finally:
        worker.stop()


def test_a_satellite_going_offline_takes_its_readers_with_it(broker: Broker) -> None:
    worker, events = start_reader(broker.port, "tagd/+")
    sat = Satellite(broker.port, node="attic")
    try:
        sat.event(ReaderAdded(SAT_INFO))
        events.wait(ReaderAdded)
        sat.close()  # publishes the retained "offline" (the Last Will says the same when it dies)
        lost = events.wait(ReaderLost)
        assert lost.reader_id == SAT_INFO.reader_id and "offline" in lost.reason
    finally:
        worker.stop()


@contextlib.contextmanager
def hub_and_satellite(port: int, write=None):
    """A hub reader and a satellite whose reader SAT_INFO the hub already shows; both closed afterwards."""
    worker, events = start_reader(port, "tagd/+")
    sat = Satellite(port, write=write)
    try:
        sat.event(ReaderAdded(SAT_INFO))
        events.wait(ReaderAdded)
        yield worker, events, sat
    finally:
        sat.close()
        worker.stop()


class Writes:
    """The satellite's write path, recording what it was asked and answering a written tag."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, str]] = []

    async def __call__(self, rid, text, timeout, cancel):
        self.asked.append((rid, text))
        return Token(type="NTAG", uid="04cafe", text=text)


class WaitsForCancel:
    """The satellite's write path waiting for a tag until it is cancelled."""

    def __init__(self) -> None:
        self.started, self.cancelled = threading.Event(), threading.Event()

    async def __call__(self, rid, text, timeout, cancel):
        self.started.set()
        while not cancel.is_set():
            await asyncio.sleep(0.01)
        self.cancelled.set()
        raise WriteCancelled("write cancelled")


def test_a_write_through_the_hub_is_done_by_the_satellite(broker: Broker) -> None:
    writes = Writes()
    with hub_and_satellite(broker.port, writes) as (worker, events, sat):
        seen = worker.submit_write(WriteRequest("**launch.random:snes", reader_id=SAT_INFO.reader_id,
                                                timeout=5)).result(10)
    assert writes.asked == [(SAT_INFO.reader_id, "**launch.random:snes")]
    assert seen.written and seen.reader_id == SAT_INFO.reader_id and seen.token.uid == "04cafe"


def test_a_satellites_write_error_reaches_the_hub_caller(broker: Broker) -> None:
    async def write(rid, text, timeout, cancel):
        raise WriteError("text of 900 bytes does not fit: the tag holds 137")

    with hub_and_satellite(broker.port, write) as (worker, events, sat):
        with pytest.raises(WriteError, match="kitchen: text of 900 bytes does not fit"):
            worker.submit_write(WriteRequest("x" * 900, reader_id=SAT_INFO.reader_id, timeout=5)).result(10)


def test_cancelling_a_write_on_the_hub_cancels_it_on_the_satellite(broker: Broker) -> None:
    writer = WaitsForCancel()
    with hub_and_satellite(broker.port, writer) as (worker, events, sat):
        request = WriteRequest("x", reader_id=SAT_INFO.reader_id, timeout=20)
        fut = worker.submit_write(request)
        assert writer.started.wait(5)
        request.cancel.set()
        with pytest.raises(WriteCancelled):
            fut.result(10)
        assert writer.cancelled.wait(5)


def _retained(port: int, pattern: str, until=lambda got: False, wait: float = 5.0) -> dict[str, bytes]:
    """The retained messages under ``pattern``: until ``until(got)`` holds, or 1 s after the subscription is
    acknowledged when nothing is expected (retained messages arrive right after the SUBACK)."""
    got: dict[str, bytes] = {}
    acked = threading.Event()
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    c.on_message = lambda cl, u, m: got.__setitem__(m.topic, bytes(m.payload))
    c.on_subscribe = lambda *a: acked.set()
    c.connect("127.0.0.1", port)
    c.subscribe(pattern, qos=1)
    c.loop_start()
    assert acked.wait(5)
    deadline = time.monotonic() + wait
    while not until(got) and time.monotonic() < deadline:
        time.sleep(0.02)
    c.disconnect()
    c.loop_stop()
    return got


@pytest.mark.parametrize("enabled", [True, False])
def test_home_assistant_discovery_is_published_retained_and_can_be_switched_off(broker: Broker, enabled: bool) -> None:
    sat = Satellite(broker.port, node="den", home_assistant=enabled)
    try:
        sat.event(ReaderAdded(SAT_INFO))
        scanner_topic = f"homeassistant/tag/tagd_den_{SAT_INFO.reader_id}/config"
        got = _retained(broker.port, "homeassistant/#", (lambda g: scanner_topic in g) if enabled else (lambda g: False),
                        wait=5.0 if enabled else 1.0)
    finally:
        sat.close()
    scanner = f"homeassistant/tag/tagd_den_{SAT_INFO.reader_id}/config"
    if enabled:
        assert json.loads(got[scanner])["topic"] == f"tagd/den/ha/{SAT_INFO.reader_id}"
        assert "homeassistant/sensor/tagd_den_last_token/config" in got
    else:
        assert got == {}


def test_a_tap_reaches_home_assistants_tag_topic(broker: Broker) -> None:
    sat = Satellite(broker.port, node="den")
    got: list[bytes] = []
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    c.on_message = lambda cl, u, m: got.append(bytes(m.payload))
    c.connect("127.0.0.1", broker.port)
    acked = threading.Event()
    c.on_subscribe = lambda *a: acked.set()
    c.subscribe(f"tagd/den/ha/{SAT_INFO.reader_id}", qos=1)
    c.loop_start()
    try:
        assert acked.wait(5)
        sat.event(ReaderAdded(SAT_INFO))
        sat.event(TagSeen(SAT_INFO.reader_id, Token(uid="04a1b2", text="x")))
        deadline = time.monotonic() + 5
        while not got and time.monotonic() < deadline:
            time.sleep(0.02)
        assert json.loads(got[0])["uid"] == "04a1b2"  # what HA's value_template renders as the tag id
    finally:
        c.disconnect()
        c.loop_stop()
        sat.close()


def test_home_assistants_now_playing_and_last_token_sensors_follow_the_node(broker: Broker) -> None:
    sat = Satellite(broker.port, node="den")
    try:
        sat.event(ReaderAdded(SAT_INFO))
        sat.event(TagSeen(SAT_INFO.reader_id, Token(uid="04a1b2", text="@SNES/Chrono Trigger")))

        async def started():
            sat.node.on_notification("media.started", {"systemId": "SNES", "mediaName": "Chrono Trigger"})
        sat.call(started())
        got = _retained(broker.port, "tagd/den/sensor", lambda g: b"Chrono" in g.get("tagd/den/sensor", b""))
        state = json.loads(got["tagd/den/sensor"])
        assert state == {"last_token": "04a1b2", "now_playing": "Chrono Trigger"}
    finally:
        sat.close()


def test_hostile_messages_to_a_satellite_do_not_stop_its_connection(broker: Broker) -> None:
    writes = Writes()
    with hub_and_satellite(broker.port, writes) as (worker, events, sat):
        for payload in (b'{"readerId": []}', b"[" * 100_000, b"\xff", b"null"):
            publish(broker.port, "tagd/kitchen/write/cancel", payload)
        for payload in (b"[" * 100_000, b'{"readerId": "x", "text": "y", "timeout": 1e400}',
                        b'{"readerId": "x", "text": "y", "timeout": -1}', b'{"readerId": [], "text": 5}'):
            publish(broker.port, "tagd/kitchen/write", payload)
        # still connected and serving: a real write through the hub works afterwards
        seen = worker.submit_write(WriteRequest("after", reader_id=SAT_INFO.reader_id, timeout=5)).result(10)
    assert seen.token.text == "after" and writes.asked == [(SAT_INFO.reader_id, "after")]


def test_two_nodes_with_the_same_reader_id_are_told_apart(broker: Broker) -> None:
    worker, events = start_reader(broker.port, "tagd/+")
    a, b = Satellite(broker.port, node="left"), Satellite(broker.port, node="right")
    try:
        a.event(ReaderAdded(SAT_INFO))
        first = events.wait(ReaderAdded).info.reader_id
        b.event(ReaderAdded(SAT_INFO))  # an identical board, the reader on the same USB port: the same readerId
        second = events.wait(ReaderAdded).info.reader_id
        assert first == SAT_INFO.reader_id and second == f"{SAT_INFO.reader_id}@right"
        b.event(TagSeen(SAT_INFO.reader_id, Token(uid="02", text="right one")))
        seen = events.wait(TagSeen)
        assert (seen.reader_id, seen.token.text) == (second, "right one")
    finally:
        a.close()
        b.close()
        worker.stop()


def test_a_second_write_to_a_busy_satellite_reader_is_refused_and_the_first_stays_cancellable(broker) -> None:
    writer = WaitsForCancel()
    with hub_and_satellite(broker.port, writer) as (worker, events, sat):
        first = WriteRequest("one", reader_id=SAT_INFO.reader_id, timeout=20)
        fut = worker.submit_write(first)
        assert writer.started.wait(5)
        other = ReaderWorker(MqttReader(f"127.0.0.1:{broker.port}/tagd/+", {"client_id": "second-hub"}), Events().put)
        other.start()
        try:
            until(lambda: other.serves(SAT_INFO.reader_id) is not None, 5)
            with pytest.raises(WriteError, match="already waiting"):
                other.submit_write(WriteRequest("two", reader_id=SAT_INFO.reader_id, timeout=5)).result(10)
        finally:
            other.stop()
        first.cancel.set()
        with pytest.raises(WriteCancelled):
            fut.result(10)
        assert writer.cancelled.wait(5)
