"""Publish each launch's token text to an MQTT topic — what Zaparoo Core's MQTT reader takes as one scan.

paho-mqtt (≥ 2) runs its network loop in its own thread (``loop_start``), so asyncio never blocks on the
socket, and reconnects by itself (1 s doubling to 10 s). A broker that is not connected fails a launch at
once (ForwardError) rather than queueing it: a launch delivered minutes later would surprise the player.
A launch from the API or the web (``unsafe``: not a tapped tag) goes to ``<topic>/unsafe`` instead: Core's MQTT
reader would take text on ``<topic>`` as a tag scan and run what an API client must not (MQTT 3.1.1 messages
carry no flags to say otherwise). With ``qos`` 1 or 2 the launch succeeds only when the broker acknowledges it (waited for in a worker thread,
within ``timeout``). Nothing is published on a hold-mode exit: the MQTT reader has no "removed" message.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import uuid
from typing import Any

import paho.mqtt.client as mqtt

from tagd.daemon.forwarders import Forwarder, ForwardError
from tagd.token import Token

log = logging.getLogger(__name__)


class MqttForwarder(Forwarder):
    kind = "mqtt"

    def __init__(self, config: Any, name: str = "mqtt") -> None:
        super().__init__(name)
        self.host = config.host
        self.port = int(config.port)
        self.topic = config.topic
        self.qos = int(config.qos)
        self.timeout = float(config.timeout)
        self.last_error = "not started"
        self._connected = threading.Event()
        self._client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2,
                                   client_id=f"tagd-{os.getpid()}-{uuid.uuid4().hex[:8]}")
        if config.username:
            self._client.username_pw_set(config.username, config.password or None)
        self._client.reconnect_delay_set(min_delay=1, max_delay=10)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._started = False

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    # paho callbacks run in paho's thread: they only flip the flag and log
    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason_code: Any, properties: Any) -> None:
        if reason_code.is_failure:
            self.last_error = f"broker refused the connection: {reason_code}"
            self._connected.clear()
            log.warning("%s: %s", self.name, self.last_error)
            return
        self.last_error = ""
        self._connected.set()
        log.info("%s: connected to %s:%d", self.name, self.host, self.port)

    def _on_disconnect(self, client: Any, userdata: Any, flags: Any, reason_code: Any, properties: Any) -> None:
        self._connected.clear()
        self.last_error = f"disconnected ({reason_code})"

    async def start(self) -> None:
        if self._started:
            return
        self._started = True
        self.last_error = "connecting"
        try:
            self._client.connect_async(self.host, self.port, keepalive=30)
        except (OSError, ValueError) as exc:
            self.last_error = str(exc)
        self._client.loop_start()  # connects, and reconnects, in paho's thread

    async def close(self) -> None:
        if not self._started:
            return
        self._started = False
        try:
            self._client.disconnect()
        except Exception:  # not connected: nothing to say goodbye to
            pass
        await asyncio.to_thread(self._client.loop_stop)

    async def launch(self, token: Token) -> None:
        if not self._connected.is_set():
            raise ForwardError(f"{self.name}: mqtt broker {self.host}:{self.port} is not connected ({self.last_error})")
        topic = f"{self.topic}/unsafe" if token.unsafe else self.topic
        info = self._client.publish(topic, token.text.encode("utf-8"), qos=self.qos)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            raise ForwardError(f"{self.name}: publish to {topic!r} failed: {mqtt.error_string(info.rc)}")
        if self.qos > 0:
            try:
                await asyncio.to_thread(info.wait_for_publish, self.timeout)
            except (RuntimeError, ValueError) as exc:
                raise ForwardError(f"{self.name}: publish to {topic!r} failed: {exc}") from None
            if not info.is_published():
                raise ForwardError(f"{self.name}: broker did not acknowledge within {self.timeout:g} s")
