"""A Zaparoo API client written from Core's ``docs/api/encryption.md`` alone — it imports nothing of tagd.

It plays the App's part: PAKE2 role 0 on P-256 with schollz/pake's U and V, ``/api/pair/start`` and
``/api/pair/finish``, then encrypted WebSocket frames. Tests run it against tagd's server so the two sides are two
readings of the same document, not one implementation talking to itself.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import struct

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from ecdsa.curves import NIST256p
from ecdsa.ellipticcurve import PointJacobi

P256 = NIST256p.curve
N = NIST256p.order
G = NIST256p.generator
UX, UY = 793136080485469241208656611513609866400481671852, 59748757929350367369315811184980635230185250460108398961713395032485227207304
VX, VY = 1086685267857089638167386722555472967068468061489, 9157340230202296554417312816309453883742349874205386245733062928888341584123


def point(x: int, y: int) -> PointJacobi:
    assert P256.contains_point(x, y), "not a P-256 point"
    return PointJacobi(P256, x, y, 1, N)


def minimal(n: int) -> bytes:
    return n.to_bytes((n.bit_length() + 7) // 8, "big")


def expand(ikm: bytes, salt: bytes, info: str, n: int) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=n, salt=salt, info=info.encode()).derive(ikm)


def lp(*fields: bytes) -> bytes:
    return b"".join(struct.pack(">I", len(f)) + f for f in fields)


class PairingClient:
    """Role 0 of the pairing: ``start_body()`` → POST /api/pair/start; ``finish_body(reply)`` → POST /finish;
    ``complete(reply)`` checks the server's confirmation and leaves ``pairing_key`` and ``auth_token``."""

    def __init__(self, pin: str, name: str = "test app", alpha: int | None = None) -> None:
        self.pin, self.name = pin.encode(), name
        self.alpha = alpha if alpha is not None else 1 + secrets.randbelow(N - 1)
        pw = int.from_bytes(self.pin, "big")
        self.vpw = point(VX, VY) * pw
        x = point(UX, UY) * pw + G * self.alpha
        self.x = (x.x(), x.y())
        self.msg_a = json.dumps({"role": 0, "ux": str(UX), "uy": str(UY), "vx": str(VX), "vy": str(VY),
                                 "xx": str(self.x[0]), "xy": str(self.x[1]), "yx": "0", "yy": "0"}).encode()
        self.msg_b = b""
        self.pairing_key = b""
        self.auth_token = ""
        self.client_id = ""
        self._confirm_b = b""

    def start_body(self) -> dict:
        return {"pake": base64.b64encode(self.msg_a).decode(), "name": self.name}

    def finish_body(self, start_reply: dict) -> dict:
        self.msg_b = base64.b64decode(start_reply["pake"])
        b = json.loads(self.msg_b)
        assert b["role"] == 1
        y = (int(b["yx"]), int(b["yy"]))
        z = (point(*y) + -self.vpw) * self.alpha
        k = hashlib.sha256(self.pin + b"".join(minimal(c) for c in (*self.x, *y, z.x(), z.y()))).digest()
        salt = self.msg_a + self.msg_b
        confirm_a = expand(k, salt, "zaparoo-confirm-A", 32)
        self._confirm_b = expand(k, salt, "zaparoo-confirm-B", 32)
        self.pairing_key = expand(k, salt, "zaparoo-pairing-v1", 32)
        mac = hmac.new(confirm_a, self.transcript("client"), hashlib.sha256).digest()
        return {"session": start_reply["session"], "confirm": base64.b64encode(mac).decode()}

    def transcript(self, role: str) -> bytes:
        return lp(b"zaparoo-v1", b"p256", role.encode(), self.name.encode(), self.msg_a, self.msg_b)

    def complete(self, finish_reply: dict) -> None:
        mac = hmac.new(self._confirm_b, self.transcript("server"), hashlib.sha256).digest()
        assert hmac.compare_digest(mac, base64.b64decode(finish_reply["confirm"])), "server confirmation wrong"
        self.auth_token, self.client_id = finish_reply["authToken"], finish_reply["clientId"]


class EncryptedChannel:
    """The client side of one encrypted connection (the spec's pseudocode): ``send(obj)`` → frame text,
    ``receive(text)`` → the decrypted object (raises cryptography's InvalidTag on a bad frame)."""

    def __init__(self, auth_token: str, pairing_key: bytes, salt: bytes | None = None) -> None:
        self.token = auth_token
        self.salt = salt or os.urandom(16)
        self.c2s = AESGCM(expand(pairing_key, self.salt, "zaparoo-c2s-v1", 32))
        self.s2c = AESGCM(expand(pairing_key, self.salt, "zaparoo-s2c-v1", 32))
        self.c2s_base = expand(pairing_key, self.salt, "zaparoo-c2s-nonce-v1", 12)
        self.s2c_base = expand(pairing_key, self.salt, "zaparoo-s2c-nonce-v1", 12)
        self.aad = (auth_token + ":ws").encode()
        self.sent = self.received = 0

    @staticmethod
    def nonce(base: bytes, counter: int) -> bytes:
        return base[:4] + bytes(a ^ b for a, b in zip(base[4:], counter.to_bytes(8, "big")))

    def send(self, message: dict | str) -> str:
        text = message if isinstance(message, str) else json.dumps(message)
        ct = self.c2s.encrypt(self.nonce(self.c2s_base, self.sent), text.encode(), self.aad)
        frame = {"e": base64.b64encode(ct).decode()}
        if self.sent == 0:
            frame.update(v=1, t=self.token, s=base64.b64encode(self.salt).decode())
        self.sent += 1
        return json.dumps(frame)

    def receive(self, text: str):
        ct = base64.b64decode(json.loads(text)["e"])
        plain = self.s2c.decrypt(self.nonce(self.s2c_base, self.received), ct, self.aad)
        self.received += 1
        return plain.decode() if plain == b"pong" else json.loads(plain)
