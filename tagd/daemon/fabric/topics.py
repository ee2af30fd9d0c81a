"""The MQTT fabric between tagd nodes, sans-I/O: topic layout, payloads, Home Assistant discovery, dedupe.

A *satellite* (a tagd with readers and ``[mqtt] node = "kitchen"``) publishes under ``<prefix>/<node>/``;
a *hub* (a tagd whose ``mqtt`` reader subscribes ``<prefix>/+``) shows every satellite reader as its own.

=================================  ========  ======  =================================================
topic                              retained  QoS     payload
=================================  ========  ======  =================================================
``tagd/<node>/state``              yes       1       ``online`` / ``offline`` (the Last Will)
``tagd/<node>/readers/<readerId>`` yes       1       reader JSON ``{readerId, driver, path, name,
                                                     connected, write}``; empty = the reader is gone
``tagd/<node>/events``             no        1       ``{id, time, readerId, kind: "tag"|"removed",
                                                     token?}`` — ``id`` makes redeliveries harmless
``tagd/<node>/write``              no        1       hub → satellite, an MQTT 5 request (response
                                                     topic + correlation data): ``{readerId, text,
                                                     timeout}``; answer ``{ok, token?|error?}``
``tagd/<node>/write/cancel``       no        1       ``{readerId}``
``tagd/<node>/ha/<readerId>``      no        0       ``{uid, text}`` for Home Assistant's tag scanner
``tagd/<node>/sensor``             yes       0       ``{last_token, now_playing}`` for HA's sensors
=================================  ========  ======  =================================================

Everything here is pure: functions build ``(topic, payload, retain)`` and parse what arrives into events,
so the driver, the satellite and the tests share one definition of the wire.
"""

from __future__ import annotations

import json
import math
import re
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from tagd.token import Token

PREFIX = "tagd"
ONLINE, OFFLINE = "online", "offline"
HA_PREFIX = "homeassistant"
_NODE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class FabricError(ValueError):
    """A message that is not the fabric's (bad JSON, wrong shape): named and dropped, never fatal."""


def check_node(node: str) -> str:
    """Node names become topic levels and HA ids: letters, digits, ``_`` and ``-`` only (no ``/``, ``+``, ``#``)."""
    if not _NODE.match(node):
        raise ValueError(f"node name {node!r} must be 1-64 letters, digits, '_' or '-' (it becomes an MQTT topic level)")
    return node


@dataclass(frozen=True)
class Topics:
    node: str
    prefix: str = PREFIX

    def _t(self, *parts: str) -> str:
        return "/".join((self.prefix, self.node) + parts)

    @property
    def state(self) -> str:
        return self._t("state")

    def reader(self, reader_id: str) -> str:
        return self._t("readers", reader_id)

    @property
    def events(self) -> str:
        return self._t("events")

    @property
    def write(self) -> str:
        return self._t("write")

    @property
    def write_cancel(self) -> str:
        return self._t("write", "cancel")

    def ha_tag(self, reader_id: str) -> str:
        return self._t("ha", reader_id)

    @property
    def sensor(self) -> str:
        return self._t("sensor")


def hub_subscriptions(prefix: str = PREFIX) -> list[str]:
    """What a hub subscribes to (QoS 1 each)."""
    return [f"{prefix}/+/state", f"{prefix}/+/readers/+", f"{prefix}/+/events"]


def parse_mqtt_path(path: str) -> tuple[str, int, str, bool]:
    """``"broker:1883/zaparoo/tokens"`` → ``("broker", 1883, "zaparoo/tokens", False)``; ValueError naming what is
    missing. As Core: no scheme means ``mqtt://``; ``mqtts://`` and ``ssl://`` are TLS (default port 8883)."""
    text = path.strip()
    if not text:
        raise ValueError("mqtt reader path is empty: use host:port/topic")
    if "://" not in text:
        text = "mqtt://" + text
    parts = urlsplit(text)
    if parts.scheme not in ("mqtt", "mqtts", "ssl", "tcp"):
        raise ValueError(f"mqtt reader path {path!r}: scheme must be mqtt:// or mqtts://")
    tls = parts.scheme in ("mqtts", "ssl")
    if not parts.hostname:
        raise ValueError(f"mqtt reader path {path!r}: a broker host is required (host:port/topic)")
    try:
        port = parts.port or (8883 if tls else 1883)
    except ValueError:
        raise ValueError(f"mqtt reader path {path!r}: the port is not a number") from None
    topic = parts.path.lstrip("/")
    if not topic:
        raise ValueError(f"mqtt reader path {path!r}: a topic is required (host:port/topic)")
    return parts.hostname, port, topic, tls


