"""A write armed by ``**write:TEXT`` and done to the next tag tapped (Zaparoo Core's pending write, done by tagd).

Core's rules (service/pending_write.go), which tagd keeps:

- one pending write at a time; arming another replaces it; it lapses after :data:`PENDING_WRITE_TTL` seconds;
- the next tag *other than the one that armed it* is written: the arming tag seen again (same UID, or the same
  token) leaves the write armed and launches nothing — the user is still holding the card that says "write";
- that next tag is not launched: it is written on the reader that saw it, and only that tag (its UID), never
  the arming one; the written tag is then seen with its new text and, being just written, not launched either;
- a lapsed write is dropped and the tap goes on as usual.
"""

from __future__ import annotations

from dataclasses import dataclass

from tagd.readers.base import WriteRequest
from tagd.token import Token, normalize_uid

PENDING_WRITE_TTL = 60.0  # seconds (Core: one minute)
WRITE_TIMEOUT = 5.0  # the tag is on the reader already: a write that cannot start at once will not


@dataclass(frozen=True)
class PendingWrite:
    text: str
    source: Token  # the token whose script armed it
    armed_at: float  # pipeline clock

    def expired(self, now: float) -> bool:
        return now - self.armed_at > PENDING_WRITE_TTL

    def is_source(self, token: Token) -> bool:
        """The arming tag again: the same physical tag (a UID, equal) or the same token."""
        uid = normalize_uid(token.uid)
        return bool(uid) and uid == normalize_uid(self.source.uid) or token.key == self.source.key

    def request(self, target: Token) -> WriteRequest:
        """The write for this tag only, never the arming one."""
        source_uid = normalize_uid(self.source.uid)
        return WriteRequest(self.text, target_uid=normalize_uid(target.uid) or None,
                            exclude_uids=frozenset({source_uid}) if source_uid else frozenset(),
                            timeout=WRITE_TIMEOUT)
