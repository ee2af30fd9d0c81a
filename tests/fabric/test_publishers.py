"""Zaparoo Core's ``[[service.publishers.mqtt]]``: tagd's notifications on an MQTT topic, in Core's shape and with
Core's filter rule, through a real mosquitto started by the test."""

from __future__ import annotations

import asyncio
import json
import queue

import paho.mqtt.client as mqtt
import pytest
from mqtt_broker import Broker, broker  # noqa: F401 (fixture)

from tagd.daemon.config import Config, ConfigError, parse_config
from tagd.daemon.service import Daemon

pytestmark = pytest.mark.mosquitto


def subscribe(port: int, topic: str) -> tuple[mqtt.Client, "queue.Queue[dict]"]:
    got: "queue.Queue[dict]" = queue.Queue()
    ready: "queue.Queue[bool]" = queue.Queue()
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    c.on_subscribe = lambda *a: ready.put(True)
    c.on_message = lambda cl, u, m: got.put(json.loads(m.payload))
    c.connect("127.0.0.1", port)
    c.subscribe(topic, qos=1)
    c.loop_start()
    ready.get(timeout=5)
    return c, got


async def test_notifications_are_published_as_core_does_with_its_filter(tmp_path, broker: Broker) -> None:
    everything, all_q = subscribe(broker.port, "zaparoo/all")
    tokens_only, tokens_q = subscribe(broker.port, "zaparoo/tokens")
    config = Config.model_validate({
        "readers": {"auto_detect": False}, "database": str(tmp_path / "tagd.db"), "api": {"listen": "127.0.0.1:0"},
        "service": {"publishers": {"mqtt": [
            {"broker": f"127.0.0.1:{broker.port}", "topic": "zaparoo/all"},
            {"broker": f"mqtt://127.0.0.1:{broker.port}", "topic": "zaparoo/tokens", "filter": ["tokens.added"]},
            {"enabled": False, "broker": f"127.0.0.1:{broker.port}", "topic": "zaparoo/off"}]}}})
    daemon = Daemon(config, tmp_path / "config.toml")
    await daemon.start()
    try:
        assert len(daemon.publishers) == 2
        for _ in range(100):
            if all(p.connected for p in daemon.publishers):
                break
            await asyncio.sleep(0.05)
        daemon.notify("media.started", {"systemId": "SNES", "mediaName": "Chrono Trigger"})
        daemon.notify("tokens.added", {"uid": "04aa", "text": "**launch.system:snes"})
        got = [all_q.get(timeout=5), all_q.get(timeout=5)]
        assert got == [{"method": "media.started", "params": {"systemId": "SNES", "mediaName": "Chrono Trigger"}},
                       {"method": "tokens.added", "params": {"uid": "04aa", "text": "**launch.system:snes"}}]
        assert tokens_q.get(timeout=5)["method"] == "tokens.added"  # the filter let only this one through
        await asyncio.sleep(0.3)
        assert tokens_q.empty()
    finally:
        await daemon.stop()
        for c in (everything, tokens_only):
            c.disconnect()
            c.loop_stop()


@pytest.mark.parametrize("table, why", [
    ('broker = "localhost:1883"\n', "needs a broker"),
    ('topic = "t"\n', "needs a broker"),
    ('broker = "http://h:1/"\ntopic = "t"\n', "scheme"),
    ('broker = "h:1883"\ntopic = "a/#"\n', "wildcards"),
])
def test_a_publisher_tagd_cannot_start_is_a_config_error_naming_it(table: str, why: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config("[[service.publishers.mqtt]]\n" + table)
    assert info.value.key.startswith("service.publishers.mqtt[0]") and why in str(info.value)


def test_a_disabled_publisher_is_not_checked() -> None:
    config = parse_config('[[service.publishers.mqtt]]\nenabled = false\n')
    assert config.service.publishers.mqtt[0].enabled is False
