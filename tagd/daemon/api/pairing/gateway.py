"""Opening encrypted WebSocket sessions (sans-I/O): the first frame → a :class:`FrameCipher`, with Core's guards.

- a salt is used once per client: the server remembers up to 200 per client for 10 minutes and refuses a repeat
  (a replayed first frame would otherwise open a session the attacker cannot read but could make act);
- 10 consecutive failed first frames for one (auth token, IP) block that pair for 30 s, doubling each time up to
  30 minutes; a success lowers the doubling by one step. Unknown tokens are not tracked (a flood of invented
  tokens must not fill the table).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Generic, Protocol, TypeVar

from tagd.daemon.api.pairing.session import PROTOCOL_VERSION, FirstFrame, FrameCipher, FrameError, b64decode

MAX_SALTS = 200
SALT_WINDOW = 600.0
FAIL_THRESHOLD = 10
BLOCK = 30.0
MAX_BLOCK = 1800.0
MAX_TRACKED = 10_000


class UnsupportedVersion(FrameError):
    """A first frame of a protocol version this server does not speak (answered -32001, in plaintext)."""


class Refused(FrameError):
    """A first frame refused before decryption: unknown token, blocked, repeated salt."""


class KeyHolder(Protocol):
    auth_token: str
    pairing_key: bytes


C = TypeVar("C", bound=KeyHolder)


@dataclass
class _Failures:
    count: int = 0
    blocks: int = 0
    blocked_until: float = 0.0
    last: float = 0.0


class EncryptionGateway(Generic[C]):
    def __init__(self, lookup: Callable[[str], C | None], clock: Callable[[], float] = time.monotonic) -> None:
        self.lookup = lookup
        self.clock = clock
        self._salts: dict[str, dict[bytes, float]] = {}
        self._failures: dict[tuple[str, str], _Failures] = {}

    def establish(self, frame: FirstFrame, ip: str) -> tuple[FrameCipher, bytes, C]:
        """The first frame from ``ip`` → (cipher for the connection, the request it carried, the client).

        Raises UnsupportedVersion, Refused or FrameError; on any of them the connection is closed."""
        if frame.version != PROTOCOL_VERSION:
            raise UnsupportedVersion(f"unsupported encryption version {frame.version}")
        key = (frame.token, ip)
        now = self.clock()
        failures = self._failures.get(key)
        if failures is not None and now < failures.blocked_until:
            raise Refused("blocked after repeated failed frames")
        client = self.lookup(frame.token)
        if client is None:
            raise Refused("unknown auth token")
        seen = self._salts.setdefault(client.auth_token, {})
        self._forget_salts(seen, now)
        if frame.salt in seen:
            raise Refused("session salt used before")
        try:
            cipher = FrameCipher(client.pairing_key, client.auth_token, frame.salt, "server")
            plaintext = cipher.open_ciphertext(b64decode(frame.ciphertext, "frame 'e'"))
        except (FrameError, ValueError) as exc:
            self._fail(key, now)
            raise FrameError(str(exc)) from None
        seen[frame.salt] = now
        if failures is not None:
            failures.count, failures.blocks = 0, max(0, failures.blocks - 1)
        return cipher, plaintext, client

    def _forget_salts(self, seen: dict[bytes, float], now: float) -> None:
        for salt in [s for s, t in seen.items() if now - t > SALT_WINDOW]:
            del seen[salt]
        while len(seen) >= MAX_SALTS:
            del seen[min(seen, key=seen.__getitem__)]
        if len(self._salts) > MAX_TRACKED:
            self._salts = {k: v for k, v in self._salts.items() if v}

    def _fail(self, key: tuple[str, str], now: float) -> None:
        if key not in self._failures and len(self._failures) >= MAX_TRACKED:
            del self._failures[min(self._failures, key=lambda k: self._failures[k].last)]
        f = self._failures.setdefault(key, _Failures())
        f.count += 1
        f.last = now
        if f.count >= FAIL_THRESHOLD:
            f.blocked_until = now + min(BLOCK * (1 << min(f.blocks, 10)), MAX_BLOCK)
            f.blocks += 1
            f.count = 0
