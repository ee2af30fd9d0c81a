"""Zaparoo Core's ``[service]`` table, so a Core user's config.toml loads as it is, each key read as Core reads it.

tagd's own ``[api]`` table came first; ``[service]`` is Core's spelling of the same concerns (where the API
listens, who may connect, discovery) plus Core's hooks, publishers and Zaparoo Online keys (documented in
zaparoo.org's config reference, some newer than Core's pkg/config). The API's keys are served with Core's
meaning: ``api_port`` / ``api_listen`` set ``[api] listen`` (``Config``'s validator), ``allowed_ips`` and
``encryption`` are the access policy's (api/access.py), ``discovery`` starts mDNS, ``allowed_origins`` joins
``[api] allowed_origins``, ``publishers.mqtt`` publishes tagd's notifications as Core does (fabric/node.py).
Core's others load and do nothing here: tagd has no boot hooks, PixelCade publisher or Zaparoo Online client of
its own, and makes no request to Zaparoo Online whatever they say.

Core's rules, for the helpers below: ``api_port`` (default 7497, 1024-65535) and ``api_listen`` (a host; a value
that already has a port is ignored, the port comes from ``api_port``) give ``api_listen:api_port``, every
interface when api_listen is empty. ``allowed_ips`` entries are IPs, ``IP:port`` (the port is dropped) or CIDR
ranges; where Core skips a bad one with a log line, tagd refuses the file naming the key (a typo in an access
list must not silently open or close the door).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, Strict, field_validator, model_validator

from tagd.daemon.api.access import IpNetwork, parse_allowed
from tagd.daemon.config.checks import Bool, Int, Section, check_each, parse_listen

DEFAULT_API_PORT = 7497  # Core's


class Discovery(Section):
    enabled: Bool = True  # advertise _zaparoo._tcp over mDNS (when the API listens beyond loopback)
    instance_name: str = ""  # default: the host name
    interfaces: list[str] = []  # tagd's: addresses to advertise on (default: every LAN interface's)


class MqttPublisher(Section):
    """``[[service.publishers.mqtt]]``: Core publishes its notifications to this broker and topic."""

    enabled: Bool | None = None
    broker: str = ""
    topic: str = ""
    filter: list[str] = []

    @model_validator(mode="after")
    def _usable(self) -> "MqttPublisher":
        """Core logs and skips a publisher it cannot start; tagd says which key is wrong when the file loads."""
        if self.enabled is False:
            return self
        if not self.broker or not self.topic:
            raise ValueError("an MQTT publisher needs a broker (host:port, mqtt:// or mqtts://) and a topic")
        from tagd.daemon.fabric.topics import parse_mqtt_path  # pure: no paho at config load

        try:
            parse_mqtt_path(self.broker.rstrip("/") + "/" + self.topic)
        except ValueError as exc:
            raise ValueError(f"broker {self.broker!r}: {exc}") from None
        if any(c in self.topic for c in "+#"):
            raise ValueError(f"topic {self.topic!r}: a publisher's topic cannot have wildcards")
        return self


class PixelCadePublisher(Section):
    """``[[service.publishers.pixelcade]]``: Core shows the running game's marquee on a PixelCade display."""

    enabled: Bool | None = None
    host: str = ""
    mode: str = ""
    filter: list[str] = []
    port: Int = Field(default=0, ge=0, le=65535)


class Publishers(Section):
    mqtt: list[MqttPublisher] = []
    pixelcade: list[PixelCadePublisher] = []


class RemoteControl(Section):
    """``[service.remote_control]``: commands from apps authorised through Zaparoo Online (off by default)."""

    enabled: Bool = False


class Service(Section):
    """Core's ``[service]`` table (a Core config.toml always has ``device_id``)."""

    api_port: Annotated[int, Strict(), Field(ge=1024, le=65535)] | None = None  # Core's range
    api_listen: str = ""  # a host (or address) to listen on; with a port in it, Core ignores it, so does tagd
    allowed_ips: list[str] = []  # addresses or CIDR ranges let in without pairing or a key
    encryption: Bool = False  # true: remote WebSockets must be paired, encrypted clients
    discovery: Discovery = Discovery()
    allowed_origins: list[str] = []  # Core's place for [api] allowed_origins: both lists count
    device_id: str = ""  # Core's own identity; tagd has its own
    on_boot: str = ""  # ZapScript Core runs when it starts
    on_ready: str = ""  # ZapScript Core runs when its API is ready
    allow_run: list[str] = []  # regexes of ZapScript Core's `run` may run (Core skips one it cannot compile)
    publishers: Publishers = Publishers()
    online_base_url: str = ""
    internet_check: Bool = True
    remote_control: RemoteControl = RemoteControl()

    @field_validator("allowed_ips")
    @classmethod
    def _networks(cls, v: list[str]) -> list[str]:
        check_each(v, parse_allowed)
        return v

    @field_validator("api_listen")
    @classmethod
    def _listen_host(cls, v: str) -> str:
        if v and not _has_port(v):
            parse_listen(f"[{v}]:0" if ":" in v else f"{v}:0")
        return v

    def listen(self) -> str | None:
        """The ``HOST:PORT`` these keys ask for, as Core builds it; None when neither key is set."""
        if self.api_port is None and not self.api_listen:
            return None
        port = self.api_port or DEFAULT_API_PORT
        host = "" if _has_port(self.api_listen) else self.api_listen
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

    def allowed_networks(self) -> list[IpNetwork]:
        """``allowed_ips`` parsed (an address as a one-address network)."""
        return [parse_allowed(entry) for entry in self.allowed_ips]


def _has_port(value: str) -> bool:
    """``host:port`` or ``[v6]:port`` (what Go's SplitHostPort accepts); a bare IPv6 address has no port."""
    if value.startswith("["):
        return "]:" in value
    return value.count(":") == 1
