"""The ``mqtt`` reader: Zaparoo Core's MQTT reader, and the hub end of tagd's MQTT fabric.

Connect path as Core's: ``[mqtt://|mqtts://]host[:port]/topic`` (``mqtts`` is TLS; ``ca_file``, ``username``,
``password`` in ``[readers.options.mqtt]``). Two modes, chosen by the topic:

- **Core mode** (any topic but ``<prefix>/+``): every message is one scan. A plain payload is ZapScript text
  (Core: type ``mqtt``, a fresh uid per message); a token JSON object is that token.
- **Hub mode** (``<prefix>/+``, e.g. ``hub.local:1883/tagd/+``): every satellite's readers appear as readers of
  their own, with the satellite's readerId; their taps and removals arrive as on a local reader, and
  :meth:`write` carries ``readers.write`` to the satellite as an MQTT 5 request (response topic + correlation
  data), waits for its answer, and cancels it on the satellite when the caller cancels.

Nothing lost, nothing doubled: QoS 1, a stable client id and a persistent session (clean start off, session
expiry ``session_expiry`` seconds), so a hub or broker restart delivers what was published meanwhile; every
event carries an id and redeliveries are dropped (:class:`~tagd.daemon.fabric.topics.Dedupe`). An event older
than ``max_age`` seconds when it arrives is recorded, not launched.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import queue
import socket
import ssl
import threading
import time
import uuid
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from tagd.daemon.fabric import topics as fab
from tagd.daemon.fabric.topics import hub_prefix, parse_mqtt_path  # noqa: F401 (re-exported)
from tagd.readers.base import (Capability, Reader, ReaderAdded, ReaderError, ReaderEvent, ReaderInfo, ReaderLost,
                               TagGone, TagSeen, WriteCancelled, WriteError, WriteRequest, register)

log = logging.getLogger(__name__)

POLL = 0.5
_LOST = object()
CONNECT_TIMEOUT = 5.0


@register
class MqttReader(Reader):
    driver = "mqtt"
    capabilities = Capability.READ

    def __init__(self, path: str, options: dict[str, Any] | None = None) -> None:
        super().__init__(path, options)
        self.host, self.port, self.topic, self.tls = parse_mqtt_path(path)
        self.prefix = hub_prefix(self.topic)
        self.max_age = float(self.options.get("max_age", 30.0))
        self.session_expiry = int(self.options.get("session_expiry", 86400))
        stable = f"{self.host}:{self.port}/{self.topic}@{socket.gethostname()}"
        self.client_id = str(self.options.get("client_id") or
                             "tagd-hub-" + hashlib.sha256(stable.encode()).hexdigest()[:12])
        self._events: queue.Queue[Any] = queue.Queue()
        self._client: mqtt.Client | None = None
        self._connected = threading.Event()
        self._ready = threading.Event()  # the broker answered open()'s connection, yes or no
        self._problem = ""  # why it said no
        self._dedupe = fab.Dedupe()
        self._remote: dict[str, fab.ReaderState] = {}  # the id shown here → the satellite reader's last state
        self._owner: dict[str, str] = {}  # a satellite readerId → the node that showed it first
        self._online: dict[str, bool] = {}
        self._answers: dict[bytes, "queue.Queue[dict[str, Any]]"] = {}
        self._answers_lock = threading.Lock()
        self._response_topic = f"{self.prefix or 'tagd'}/_hub/{self.client_id}/answers"
        self.info: ReaderInfo | None = None

    # --- connection ---------------------------------------------------------------

    def _make_client(self) -> mqtt.Client:
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=self.client_id, protocol=mqtt.MQTTv5)
        if self.options.get("username"):
            client.username_pw_set(str(self.options["username"]), str(self.options.get("password") or "") or None)
        if self.tls:
            ctx = ssl.create_default_context(cafile=self.options.get("ca_file") or None)
            client.tls_set_context(ctx)
        client.reconnect_delay_set(min_delay=1, max_delay=10)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_subscribe = self._on_subscribe
        client.suppress_exceptions = True  # a bug in a callback is logged by paho; its network thread must live on
        client.on_message = self._on_message
        return client

    def open(self) -> ReaderInfo:
        client = self._make_client()
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = self.session_expiry
        self._connected.clear()
        self._ready.clear()
        self._problem = f"did not accept the connection within {CONNECT_TIMEOUT:g} s"
        try:
            client.connect(self.host, self.port, keepalive=30, clean_start=False, properties=props)
        except (OSError, ValueError, ssl.SSLError) as exc:
            raise ReaderError(f"mqtt broker {self.host}:{self.port}: {exc}") from None
        client.loop_start()
        self._ready.wait(CONNECT_TIMEOUT)
        if not self._connected.is_set():
            client.loop_stop()
            client.disconnect()
            raise ReaderError(f"mqtt broker {self.host}:{self.port} {self._problem}")
        self._client = client
        name = f"MQTT hub {self.prefix}/+" if self.prefix is not None else f"MQTT: {self.topic}"
        self.info = ReaderInfo(self.driver, self.path, f"{self.host}:{self.port}/{self.topic}", name, self.capabilities)
        return self.info

    def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            try:
                client.disconnect()
            except Exception:  # already gone
                pass
            client.loop_stop()

    def interrupt(self) -> None:
        self._events.put(None)

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason_code: Any, properties: Any) -> None:
        if reason_code.is_failure:
            self._problem = f"refused the connection: {reason_code}"
            self._ready.set()
            log.warning("mqtt reader: broker %s:%d %s", self.host, self.port, self._problem)
            return
        subs = fab.hub_subscriptions(self.prefix) + [self._response_topic] if self.prefix is not None else [self.topic]
        # Again on every reconnect (a broker without our session forgot them); ready once the broker acknowledged
        # them, so nothing published after open() returns can miss the subscription.
        client.subscribe([(topic, 1) for topic in subs])
        log.info("mqtt reader: connected to %s:%d, subscribed to %s", self.host, self.port, ", ".join(subs))

    def _on_subscribe(self, client: Any, userdata: Any, mid: Any, reason_codes: Any, properties: Any) -> None:
        failed = [str(rc) for rc in reason_codes if rc.is_failure]
        if failed:
            self._problem = f"refused the subscription: {', '.join(failed)}"
            self._ready.set()
            log.warning("mqtt reader: broker %s:%d %s", self.host, self.port, self._problem)
            return
        self._connected.set()
        self._ready.set()

    def _on_disconnect(self, client: Any, userdata: Any, flags: Any, reason_code: Any, properties: Any) -> None:
        self._connected.clear()
        self._events.put(_LOST)  # the satellites' readers cannot be reached until the broker is back
        log.warning("mqtt reader: connection to %s:%d lost (%s); reconnecting", self.host, self.port, reason_code)

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        if msg.topic == self._response_topic:  # straight to the write waiting in the reader thread (not polling now)
            self._answer(bytes(msg.payload), msg.properties)
            return
        self._events.put((msg.topic, bytes(msg.payload), msg.properties))

    # --- events -------------------------------------------------------------------

    def poll(self) -> list[ReaderEvent]:
        assert self.info is not None
        try:
            item = self._events.get(timeout=POLL)
        except queue.Empty:
            return []
        if item is None:
            return []
        if item is _LOST:
            lost = [rid for rid, state in self._remote.items() if state.connected]
            for rid in lost:
                self._remote[rid] = dataclasses.replace(self._remote[rid], connected=False)
            return [ReaderLost(rid, "mqtt broker connection lost") for rid in lost]
        topic, payload, properties = item
        try:
            return self._handle(topic, payload, properties)
        except fab.FabricError as exc:
            log.warning("mqtt reader: dropped a message: %s", exc)
            return []
        except Exception:  # a message nobody foresaw must not take every satellite reader down with the worker
            log.exception("mqtt reader: dropped a message on %s", topic)
            return []

    def _handle(self, topic: str, payload: bytes, properties: Any) -> list[ReaderEvent]:
        assert self.info is not None
        if self.prefix is None:
            if not payload:
                return []
            token = fab.parse_plain_scan(payload)
            return [TagSeen(self.info.reader_id, token.model_copy(update={"reader_id": self.info.reader_id}))]
        message = fab.parse_message(topic, payload, self.prefix)
        if isinstance(message, fab.NodeState):
            self._online[message.node] = message.online
            if message.online:
                return [self._added(pid, s) for pid, s in self._remote.items() if s.node == message.node and s.connected]
            return [ReaderLost(rid, f"node {message.node} offline")
                    for rid, s in self._remote.items() if s.node == message.node and s.connected]
        if isinstance(message, fab.ReaderState):
            pid = self._public(message.node, message.reader_id)
            before = self._remote.get(pid)
            self._remote[pid] = message
            was = before is not None and before.connected
            if message.connected and not was:
                return [self._added(pid, message)]
            if was and not message.connected:
                return [ReaderLost(pid, f"reader on node {message.node} disconnected")]
            return []
        if isinstance(message, fab.SatelliteEvent):
            if not self._dedupe.first_time(f"{message.node}/{message.event_id}"):
                log.debug("mqtt reader: redelivered event %s from %s dropped", message.event_id, message.node)
                return []
            events: list[ReaderEvent] = []
            pid = self._public(message.node, message.reader_id)
            state = self._remote.get(pid)
            if state is None or not state.connected:  # an event before the retained state: the reader is there
                state = fab.ReaderState(message.node, message.reader_id, connected=True)
                self._remote[pid] = state
                events.append(self._added(pid, state))
            if message.kind == "removed":
                events.append(TagGone(pid))
                return events
            assert message.token is not None
            age = time.time() - message.time
            token = message.token.model_copy(update={"reader_id": pid})
            stale = age > self.max_age
            if stale:
                log.warning("mqtt reader: a tap on %s arrived %.0f s late (max_age %g s): recorded, not launched",
                            pid, age, self.max_age)
            detail = {"node": message.node, "age": round(age, 3), "on_connect": message.on_connect}
            events.append(TagSeen(pid, token, detail, launch=not stale))
            return events
        return []

    def _public(self, node: str, reader_id: str) -> str:
        """The id a satellite's reader has here: its own readerId, unless another node showed that id first (two
        identical boards with the reader on the same USB port): then ``<readerId>@<node>``."""
        owner = self._owner.setdefault(reader_id, node)
        return reader_id if owner == node else f"{reader_id}@{node}"

    def _added(self, pid: str, state: fab.ReaderState) -> ReaderAdded:
        caps = Capability.READ | Capability.REMOVABLE | (Capability.WRITE if state.write else Capability(0))
        info = ReaderInfo(state.driver or "remote", state.path or state.reader_id, f"{state.node}/{state.reader_id}",
                          state.name or f"{state.driver or 'reader'} on {state.node}", caps,
                          id=pid, remote=state.node)
        return ReaderAdded(info)

    # --- writes to a satellite's reader ---------------------------------------------

    def _answer(self, payload: bytes, properties: Any) -> None:
        correlation = getattr(properties, "CorrelationData", None)
        with self._answers_lock:
            box = self._answers.get(bytes(correlation)) if correlation else None
        if box is None:
            log.debug("mqtt reader: an answer nobody waits for (late or duplicate)")
            return
        try:
            answer = json.loads(payload.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError):
            answer = {"ok": False, "error": "the satellite's answer was not JSON"}
        box.put(answer if isinstance(answer, dict) else {"ok": False, "error": "bad answer"})

    def write(self, request: WriteRequest) -> TagSeen:
        client = self._client
        target = request.reader_id
        state = self._remote.get(target or "")
        if self.prefix is None or state is None:
            raise WriteError(f"the mqtt reader cannot write tags{'' if self.prefix is None else ': no such satellite reader'}")
        if client is None or not self._connected.is_set():
            raise WriteError(f"mqtt broker {self.host}:{self.port} is not connected")
        node = fab.Topics(state.node, self.prefix)
        correlation = uuid.uuid4().bytes
        box: "queue.Queue[dict[str, Any]]" = queue.Queue()
        with self._answers_lock:
            self._answers[correlation] = box
        props = Properties(PacketTypes.PUBLISH)
        props.ResponseTopic = self._response_topic
        props.CorrelationData = correlation
        props.MessageExpiryInterval = max(1, int(request.timeout))
        try:
            client.publish(node.write, fab.write_request(state.reader_id, request.text, request.timeout), qos=1,
                           properties=props)
            deadline = time.monotonic() + request.timeout + 5.0  # the satellite's own timeout answers first
            while True:
                if request.cancel.is_set():
                    client.publish(node.write_cancel, fab._dumps({"readerId": state.reader_id}), qos=1)
                    raise WriteCancelled("write cancelled")
                left = deadline - time.monotonic()
                if left <= 0:
                    client.publish(node.write_cancel, fab._dumps({"readerId": state.reader_id}), qos=1)
                    raise WriteError(f"node {state.node} did not answer the write within {request.timeout:g} s")
                try:
                    answer = box.get(timeout=min(0.1, left))
                    break
                except queue.Empty:
                    continue
        finally:
            with self._answers_lock:
                self._answers.pop(correlation, None)
        if not answer.get("ok"):
            error = str(answer.get("error") or "the satellite could not write the tag")
            raise (WriteCancelled if "cancel" in error else WriteError)(f"{state.node}: {error}")
        token = fab.parse_token(answer.get("token"), "write answer").model_copy(update={"reader_id": target})
        return TagSeen(target or state.reader_id, token, {"node": state.node}, written=True)
