"""Key derivation, the pairing confirmation and the encrypted WebSocket frames of Zaparoo's API (sans-I/O).

Wire facts (Core's ``docs/api/encryption.md``):

- pairing: ``prk = HKDF-Extract(SHA-256, ikm=pakeSessionKey, salt=msgA ‖ msgB)``; confirm keys and the long-term
  32-byte pairing key are ``HKDF-Expand(prk, label)`` with the labels below. Each side proves it knew the PIN
  with ``HMAC-SHA256(confirmKey, LP("zaparoo-v1") ‖ LP("p256") ‖ LP(role) ‖ LP(name) ‖ LP(msgA) ‖ LP(msgB))``,
  ``LP`` = 4-byte big-endian length then the bytes; msgA/msgB are the raw wire bytes as sent.
- each WebSocket connection: the client picks a 16-byte salt; ``prk = HKDF-Extract(ikm=pairingKey, salt)`` gives
  a key and a 12-byte nonce base per direction. Frame n of a direction is AES-256-GCM with nonce = base with
  ``n`` (8 bytes, big-endian) XORed into its last 8 bytes, and AAD ``authToken + ":ws"``. Counters start at 0
  and never wrap; frames are ``{"e": base64}``, the client's first also carries ``v`` (1), ``t`` (auth token)
  and ``s`` (base64 salt).

A frame that does not decrypt is :class:`FrameError`: the caller closes the connection, there is no resync.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import struct
from dataclasses import dataclass
from hashlib import sha256
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

PROTOCOL_VERSION = 1
TRANSCRIPT_VERSION = b"zaparoo-v1"
CURVE = b"p256"
PAIRING_KEY_SIZE = 32
SALT_SIZE = 16
NONCE_SIZE = 12
MAX_COUNTER = (1 << 64) - 1  # Go's counters are uint64 and refuse the last value; so does this

CONFIRM_A, CONFIRM_B, PAIRING = b"zaparoo-confirm-A", b"zaparoo-confirm-B", b"zaparoo-pairing-v1"
C2S_KEY, S2C_KEY = b"zaparoo-c2s-v1", b"zaparoo-s2c-v1"
C2S_NONCE, S2C_NONCE = b"zaparoo-c2s-nonce-v1", b"zaparoo-s2c-nonce-v1"


class FrameError(ValueError):
    """An encrypted frame that cannot be read: malformed, or it fails authentication (tampered, wrong key)."""


def hkdf(ikm: bytes, salt: bytes, info: bytes, length: int) -> bytes:
    """HKDF-SHA256 (RFC 5869) extract-then-expand, from ``cryptography``."""
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=salt, info=info).derive(ikm)


@dataclass(frozen=True)
class PairingKeys:
    confirm_a: bytes  # the client's confirmation key
    confirm_b: bytes  # the server's
    pairing_key: bytes  # stored by both sides; never sent

    @classmethod
    def derive(cls, session_key: bytes, msg_a: bytes, msg_b: bytes) -> PairingKeys:
        salt = msg_a + msg_b
        return cls(hkdf(session_key, salt, CONFIRM_A, 32), hkdf(session_key, salt, CONFIRM_B, 32),
                   hkdf(session_key, salt, PAIRING, PAIRING_KEY_SIZE))


def length_prefixed(*fields: bytes) -> bytes:
    return b"".join(struct.pack(">I", len(f)) + f for f in fields)


def transcript_mac(key: bytes, role: str, name: str, msg_a: bytes, msg_b: bytes) -> bytes:
    """The confirmation HMAC of ``role`` ("client" or "server") over the pairing transcript."""
    data = length_prefixed(TRANSCRIPT_VERSION, CURVE, role.encode(), name.encode(), msg_a, msg_b)
    return hmac.new(key, data, sha256).digest()


def nonce(base: bytes, counter: int) -> bytes:
    """The nonce of frame ``counter``: its 8 big-endian bytes XORed into the last 8 of ``base``."""
    if not 0 <= counter < MAX_COUNTER:
        raise FrameError("frame counter exhausted: reconnect with a new salt")
    tail = int.from_bytes(base[4:], "big") ^ counter
    return base[:4] + tail.to_bytes(8, "big")


@dataclass(frozen=True)
class SessionKeys:
    c2s_key: bytes
    s2c_key: bytes
    c2s_nonce: bytes
    s2c_nonce: bytes

    @classmethod
    def derive(cls, pairing_key: bytes, salt: bytes) -> SessionKeys:
        if len(pairing_key) != PAIRING_KEY_SIZE:
            raise ValueError(f"pairing key must be {PAIRING_KEY_SIZE} bytes")
        if len(salt) != SALT_SIZE:
            raise FrameError(f"session salt must be {SALT_SIZE} bytes")
        return cls(hkdf(pairing_key, salt, C2S_KEY, 32), hkdf(pairing_key, salt, S2C_KEY, 32),
                   hkdf(pairing_key, salt, C2S_NONCE, NONCE_SIZE), hkdf(pairing_key, salt, S2C_NONCE, NONCE_SIZE))


@dataclass(frozen=True)
class FirstFrame:
    """The client's first encrypted frame, still sealed. ``salt`` is decoded; ``ciphertext`` is the base64 text."""
    version: int
    ciphertext: str
    token: str
    salt: bytes


