"""This tagd on the MQTT fabric: a satellite's publisher, Home Assistant discovery and Core-style publishers.

Loaded only when ``[mqtt]`` (or ``[[service.publishers.mqtt]]``) is configured. One paho client (MQTT 5, its
own network thread) per broker:

- **Satellite** (``[mqtt] node = "kitchen"``): local reader events go out under ``tagd/kitchen/…`` as
  :mod:`topics` lays out — retained reader states, a retained ``online`` with ``offline`` as the Last Will, and
  each tap/removal as a QoS-1 event with an id. Write requests from a hub (MQTT 5 request/response) are
  written on the named local reader through the daemon's own write path, and answered on the response topic
  with the correlation data; ``write/cancel`` cancels them. The session is persistent (stable client id,
  clean start off, session expiry): a broker that restarts with persistence redelivers, and events published
  while the broker is away wait in paho's queue (up to ``MAX_QUEUED``).
- **Home Assistant** (``home_assistant = true``, the default with a node): a tag scanner per reader and a
  device per node with a connectivity sensor per reader, "last token" and "now playing".
- **Core's publisher** (``[[service.publishers.mqtt]] broker, topic, filter``): every notification whose method
  passes the filter is published as Core publishes it (``{"method", "params"}``, QoS 1, not retained).
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
import threading
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from tagd.daemon.fabric import topics as fab
from tagd.daemon.forwarders import Forwarder
from tagd.readers.base import Capability, ReaderAdded, ReaderEvent, ReaderLost, TagGone, TagSeen, WriteError
from tagd.token import Token

log = logging.getLogger(__name__)

MAX_WRITE_WAIT = 120.0  # seconds a hub may ask a satellite to wait for a tag
MAX_QUEUED = 10_000  # events kept while the broker is away (QoS 1, in memory)
CONNECT_GRACE = 1.0  # a tag seen this soon after its reader connected was already lying there

WriteFn = Callable[[str, str, float, threading.Event], Awaitable[Token]]


@dataclass
class BrokerAddress:
    host: str
    port: int
    tls: bool


def parse_broker(url: str) -> BrokerAddress:
    """Core's broker forms: ``host:port``, ``mqtt://host:port``, ``mqtts://host:port`` / ``ssl://`` (TLS)."""
    from tagd.readers.mqtt import parse_mqtt_path

    host, port, _topic, tls = parse_mqtt_path(url.rstrip("/") + "/x")
    return BrokerAddress(host, port, tls)


@dataclass
class NodeSettings:
    broker: str
    node: str = ""
    prefix: str = fab.PREFIX
    username: str = ""
    password: str = ""
    ca_file: str = ""
    home_assistant: bool = True
    ha_prefix: str = fab.HA_PREFIX
    session_expiry: int = 86400
    publishers: list[tuple[str, list[str]]] = field(default_factory=list)  # (topic, filter) on this broker