def hub_prefix(topic: str) -> str | None:
    """``"tagd/+"`` → ``"tagd"`` (hub mode); any other topic → None (Core mode)."""
    if topic.endswith("/+") and "+" not in topic[:-2] and "#" not in topic:
        return topic[:-2]
    return None


# --- payloads --------------------------------------------------------------


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def token_json(token: Token) -> dict[str, Any]:
    return {"type": token.type, "uid": token.uid, "text": token.text, "data": token.data,
            "scanNs": token.scan_ns, "readerId": token.reader_id}


def reader_payload(reader_id: str, driver: str, path: str, name: str, connected: bool, write: bool) -> bytes:
    return _dumps({"readerId": reader_id, "driver": driver, "path": path, "name": name,
                   "connected": connected, "write": write})


def event_payload(reader_id: str, kind: str, token: Token | None = None, *, now: float | None = None,
                  event_id: str | None = None) -> bytes:
    body: dict[str, Any] = {"id": event_id or uuid.uuid4().hex, "time": time.time() if now is None else now,
                            "readerId": reader_id, "kind": kind}
    if token is not None:
        body["token"] = token_json(token)
    return _dumps(body)


def write_request(reader_id: str, text: str, timeout: float) -> bytes:
    return _dumps({"readerId": reader_id, "text": text, "timeout": timeout})


def write_answer(token: Token | None = None, error: str | None = None) -> bytes:
    return _dumps({"ok": True, "token": token_json(token)} if token is not None else {"ok": False, "error": error})


def _json(payload: bytes, what: str) -> dict[str, Any]:
    try:
        obj = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise FabricError(f"{what}: not JSON ({exc.__class__.__name__}: {str(exc)[:80]})") from None
    if not isinstance(obj, dict):
        raise FabricError(f"{what}: a JSON object was expected, got {type(obj).__name__}")
    return obj


def _str(obj: dict[str, Any], key: str, what: str, default: str | None = None) -> str:
    value = obj.get(key, default)
    if not isinstance(value, str):
        raise FabricError(f"{what}: {key!r} must be a string")
    return value


def parse_token(obj: Any, what: str = "token") -> Token:
    """A token JSON object (tagd's or Zaparoo's form) → Token; FabricError naming the bad field otherwise."""
    if not isinstance(obj, dict):
        raise FabricError(f"{what}: a JSON object was expected")
    fields = {k: _str(obj, k, what, "") for k in ("type", "uid", "text", "data")}
    scan_ns = obj.get("scanNs")
    extra: dict[str, Any] = {}
    if isinstance(scan_ns, int) and not isinstance(scan_ns, bool) and scan_ns > 0:
        extra["scan_ns"] = scan_ns
    rid = obj.get("readerId")
    return Token(type=fields["type"] or "unknown", uid=fields["uid"], text=fields["text"], data=fields["data"],
                 reader_id=rid if isinstance(rid, str) and rid else None, **extra)


@dataclass(frozen=True)
class ReaderState:
    node: str
    reader_id: str
    driver: str = ""
    path: str = ""
    name: str = ""
    connected: bool = False
    write: bool = False


@dataclass(frozen=True)
class NodeState:
    node: str
    online: bool


@dataclass(frozen=True)
class SatelliteEvent:
    node: str
    event_id: str
    time: float
    reader_id: str
    kind: str  # "tag" | "removed"
    token: Token | None = None
    on_connect: bool = False  # the satellite found it lying on the reader (or just wrote it): not to be launched


def parse_message(topic: str, payload: bytes, prefix: str = PREFIX) -> ReaderState | NodeState | SatelliteEvent | None:
    """One message a hub received → what it means; None for topics that are not the fabric's; FabricError if
    a fabric topic carries a bad payload."""
    parts = topic.split("/")
    if len(parts) < 3 or parts[0] != prefix:
        return None
    node, rest = parts[1], parts[2:]
    if rest == ["state"]:
        return NodeState(node, payload.strip() == ONLINE.encode())
    if len(rest) == 2 and rest[0] == "readers":
        if not payload:
            return ReaderState(node, rest[1], connected=False)
        obj = _json(payload, topic)
        return ReaderState(node, rest[1], _str(obj, "driver", topic, ""), _str(obj, "path", topic, ""),
                           _str(obj, "name", topic, ""), obj.get("connected") is True, obj.get("write") is True)
    if rest == ["events"]:
        obj = _json(payload, topic)
        kind = _str(obj, "kind", topic)
        if kind not in ("tag", "removed"):
            raise FabricError(f"{topic}: kind must be 'tag' or 'removed', not {kind!r}")
        when = obj.get("time")
        if not isinstance(when, (int, float)) or isinstance(when, bool) or not -1e12 < when < 1e12 or \
                not math.isfinite(when):
            raise FabricError(f"{topic}: 'time' must be a number (unix seconds)")
        token = parse_token(obj.get("token"), f"{topic} token") if kind == "tag" else None
        return SatelliteEvent(node, _str(obj, "id", topic), float(when), _str(obj, "readerId", topic), kind, token,
                              obj.get("onConnect") is True)
    return None


