"""The pairing state machine (sans-I/O): one PIN at a time, PAKE sessions, limits, and the new client it yields.

Limits as Core's (``docs/api/encryption.md``): a 6-digit PIN from ``secrets`` lives 5 minutes; a ``/pair/start``
session 2 minutes; 3 failed confirmations across all sessions of one PIN invalidate it; a client name is 1–128
bytes; at most 50 paired clients. Errors carry the HTTP status Core answers (:data:`STATUS`), so the transport
only maps them. The clock is a parameter so tests need no sleeps. Storing the client is the caller's job, through
the two-method :class:`ClientCount`/``add`` protocol.
"""

from __future__ import annotations

import hmac
import secrets
import time
import uuid
from dataclasses import dataclass, field
from typing import Callable, Protocol

from tagd.daemon.api.pairing.clients import ROLES, PairedClient
from tagd.daemon.api.pairing.pake import SERVER, Pake, PakeError
from tagd.daemon.api.pairing.session import PairingKeys, transcript_mac

PIN_DIGITS = 6
PIN_TTL = 300.0
SESSION_TTL = 120.0
MAX_ATTEMPTS = 3
MAX_CLIENTS = 50
MAX_NAME = 128


class PairingError(Exception):
    """A refused pairing step: ``status`` is the HTTP status, ``message`` the ``{"error": …}`` text."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


class ClientStore(Protocol):
    def count_clients(self) -> int: ...
    def add_client(self, client: PairedClient) -> None: ...


@dataclass
class _Session:
    created: float
    name: str
    role: str
    msg_a: bytes
    msg_b: bytes
    keys: PairingKeys = field(repr=False)


class PairingManager:
    def __init__(self, store: ClientStore, clock: Callable[[], float] = time.monotonic,
                 pin_ttl: float = PIN_TTL, max_clients: int = MAX_CLIENTS) -> None:
        self.store = store
        self.clock = clock
        self.pin_ttl = pin_ttl
        self.max_clients = max_clients
        self._pin = ""
        self._expires = 0.0
        self._attempts = 0
        self._role = "member"
        self._sessions: dict[str, _Session] = {}

    # --- the local side: show a PIN ------------------------------------------------
    def pending(self) -> tuple[str, float] | None:
        """The PIN being shown and when (on this clock) it expires; None when no pairing is open."""
        if self._pin and self.clock() < self._expires:
            return self._pin, self._expires
        return None

    def begin(self, role: str = "") -> tuple[str, float]:
        """A new PIN for one pairing. The first client is admin whatever was asked (someone must be able to manage
        the rest); later ones get ``role``, member by default (as Core)."""
        if self.pending():
            raise PairingError(409, "pairing already in progress")
        count = self.store.count_clients()
        if count >= self.max_clients:
            raise PairingError(403, "maximum paired clients reached")
        role = "admin" if count == 0 else role or "member"
        if role not in ROLES:
            raise PairingError(400, f"invalid role: {role} (admin or member)")
        self.cancel()
        self._pin = f"{secrets.randbelow(10 ** PIN_DIGITS):0{PIN_DIGITS}d}"
        self._expires = self.clock() + self.pin_ttl
        self._role = role
        return self._pin, self._expires

    def cancel(self) -> None:
        self._pin, self._expires, self._attempts = "", 0.0, 0
        self._sessions.clear()

    # --- the remote side: POST /api/pair/start and /finish -------------------------------
    def start(self, name: str, msg_a: bytes) -> tuple[str, bytes]:
        """The client's PAKE message → (session id, the server's message)."""
        if not name:
            raise PairingError(400, "client name required")
        if len(name.encode()) > MAX_NAME:
            raise PairingError(400, "client name too long")
        if not self._pin:
            raise PairingError(400, "no pairing in progress")
        if self.clock() >= self._expires:
            self.cancel()
            raise PairingError(410, "pairing expired")
        if self._attempts >= MAX_ATTEMPTS:
            self.cancel()
            raise PairingError(403, "too many failed attempts")
        self.expire()  # the PIN is current: this drops sessions left unfinished for over SESSION_TTL
        pin = self._pin
        server = Pake(pin, SERVER)
        try:
            server.update(msg_a)
        except PakeError as exc:
            raise PairingError(400, f"invalid PAKE message: {exc}") from None
        msg_b = server.message()
        assert server.session_key is not None
        if self._pin != pin:  # cancelled (or a new PIN shown) while the PAKE arithmetic ran
            raise PairingError(400, "no pairing in progress")
        session_id = str(uuid.uuid4())
        self._sessions[session_id] = _Session(self.clock(), name, self._role, bytes(msg_a), msg_b,
                                              PairingKeys.derive(server.session_key, msg_a, msg_b))
        return session_id, msg_b

    def finish(self, session_id: str, confirm: bytes) -> tuple[PairedClient, bytes]:
        """The client's confirmation → (the new client, to be stored by the caller already, the server's MAC)."""
        session = self._sessions.pop(session_id, None) if isinstance(session_id, str) else None
        if session is None:
            raise PairingError(404, "unknown pairing session")
        if self.clock() - session.created > SESSION_TTL:
            raise PairingError(410, "pairing expired")
        expected = transcript_mac(session.keys.confirm_a, "client", session.name, session.msg_a, session.msg_b)
        if not hmac.compare_digest(expected, confirm):
            self._attempts += 1
            if self._attempts >= MAX_ATTEMPTS:
                self.cancel()
                raise PairingError(403, "too many failed attempts")
            raise PairingError(401, "wrong PIN")
        if self.store.count_clients() >= self.max_clients:
            raise PairingError(403, "maximum paired clients reached")  # the PIN stays: remove a client, retry
        now = int(time.time())
        client = PairedClient(str(uuid.uuid4()), session.name, str(uuid.uuid4()), session.keys.pairing_key,
                              session.role, now, now)
        self.store.add_client(client)
        server_mac = transcript_mac(session.keys.confirm_b, "server", session.name, session.msg_a, session.msg_b)
        self.cancel()
        return client, server_mac

    def expire(self) -> None:
        """Drop an expired PIN and stale sessions (at each start, so unfinished ones cannot pile up; finish checks
        a session's age itself too)."""
        now = self.clock()
        if self._pin and now >= self._expires:
            self.cancel()
        for sid in [s for s, sess in self._sessions.items() if now - sess.created > SESSION_TTL]:
            del self._sessions[sid]


class RateLimit:
    """A token bucket per key (the client's IP): ``rate`` per second, ``burst`` at once. Core: 1/s, burst 1
    on ``/api/pair/*``. Keys unseen for ``forget`` seconds are dropped so the table stays small."""

    def __init__(self, rate: float = 1.0, burst: int = 1, clock: Callable[[], float] = time.monotonic,
                 forget: float = 600.0, max_keys: int = 10_000) -> None:
        self.rate, self.burst, self.clock, self.forget, self.max_keys = rate, burst, clock, forget, max_keys
        self._buckets: dict[str, tuple[float, float]] = {}

    def allow(self, key: str) -> bool:
        now = self.clock()
        if len(self._buckets) >= self.max_keys:
            self._buckets = {k: v for k, v in self._buckets.items() if now - v[1] < self.forget}
            if len(self._buckets) >= self.max_keys:
                self._buckets.pop(next(iter(self._buckets)))
        tokens, last = self._buckets.get(key, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - last) * self.rate)
        if tokens < 1.0:
            self._buckets[key] = (tokens, now)
            return False
        self._buckets[key] = (tokens - 1.0, now)
        return True