class FabricNode:
    """One broker connection serving the satellite role, HA discovery and Core-style publishers."""

    def __init__(self, settings: NodeSettings, version: str, write: WriteFn | None = None) -> None:
        self.settings = settings
        self.version = version
        self.write_fn = write
        self.address = parse_broker(settings.broker)
        self.topics = fab.Topics(fab.check_node(settings.node), settings.prefix) if settings.node else None
        self.discovery = fab.Discovery(self.topics, version, settings.ha_prefix) if self.topics else None
        self.readers: dict[str, dict[str, Any]] = {}  # local readerId → its published state
        self._connected_at: dict[str, float] = {}
        self._writes: dict[str, threading.Event] = {}  # readerId → the cancel flag of its running write
        self._tasks: set[asyncio.Task[None]] = set()  # the hub's write requests being served
        self._last_token = ""
        self._now_playing = ""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._connected = threading.Event()
        self._client = self._make_client()

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def _make_client(self) -> mqtt.Client:
        s = self.settings
        client_id = f"tagd-node-{s.node}" if s.node else None
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id or "", protocol=mqtt.MQTTv5)
        if s.username:
            client.username_pw_set(s.username, s.password or None)
        if self.address.tls:
            client.tls_set_context(ssl.create_default_context(cafile=s.ca_file or None))
        if self.topics is not None:
            client.will_set(self.topics.state, fab.OFFLINE, qos=1, retain=True)
        client.max_queued_messages_set(MAX_QUEUED)
        client.reconnect_delay_set(min_delay=1, max_delay=10)
        client.on_connect = self._on_connect
        client.on_disconnect = lambda *a: self._connected.clear()
        client.on_message = self._on_message
        client.on_subscribe = lambda c, u, mid, codes, props: self._connected.set()
        client.suppress_exceptions = True  # a bug in a callback is logged by paho; its network thread must live on
        return client

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = self.settings.session_expiry if self.topics else 0
        try:
            self._client.connect_async(self.address.host, self.address.port, keepalive=30,
                                       clean_start=self.topics is None, properties=props)
        except (OSError, ValueError) as exc:
            log.warning("mqtt: %s:%d: %s", self.address.host, self.address.port, exc)
        self._client.loop_start()

    async def close(self) -> None:
        if self.topics is not None and self._connected.is_set():
            info = self._client.publish(self.topics.state, fab.OFFLINE, qos=1, retain=True)
            await asyncio.to_thread(info.wait_for_publish, 2.0)
        for cancel in list(self._writes.values()):
            cancel.set()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._client.disconnect()
        await asyncio.to_thread(self._client.loop_stop)

    # --- paho's thread ----------------------------------------------------------------

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason_code: Any, properties: Any) -> None:
        if reason_code.is_failure:
            log.warning("mqtt: broker %s:%d refused the connection: %s", self.address.host, self.address.port,
                        reason_code)
            return
        log.info("mqtt: connected to %s:%d%s", self.address.host, self.address.port,
                 f" as node {self.settings.node}" if self.topics else "")
        if self.topics is None:
            self._connected.set()
            return
        client.subscribe([(self.topics.write, 1), (self.topics.write_cancel, 1)])  # connected once acknowledged
        client.publish(self.topics.state, fab.ONLINE, qos=1, retain=True)
        for rid, state in list(self.readers.items()):
            client.publish(self.topics.reader(rid), fab.reader_payload(**state), qos=1, retain=True)
        self._publish_discovery()

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        if self._loop is None or self.topics is None:
            return
        payload, props = bytes(msg.payload), msg.properties
        if msg.topic == self.topics.write_cancel:
            try:
                rid = json.loads(payload).get("readerId")
            except (ValueError, AttributeError, RecursionError):
                log.warning("mqtt: a write cancel that is not {\"readerId\": …} was ignored")
                return
            cancel = self._writes.get(rid) if isinstance(rid, str) else None
            if cancel is not None:
                cancel.set()
            return
        if msg.topic == self.topics.write:
            self._loop.call_soon_threadsafe(self._spawn_write, payload, props)

    def _spawn_write(self, payload: bytes, props: Any) -> None:
        task = asyncio.ensure_future(self._serve_write(payload, props))
        self._tasks.add(task)  # held (a task nobody references may be collected mid-write) and cancelled at close
        task.add_done_callback(self._tasks.discard)

    # --- satellite: local events out ---------------------------------------------------

    def on_reader_event(self, event: ReaderEvent) -> None:
        """Called on the loop for every local reader event (before the pipeline sees it)."""
        if self.topics is None:
            return
        loop_time = asyncio.get_running_loop().time()
        if isinstance(event, ReaderAdded):
            info = event.info
            if info.remote:  # a hub does not re-publish the readers it shows for other nodes
                return
            state = {"reader_id": info.reader_id, "driver": info.driver, "path": info.path, "name": info.name,
                     "connected": True, "write": Capability.WRITE in info.capabilities}
            self.readers[info.reader_id] = state
            self._connected_at[info.reader_id] = loop_time
            self._publish(self.topics.reader(info.reader_id), fab.reader_payload(**state), retain=True)
            if self.discovery is not None and self.settings.home_assistant:
                for topic, body in (self.discovery.tag_scanner(info.reader_id),
                                    self.discovery.reader_connected(info.reader_id)):
                    self._publish(topic, body, retain=True)
        elif isinstance(event, ReaderLost):
            state = self.readers.get(event.reader_id)
            if state is None:
                return
            state["connected"] = False
            self._publish(self.topics.reader(event.reader_id), fab.reader_payload(**state), retain=True)
        elif isinstance(event, TagSeen):
            if event.reader_id not in self.readers:
                return
            at = self._connected_at.pop(event.reader_id, None)
            on_connect = at is not None and loop_time - at <= CONNECT_GRACE
            token = event.token.model_copy(update={"reader_id": event.reader_id})
            payload = json.loads(fab.event_payload(event.reader_id, "tag", token))
            if on_connect or event.written:
                payload["onConnect"] = True  # the hub records it as on the reader, and does not launch it
            self._publish(self.topics.events, json.dumps(payload).encode(), qos=1)
            if self.settings.home_assistant:
                self._publish(self.topics.ha_tag(event.reader_id), fab.ha_tag_payload(token), qos=0)
                self._last_token = token.uid or token.text
                self._publish_sensor()
        elif isinstance(event, TagGone):
            if event.reader_id in self.readers:
                self._connected_at.pop(event.reader_id, None)
                self._publish(self.topics.events, fab.event_payload(event.reader_id, "removed"), qos=1)

    def _publish(self, topic: str, payload: bytes | str, qos: int = 1, retain: bool = False,
                 properties: Any = None) -> None:
        info = self._client.publish(topic, payload, qos=qos, retain=retain, properties=properties)
        if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):  # NO_CONN with QoS 1: queued, sent later
            log.warning("mqtt: publish to %s failed: %s", topic, mqtt.error_string(info.rc))

    def _publish_discovery(self) -> None:
        if self.discovery is None or not self.settings.home_assistant:
            return
        for topic, body in self.discovery.node_sensors():
            self._publish(topic, body, retain=True)
        for rid in list(self.readers):  # paho's thread: a snapshot (the loop may add a reader meanwhile)
            for topic, body in (self.discovery.tag_scanner(rid), self.discovery.reader_connected(rid)):
                self._publish(topic, body, retain=True)
        self._publish_sensor()

    def _publish_sensor(self) -> None:
        if self.topics is not None and self.settings.home_assistant:
            self._publish(self.topics.sensor, fab.sensor_payload(self._last_token, self._now_playing), qos=0,
                          retain=True)

    # --- notifications (Core's publisher, HA's now-playing) -----------------------------------

    def daemon_notification(self, method: str, params: Any) -> None:
        self.on_notification(method, params)

    def on_notification(self, method: str, params: Any) -> None:
        for topic, filters in self.settings.publishers:
            if fab.matches_filter(filters, method):
                self._publish(topic, fab.core_notification(method, params), qos=1)
        if method in ("media.started", "media.stopped") and self.topics is not None:
            self._now_playing = (params or {}).get("mediaName", "") if method == "media.started" else ""
            self._publish_sensor()

    # --- satellite: writes asked by a hub ---------------------------------------------

    async def _serve_write(self, payload: bytes, props: Any) -> None:
        response_topic = getattr(props, "ResponseTopic", None)
        correlation = getattr(props, "CorrelationData", None)
        answer: bytes
        try:
            request = json.loads(payload.decode("utf-8"))
            rid, text = request["readerId"], request["text"]
            timeout = request.get("timeout", 30.0)
            if not isinstance(rid, str) or not isinstance(text, str):
                raise TypeError("readerId and text must be strings")
            if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout <= MAX_WRITE_WAIT:
                raise ValueError(f"timeout must be a number of seconds from 0 to {MAX_WRITE_WAIT}")
            timeout = float(timeout)
        except (UnicodeDecodeError, ValueError, KeyError, TypeError, RecursionError, AttributeError) as exc:
            answer = fab.write_answer(error=f"bad write request: {exc}")
        else:
            if self.write_fn is None or rid not in self.readers:
                answer = fab.write_answer(error=f"no reader {rid} on node {self.settings.node}")
            elif rid in self._writes:  # one write per reader, as readers.write; the first keeps its cancel
                answer = fab.write_answer(error=f"a write to reader {rid} is already waiting for a tag")
            else:
                cancel = threading.Event()
                self._writes[rid] = cancel
                try:
                    token = await self.write_fn(rid, text, timeout, cancel)
                    answer = fab.write_answer(token=token)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # WriteError, RpcError: the message goes back to the hub as it is
                    answer = fab.write_answer(error=str(exc) or exc.__class__.__name__)
                finally:
                    self._writes.pop(rid, None)
        if not response_topic:
            log.warning("mqtt: a write request without a response topic was done but cannot be answered")
            return
        out = Properties(PacketTypes.PUBLISH)
        if correlation is not None:
            out.CorrelationData = correlation
        self._publish(response_topic, answer, qos=1, properties=out)