def parse_plain_scan(payload: bytes) -> Token:
    """A message on a Core-style MQTT reader topic: a tagd/Zaparoo token JSON object is that token; anything
    else is ZapScript text (Zaparoo Core's MQTT reader: type ``mqtt``, a fresh uid per message)."""
    text = payload.decode("utf-8", errors="replace")
    stripped = text.strip()
    if stripped.startswith("{"):
        try:
            obj = json.loads(stripped)
        except (ValueError, RecursionError):
            obj = None
        if isinstance(obj, dict) and ("uid" in obj or "text" in obj):
            token = parse_token(obj)
            return token if token.uid else token.model_copy(update={"uid": str(uuid.uuid4())})
    return Token(type="mqtt", uid=str(uuid.uuid4()), text=text)


class Dedupe:
    """Remembers the last ``size`` event ids: a QoS-1 redelivery (same id) is seen once."""

    def __init__(self, size: int = 4096) -> None:
        self.size = size
        self._seen: OrderedDict[str, None] = OrderedDict()

    def first_time(self, event_id: str) -> bool:
        if event_id in self._seen:
            self._seen.move_to_end(event_id)
            return False
        self._seen[event_id] = None
        if len(self._seen) > self.size:
            self._seen.popitem(last=False)
        return True


# --- Home Assistant MQTT discovery (SPEC §7) ----------------------------------


def _ha_id(*parts: str) -> str:
    return "_".join(re.sub(r"[^A-Za-z0-9_-]", "_", p) for p in ("tagd",) + parts)


def ha_device(node: str, version: str) -> dict[str, Any]:
    return {"identifiers": [_ha_id(node)], "name": f"tagd {node}", "manufacturer": "tagd",
            "model": "NFC reader daemon", "sw_version": version}


@dataclass
class Discovery:
    """The retained discovery messages for one node: a tag scanner per reader, a device with sensors."""

    topics: Topics
    version: str
    ha_prefix: str = HA_PREFIX
    messages: list[tuple[str, bytes]] = field(default_factory=list)

    def _availability(self) -> dict[str, Any]:
        return {"availability_topic": self.topics.state, "payload_available": ONLINE,
                "payload_not_available": OFFLINE}

    def tag_scanner(self, reader_id: str) -> tuple[str, bytes]:
        object_id = _ha_id(self.topics.node, reader_id)
        body = {"topic": self.topics.ha_tag(reader_id), "value_template": "{{ value_json.uid }}",
                "device": ha_device(self.topics.node, self.version)}
        return f"{self.ha_prefix}/tag/{object_id}/config", _dumps(body)

    def reader_connected(self, reader_id: str) -> tuple[str, bytes]:
        object_id = _ha_id(self.topics.node, reader_id, "connected")
        body = {"name": f"Reader {reader_id}", "unique_id": object_id, "object_id": object_id,
                "state_topic": self.topics.reader(reader_id), "value_template":
                "{{ 'ON' if value_json.connected else 'OFF' }}", "device_class": "connectivity",
                "device": ha_device(self.topics.node, self.version), **self._availability()}
        return f"{self.ha_prefix}/binary_sensor/{object_id}/config", _dumps(body)

    def node_sensors(self) -> list[tuple[str, bytes]]:
        out = []
        for key, name, icon in (("last_token", "Last token", "mdi:nfc"), ("now_playing", "Now playing", "mdi:gamepad")):
            object_id = _ha_id(self.topics.node, key)
            body = {"name": name, "unique_id": object_id, "object_id": object_id, "icon": icon,
                    "state_topic": self.topics.sensor, "value_template": f"{{{{ value_json.{key} }}}}",
                    "device": ha_device(self.topics.node, self.version), **self._availability()}
            out.append((f"{self.ha_prefix}/sensor/{object_id}/config", _dumps(body)))
        return out


def ha_tag_payload(token: Token) -> bytes:
    return _dumps({"uid": token.uid, "text": token.text})


def sensor_payload(last_token: str, now_playing: str) -> bytes:
    return _dumps({"last_token": last_token, "now_playing": now_playing})


# --- Zaparoo Core's MQTT publisher shape ---------------------------------------


def core_notification(method: str, params: Any) -> bytes:
    """A notification as Zaparoo Core's MQTT publisher sends it: ``{"method", "params"}``."""
    return _dumps({"method": method, "params": params})


def matches_filter(filters: list[str], method: str) -> bool:
    """Core's rule: an empty filter passes everything, else the method must be listed exactly."""
    return not filters or method in filters
