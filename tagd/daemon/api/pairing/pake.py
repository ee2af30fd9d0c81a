"""PAKE2 on P-256, byte-compatible with schollz/pake v3 as Zaparoo Core uses it for pairing (sans-I/O).

Both sides know a weak secret ``pw`` (the 6-digit PIN as ASCII bytes) and two fixed points U, V (schollz/pake's
P-256 constants, which every Zaparoo client hard-codes). The client (role 0) sends ``X = pw·U + a·G``; the server
(role 1) answers ``Y = pw·V + b·G`` and computes ``Z = b·(X − pw·U)``; the client computes ``Z = a·(Y − pw·V)``.
Both hash ``sha256(pw ‖ Xx ‖ Xy ‖ Yx ‖ Yy ‖ Zx ‖ Zy)`` into the session key, each coordinate as Go's
``big.Int.Bytes()`` writes it: big-endian with no leading zeros (zero is no bytes). The point at infinity is
Go's (0, 0). A scalar given as bytes is their big-endian integer reduced mod the group order, as Go's
``elliptic`` does. Nothing proves the other side knew the PIN here: the HMAC transcript (session.py) does.

The wire message is Core's JSON: ``role`` a number, the eight coordinates ``ux uy vx vy xx xy yx yy`` as decimal
strings (``"0"`` for a point not computed yet), in the order Go marshals them. Point arithmetic is the ``ecdsa``
package's; nothing here does field arithmetic of its own.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from dataclasses import dataclass

from ecdsa.curves import NIST256p
from ecdsa.ellipticcurve import INFINITY, PointJacobi

CURVE_NAME = "p256"
CLIENT, SERVER = 0, 1
MAX_MESSAGE = 2048  # Core refuses longer PAKE messages (a real one is ~600 bytes)

_CURVE = NIST256p.curve
_ORDER = NIST256p.order
# schollz/pake v3's fixed P-256 points (its initCurve("p256")); the spec's example message carries them too
U = (793136080485469241208656611513609866400481671852,
     59748757929350367369315811184980635230185250460108398961713395032485227207304)
V = (1086685267857089638167386722555472967068468061489,
     9157340230202296554417312816309453883742349874205386245733062928888341584123)
FIELDS = ("ux", "uy", "vx", "vy", "xx", "xy", "yx", "yy")
_DIGITS = re.compile(r"[0-9]{1,200}\Z")

Affine = tuple[int, int]


class PakeError(ValueError):
    """A PAKE message that cannot be used: malformed JSON, a bad coordinate, a point off the curve, wrong role."""


def on_curve(point: Affine) -> bool:
    """True for a point of P-256 in range (Go's IsOnCurve: coordinates in [0, p), (0, 0) is not on it)."""
    x, y = point
    return 0 <= x < _CURVE.p() and 0 <= y < _CURVE.p() and bool(_CURVE.contains_point(x, y))


def _jacobi(point: Affine) -> PointJacobi:
    if point == (0, 0):
        return INFINITY
    return PointJacobi(_CURVE, point[0], point[1], 1, _ORDER)


def _affine(point: PointJacobi) -> Affine:
    if point == INFINITY:
        return (0, 0)
    return (point.x(), point.y())


def _go_bytes(n: int) -> bytes:
    """``big.Int.Bytes()``: big-endian, no leading zeros; zero is empty."""
    return n.to_bytes((n.bit_length() + 7) // 8, "big")


def scalar(data: bytes) -> int:
    """A byte string as Go's elliptic takes a scalar: big-endian, reduced mod the group order."""
    return int.from_bytes(data, "big") % _ORDER


@dataclass(frozen=True)
class PakeMessage:
    """One side's public values as sent on the wire."""
    role: int
    u: Affine = U
    v: Affine = V
    x: Affine = (0, 0)
    y: Affine = (0, 0)

    def encode(self) -> bytes:
        """Compact JSON in Go's field order; coordinates as decimal strings."""
        values = [*self.u, *self.v, *self.x, *self.y]
        body = {name: str(value) for name, value in zip(FIELDS, values)}
        body["role"] = self.role
        return json.dumps(body, separators=(",", ":")).encode()

    @classmethod
    def decode(cls, data: bytes) -> PakeMessage:
        """Parse a wire message; PakeError naming what is wrong. Only the format is checked here."""
        if len(data) > MAX_MESSAGE:
            raise PakeError(f"PAKE message over {MAX_MESSAGE} bytes")
        try:
            obj = json.loads(data)
        except (ValueError, UnicodeDecodeError):
            raise PakeError("PAKE message is not JSON") from None
        if not isinstance(obj, dict):
            raise PakeError("PAKE message is not a JSON object")
        role = obj.get("role", 0)
        if type(role) is not int or role not in (CLIENT, SERVER):
            raise PakeError("PAKE message role must be 0 or 1")
        numbers = []
        for name in FIELDS:
            text = obj.get(name)
            if not isinstance(text, str) or not _DIGITS.match(text):
                raise PakeError(f"PAKE message field {name!r} must be a decimal integer string")
            numbers.append(int(text))
        return cls(role, (numbers[0], numbers[1]), (numbers[2], numbers[3]), (numbers[4], numbers[5]),
                   (numbers[6], numbers[7]))


class Pake:
    """One side of the exchange. ``message()`` is what to send; ``update(peer_message)`` derives ``session_key``.

    ``secret`` (the random scalar a or b) is for known-answer tests only; by default it is drawn from
    ``secrets``. The PIN is kept only until the key is derived.
    """

    def __init__(self, pin: str | bytes, role: int, secret: int | None = None) -> None:
        if role not in (CLIENT, SERVER):
            raise ValueError("role must be 0 (client) or 1 (server)")
        self.role = role
        self._pw = pin.encode() if isinstance(pin, str) else bytes(pin)
        self._secret = secret if secret is not None else 1 + secrets.randbelow(_ORDER - 1)
        self._x: Affine = (0, 0)
        self._y: Affine = (0, 0)
        self.session_key: bytes | None = None
        if role == CLIENT:
            mine = _jacobi(U) * scalar(self._pw) + NIST256p.generator * self._secret
            self._x = _affine(mine)

    def message(self) -> bytes:
        return PakeMessage(self.role, x=self._x, y=self._y).encode()

    def update(self, peer: bytes) -> None:
        """Take the other side's message; PakeError if it cannot be used (then this exchange is over)."""
        if self.session_key is not None:
            raise PakeError("PAKE exchange already complete")
        msg = PakeMessage.decode(peer)
        if msg.role == self.role:
            raise PakeError("PAKE message has this side's own role")
        pw = scalar(self._pw)
        if self.role == SERVER:
            if not on_curve(msg.x):
                raise PakeError("PAKE message X is not a point of P-256")
            self._x = msg.x
            self._y = _affine(_jacobi(V) * pw + NIST256p.generator * self._secret)
            z = (_jacobi(msg.x) + -(_jacobi(U) * pw)) * self._secret
        else:
            if not on_curve(msg.y):
                raise PakeError("PAKE message Y is not a point of P-256")
            self._y = msg.y
            z = (_jacobi(msg.y) + -(_jacobi(V) * pw)) * self._secret
        zx, zy = _affine(z)
        parts = [self._pw, *map(_go_bytes, (*self._x, *self._y, zx, zy))]
        self.session_key = hashlib.sha256(b"".join(parts)).digest()
        self._pw, self._secret = b"", 0
