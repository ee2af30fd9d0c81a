"""Which connections the server takes when it is full: a sans-I/O policy (peers and states in, decisions out).

A connection slot held by a client that has not sent a whole request yet costs an attacker one byte a
second (slowloris); a cap on connections alone lets such clients take every slot, and then the user's own
App or a ``/health`` probe gets 503. So:

- a connection is *waiting* until its request head is whole, and again between keep-alive requests; it is
  *busy* while its request is handled (a WebSocket or an event stream stays busy for its whole life);
- when every slot is taken, a newcomer takes the slot of the longest-waiting connection — a stranger's first,
  a trusted peer's only when the newcomer is trusted too; busy connections are never pushed out;
- a stranger (a peer ``trusted`` does not vouch for: not loopback) holds at most ``per_ip`` connections
  from one address, and strangers together at most ``max_connections - reserved``, so this machine's
  clients always find a slot however many strangers connect;
- what is left is refused (the server answers 503 and closes).
"""

from __future__ import annotations

import ipaddress
from collections import Counter
from dataclasses import dataclass
from typing import Callable, Hashable

PER_IP = 64  # connections one stranger's address may hold (an App uses one WebSocket and a few requests)
RESERVED = 32  # slots strangers can never take


def parse_ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """A peer address as the socket gives it ("" / "fe80::1%eth0" / "::ffff:10.0.0.2") → an address, or None."""
    try:
        ip = ipaddress.ip_address(text.split("%")[0])
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip


def loopback_address(host: str) -> bool:
    """``host`` is this machine (127.0.0.0/8, ::1, or 127.x seen through a dual-stack IPv6 socket)."""
    ip = parse_ip(host)
    return ip is not None and ip.is_loopback


@dataclass
class _Slot:
    peer: str
    trusted: bool
    since: float  # when it last became waiting
    busy: bool = False


@dataclass(frozen=True)
class Verdict:
    """``admit`` False: refuse with ``reason``; True: take the connection, first closing ``evict`` if set."""

    admit: bool
    evict: Hashable | None = None
    reason: str = ""


class Admission:
    def __init__(self, max_connections: int, trusted: Callable[[str], bool], *, per_ip: int = PER_IP,
                 reserved: int = RESERVED) -> None:
        self.max_connections = max_connections
        self.trusted = trusted
        self.per_ip = per_ip
        self.reserved = min(reserved, max_connections // 2)
        self._slots: dict[Hashable, _Slot] = {}
        self._strangers: Counter[str] = Counter()  # stranger address → its slots
        self.evicted = 0  # waiting connections pushed out so far (diagnostics, the bench)
        self.refused = 0

    def __len__(self) -> int:
        return len(self._slots)

    def arrive(self, key: Hashable, peer: str, now: float) -> Verdict:
        """A new connection from ``peer``; when admitted it holds a slot (waiting) until :meth:`leave`."""
        trusted = self.trusted(peer)
        verdict = self._judge(peer, trusted)
        if verdict.admit:
            if verdict.evict is not None:
                self.leave(verdict.evict)
                self.evicted += 1
            self._slots[key] = _Slot(peer, trusted, now)
            if not trusted:
                self._strangers[peer] += 1
        else:
            self.refused += 1
        return verdict

    def _judge(self, peer: str, trusted: bool) -> Verdict:
        if not trusted:
            if self._strangers[peer] >= self.per_ip:
                return Verdict(False, reason=f"too many connections from {peer}")
            if self._strangers.total() >= self.max_connections - self.reserved:
                victim = self._longest_waiting(strangers_only=True)
                return Verdict(True, victim) if victim is not None else Verdict(False, reason="too many connections")
        if len(self._slots) < self.max_connections:
            return Verdict(True)
        victim = self._longest_waiting(strangers_only=not trusted)
        return Verdict(True, victim) if victim is not None else Verdict(False, reason="too many connections")

    def _longest_waiting(self, strangers_only: bool) -> Hashable | None:
        best: tuple[bool, float] | None = None
        found: Hashable | None = None
        for key, slot in self._slots.items():
            if slot.busy or (strangers_only and slot.trusted):
                continue
            rank = (slot.trusted, slot.since)  # strangers first, then the longest waiting
            if best is None or rank < best:
                best, found = rank, key
        return found

    def busy(self, key: Hashable, busy: bool, now: float) -> None:
        """The connection's request head is whole (True), or its answer is sent and it waits again (False)."""
        slot = self._slots.get(key)
        if slot is not None:
            slot.busy = busy
            if not busy:
                slot.since = now

    def leave(self, key: Hashable) -> None:
        slot = self._slots.pop(key, None)
        if slot is not None and not slot.trusted:
            self._strangers[slot.peer] -= 1
            if not self._strangers[slot.peer]:
                del self._strangers[slot.peer]