class FabricForwarder(Forwarder):
    """``[[core]] type = "mqtt"`` with ``node``: this tagd is a satellite; the hub decides what a tap launches.

    It publishes the local readers' raw events (the service hands them to :meth:`reader_event`), so a launch
    here is nothing to send: the hub launches from the tap event it already has."""

    kind = "mqtt"

    def __init__(self, config: Any, name: str = "mqtt") -> None:
        super().__init__(name)
        scheme = "mqtts" if config.tls else "mqtt"
        self.settings = NodeSettings(
            broker=f"{scheme}://{config.host}:{int(config.port)}", node=config.node, prefix=config.prefix,
            username=config.username, password=config.password, ca_file=config.ca_file,
            home_assistant=config.home_assistant, session_expiry=int(config.session_expiry))
        self.write_fn: WriteFn | None = None  # the daemon's write path, set by the service
        self.node: FabricNode | None = None

    @property
    def connected(self) -> bool:
        return self.node is not None and self.node.connected

    async def start(self) -> None:
        from tagd import __version__

        self.node = FabricNode(self.settings, __version__, self._write)
        await self.node.start()

    async def _write(self, reader_id: str, text: str, timeout: float, cancel: threading.Event) -> Token:
        if self.write_fn is None:
            raise WriteError("this tagd does not take writes from the fabric")
        return await self.write_fn(reader_id, text, timeout, cancel)

    async def launch(self, token: Token) -> None:
        return None  # the hub launches: it received the tap as an event

    def reader_event(self, event: ReaderEvent) -> None:
        if self.node is not None:
            self.node.on_reader_event(event)

    def daemon_notification(self, method: str, params: Any) -> None:
        if self.node is not None:
            self.node.on_notification(method, params)

    async def close(self) -> None:
        if self.node is not None:
            await self.node.close()


def build_publishers(entries: Any) -> list[FabricNode]:
    """One connection per enabled ``[[service.publishers.mqtt]]`` (as Core: each publisher is its own client)."""
    from tagd import __version__

    out = []
    for entry in entries:
        if entry.enabled is False or not entry.broker or not entry.topic:
            continue
        out.append(FabricNode(NodeSettings(broker=entry.broker, home_assistant=False,
                                           publishers=[(entry.topic, list(entry.filter))]), __version__))
    return out
