"""Who may use the API, and how (sans-I/O): Core's access model, with a safer default for the LAN.

- This machine (loopback) may do everything, always, without a key.
- Another machine:
  - WebSocket: a paired client that encrypts (first frame as Core's ``docs/api/encryption.md``) always may;
    a plaintext one may when it brings an API key (``[api] keys``) or its address is in ``allowed_ips`` — unless
    ``[service] encryption = true``, which (as in Core) refuses every plaintext remote WebSocket. Anyone else gets
    the JSON-RPC error -32002 "encryption required" on its first message, which tells the Zaparoo App to pair.
  - HTTP POST, server-sent events and ``GET /run/…``: only from an address in ``allowed_ips`` or with an API key
    (no encryption exists on these transports); when keys are configured a listed address needs one too, as in
    Core. ``/api/pair/*`` and ``/health`` are open (pairing is rate-limited and proves the PIN).
- Zaparoo Core accepts plaintext WebSockets from the whole LAN by default; tagd does not, so that nobody else on the
  network can launch, write tags or read history. ``allowed_ips = ["0.0.0.0/0", "::/0"]`` gives Core's old openness.

``allowed_ips`` entries are addresses or CIDR ranges (``192.168.1.0/24``); an ``address:port`` has its port ignored
(Core does the same). A request's caller is kept in :data:`CALLER` while its methods run, so methods that are
local-only (``clients``, ``clients.pair.start`` …) can ask.
"""

from __future__ import annotations

import ipaddress
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Iterable, Union

from tagd.web.admission import loopback_address as is_loopback_address, parse_ip  # noqa: F401  (re-exported)


def listens_beyond_loopback(host: str) -> bool:
    """An API bound to ``host`` can be reached from other machines: any address but a loopback one (the wildcard
    "", 0.0.0.0 and ::, a LAN address, a host name tagd does not resolve here)."""
    return not is_loopback_address(host)


IpNetwork = Union[ipaddress.IPv4Network, ipaddress.IPv6Network]

ENCRYPTION_REQUIRED = -32002
UNSUPPORTED_VERSION = -32001


@dataclass(frozen=True)
class Caller:
    """Who sent the request being answered."""
    local: bool = True  # loopback: physically at the device
    role: str = ""  # a paired client's role ("admin" / "member"); "" when not paired
    client_id: str = ""

    @property
    def paired(self) -> bool:
        return bool(self.role)


CALLER: ContextVar[Caller] = ContextVar("CALLER", default=Caller())


def parse_allowed(entry: str) -> IpNetwork:
    """One ``allowed_ips`` entry → a network; ValueError naming the entry when it is neither address nor CIDR."""
    text = entry.strip()
    if text.startswith("[") and "]" in text:  # [v6]:port
        text = text[1:text.index("]")]
    elif text.count(":") == 1:  # v4:port
        text = text.split(":")[0]
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise ValueError(f"{entry!r} is not an IP address or CIDR range (e.g. 192.168.1.20 or 192.168.1.0/24)") from None


class AccessPolicy:
    def __init__(self, allowed_ips: Iterable[str] = (), keys: Iterable[str] = (), encryption: bool = False) -> None:
        self.networks = [parse_allowed(e) for e in allowed_ips]
        self.keys = frozenset(keys)
        self.encryption = encryption

    def listed(self, peer: str) -> bool:
        ip = parse_ip(peer)
        return ip is not None and any(ip.version == n.version and ip in n for n in self.networks)

    def key_ok(self, key: str | None) -> bool:
        return bool(key) and key in self.keys

    def http_allowed(self, local: bool, peer: str, key: str | None) -> bool:
        """POST, SSE and GET /run from ``peer`` (``local``: it is this machine), with the API key it sent, if any."""
        if local or self.key_ok(key):
            return True
        return self.listed(peer) and not self.keys

    def plaintext_websocket(self, local: bool, peer: str, key: str | None) -> bool:
        """May this WebSocket connection talk plaintext JSON-RPC? (An encrypted paired client always may talk.)"""
        if local:
            return True
        if self.encryption:
            return False
        return self.http_allowed(local, peer, key)