def b64decode(text: Any, what: str) -> bytes:
    if not isinstance(text, str):
        raise FrameError(f"{what} must be a base64 string")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise FrameError(f"{what} is not valid base64") from None


def first_frame(text: str | bytes) -> FirstFrame | None:
    """The frame as an encrypted first frame, or None when it does not look like one (then it is plaintext).

    Like Core: JSON with a positive integer ``v`` and non-empty ``e``, ``t`` and ``s`` strings. A salt that is
    not 16 bytes of base64 is a FrameError (it meant to be encrypted and is broken)."""
    try:
        obj = json.loads(text)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    if not isinstance(obj, dict):
        return None
    version, e, t, s = (obj.get(k) for k in ("v", "e", "t", "s"))
    if type(version) is not int or version <= 0 or not all(isinstance(x, str) and x for x in (e, t, s)):
        return None
    salt = b64decode(s, "session salt")
    if len(salt) != SALT_SIZE:
        raise FrameError(f"session salt must be {SALT_SIZE} bytes")
    return FirstFrame(version, e, t, salt)


class FrameCipher:
    """One side's state of an encrypted connection: its send and receive counters and keys.

    ``side`` is "server" (receives c2s, sends s2c) or "client" (the reverse). ``open`` and ``seal`` take and give
    the frame JSON text; each advances its counter only on success."""

    def __init__(self, pairing_key: bytes, auth_token: str, salt: bytes, side: str = "server") -> None:
        keys = SessionKeys.derive(pairing_key, salt)
        if side == "server":
            recv, send = (keys.c2s_key, keys.c2s_nonce), (keys.s2c_key, keys.s2c_nonce)
        elif side == "client":
            recv, send = (keys.s2c_key, keys.s2c_nonce), (keys.c2s_key, keys.c2s_nonce)
        else:
            raise ValueError("side must be 'server' or 'client'")
        self._recv_aead, self._recv_base = AESGCM(recv[0]), recv[1]
        self._send_aead, self._send_base = AESGCM(send[0]), send[1]
        self._aad = (auth_token + ":ws").encode()
        self.received = 0
        self.sent = 0

    def open_ciphertext(self, ciphertext: bytes) -> bytes:
        try:
            plain = self._recv_aead.decrypt(nonce(self._recv_base, self.received), ciphertext, self._aad)
        except InvalidTag:
            raise FrameError("encrypted frame failed authentication") from None
        self.received += 1
        return plain

    def open(self, text: str | bytes) -> bytes:
        """A subsequent frame ``{"e": …}`` → its plaintext."""
        try:
            obj = json.loads(text)
        except (ValueError, UnicodeDecodeError, RecursionError):
            raise FrameError("encrypted frame is not JSON") from None
        if not isinstance(obj, dict) or not obj.get("e"):
            raise FrameError("encrypted frame has no 'e'")
        return self.open_ciphertext(b64decode(obj["e"], "frame 'e'"))

    def seal(self, plaintext: bytes, **extra: Any) -> str:
        """``plaintext`` → a frame's JSON text ``{"e": …}`` (plus ``extra`` fields, for a client's first frame)."""
        sealed = self._send_aead.encrypt(nonce(self._send_base, self.sent), plaintext, self._aad)
        self.sent += 1
        return json.dumps({"e": base64.b64encode(sealed).decode(), **extra}, separators=(",", ":"))
