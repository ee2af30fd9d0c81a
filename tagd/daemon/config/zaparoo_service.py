"""Zaparoo Core's ``[service]`` table, so a Core user's config.toml loads as it is, each key read as Core reads it.

tagd's own ``[api]`` table came first; ``[service]`` is Core's spelling of the same concerns (where the API
listens, who may connect, discovery) plus Core's hooks, publishers and Zaparoo Online keys (documented in
zaparoo.org's config reference, some newer than Core's pkg/config). The values are checked here; what the
daemon does with them lives with the feature (pairing and access, discovery, the API server). Where Core skips
a bad value with a log line (an allowed_ips entry that is no address), tagd refuses the file naming the key:
a typo in an access list must not silently open or close the door.

Core's meanings, for the helpers below: ``api_port`` (default 7497) and ``api_listen`` (a host; a value that
already has a port is ignored, the port comes from ``api_port``) give the address ``api_listen:api_port``, every
interface when api_listen is empty. ``allowed_ips`` entries are IPs, ``IP:port`` (the port is dropped) or
CIDR ranges. ``discovery.enabled`` defaults to on.
"""

from __future__ import annotations

import ipaddress
from typing import Union

from pydantic import Field, field_validator

from tagd.daemon.config.checks import Bool, Int, Section, check_each, check_printable

DEFAULT_API_PORT = 7497  # Core's
MIN_API_PORT = 1024  # Core refuses lower ports for the API (0 = any free port, as Core allows it)

Network = Union[ipaddress.IPv4Network, ipaddress.IPv6Network]


class Discovery(Section):
    """``[service.discovery]``: mDNS advertisement (``_zaparoo._tcp``); on unless ``enabled = false``."""

    enabled: Bool | None = None
    instance_name: str = ""

    @property
    def on(self) -> bool:
        return self.enabled is None or self.enabled


class MqttPublisher(Section):
    """``[[service.publishers.mqtt]]``: Core publishes its notifications to this broker and topic."""

    enabled: Bool | None = None
    broker: str = ""
    topic: str = ""
    filter: list[str] = []


class PixelCadePublisher(Section):
    """``[[service.publishers.pixelcade]]``: Core shows the running game's marquee on a PixelCade display."""

    enabled: Bool | None = None
    host: str = ""
    mode: str = ""
    filter: list[str] = []
    port: Int = Field(default=0, ge=0, le=65535)


class RemoteControl(Section):
    """``[service.remote_control]``: commands from apps authorised through Zaparoo Online (off by default)."""

    enabled: Bool = False


class Publishers(Section):
    mqtt: list[MqttPublisher] = []
    pixelcade: list[PixelCadePublisher] = []


def parse_allowed_ip(entry: str) -> Network:
    """One ``allowed_ips`` entry as Core reads it: ``192.168.1.20``, ``192.168.1.20:7497`` (the port is dropped),
    ``[::1]:7497``, ``192.168.1.0/24`` (host bits allowed, as Go's ParseCIDR); ValueError if it is none of these."""
    text = entry.strip()
    host = text
    if text.startswith("[") and "]:" in text:
        host = text[1:text.index("]:")]
    elif text.count(":") == 1:  # IPv4 with a port (an IPv6 address has several colons)
        host = text.rpartition(":")[0]
    try:
        return ipaddress.ip_network(host, strict=False)
    except ValueError:
        raise ValueError(f"{entry!r} is not an IP address or CIDR range (e.g. 192.168.1.20, 192.168.1.0/24)") from None


class ZaparooService(Section):
    """``[service]``."""

    api_port: Int | None = None
    api_listen: str = ""
    device_id: str = ""
    on_boot: str = ""  # ZapScript Core runs when it starts
    on_ready: str = ""  # ZapScript Core runs when its API is ready
    allow_run: list[str] = []  # regexes: ZapScript the API's `run` may run unasked (Core's allow list)
    allowed_origins: list[str] = []
    allowed_ips: list[str] = []
    encryption: Bool = False  # remote WebSocket clients must be paired (encrypted); loopback is always exempt
    discovery: Discovery = Discovery()
    publishers: Publishers = Publishers()
    # Zaparoo Online (account linking, cloud backup, remote control) is Core's service, not tagd's: these load so
    # a Core file does, and tagd makes no request to it whatever they say.
    online_base_url: str = ""
    internet_check: Bool = True
    remote_control: RemoteControl = RemoteControl()

    @field_validator("api_port")
    @classmethod
    def _port(cls, v: int | None) -> int | None:
        if v is not None and v != 0 and not MIN_API_PORT <= v <= 65535:
            raise ValueError(f"must be a port from {MIN_API_PORT} to 65535 (Core ignores {v} and uses "
                             f"{DEFAULT_API_PORT}), not {v}")
        return v

    @field_validator("api_listen")
    @classmethod
    def _host(cls, v: str) -> str:
        if v:
            check_printable(v, "must be a host name or IP address to listen on, e.g. 0.0.0.0")
        return v

    @field_validator("allowed_ips")
    @classmethod
    def _ips(cls, v: list[str]) -> list[str]:
        check_each(v, parse_allowed_ip)
        return v

    @field_validator("allow_run")
    @classmethod
    def _regexes(cls, v: list[str]) -> list[str]:
        check_each(v, _regex)
        return v

    @property
    def port(self) -> int:
        """The API port as Core computes it (7497 unless api_port is set)."""
        return DEFAULT_API_PORT if self.api_port is None else self.api_port

    @property
    def listen(self) -> str:
        """Core's API address as tagd writes one (``HOST:PORT``, ``:PORT`` = every interface)."""
        host = self.api_listen.strip()
        if not host or _has_port(host):  # Core ignores a listen value that carries its own port
            return f":{self.port}"
        return f"[{host}]:{self.port}" if ":" in host else f"{host}:{self.port}"

    @property
    def configured_listen(self) -> bool:
        """True when the file sets where Core's API listens (api_port or api_listen)."""
        return self.api_port is not None or bool(self.api_listen.strip())

    def allowed_networks(self) -> list[Network]:
        """``allowed_ips`` parsed (IPs as one-address networks)."""
        return [parse_allowed_ip(entry) for entry in self.allowed_ips]


def _regex(pattern: str) -> None:
    from tagd.daemon.mappings import MappingError, compile_regex  # google-re2 only when allow_run is set

    try:
        compile_regex(pattern)
    except MappingError as exc:
        raise ValueError(exc.reason) from None


def _has_port(host: str) -> bool:
    """Go's net.SplitHostPort succeeds: ``host:port``, ``[v6]:port`` (a bare IPv6 address has too many colons)."""
    if host.startswith("["):
        return "]:" in host
    return host.count(":") == 1
