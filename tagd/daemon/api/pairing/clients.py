"""A paired API client as stored (no crypto imports: the store and the ``clients`` method use it at any time)."""

from __future__ import annotations

from dataclasses import dataclass, field

ROLES = ("admin", "member")


@dataclass
class PairedClient:
    client_id: str
    name: str
    auth_token: str  # not secret (sent in clear on every first frame), it finds the key
    pairing_key: bytes = field(repr=False)  # secret: never logged, never answered
    role: str = "member"
    created_at: int = 0
    last_seen_at: int = 0

    def public(self) -> dict[str, object]:
        """What the ``clients`` method shows: no token, no key."""
        return {"clientId": self.client_id, "clientName": self.name, "role": self.role,
                "createdAt": self.created_at, "lastSeenAt": self.last_seen_at}
