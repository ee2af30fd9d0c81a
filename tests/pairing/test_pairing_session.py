"""Key derivation, transcript MAC and encrypted frames: Core's known-answer tests and the spec's rules."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import given, strategies as st

from tagd.daemon.api.pairing.session import (FrameCipher, FrameError, SessionKeys, first_frame, length_prefixed,
                                              nonce, transcript_mac)
from zaparoo_client import EncryptedChannel, expand

KEY, SALT = b"\x42" * 32, b"\xaa" * 16


def test_session_keys_use_the_spec_labels():
    """Core's TestKAT_DeriveSessionKeysMatchesSpecLabels: pairing key 0x42×32, salt 0xAA×16."""
    keys = SessionKeys.derive(KEY, SALT)
    assert keys.c2s_key == expand(KEY, SALT, "zaparoo-c2s-v1", 32)
    assert keys.s2c_key == expand(KEY, SALT, "zaparoo-s2c-v1", 32)
    assert keys.c2s_nonce == expand(KEY, SALT, "zaparoo-c2s-nonce-v1", 12)
    assert keys.s2c_nonce == expand(KEY, SALT, "zaparoo-s2c-nonce-v1", 12)
    assert len({keys.c2s_key, keys.s2c_key}) == 2


def test_hkdf_extract_is_hmac_of_salt_over_the_pairing_key():
    prk = hmac.new(SALT, KEY, hashlib.sha256).digest()
    t1 = hmac.new(prk, b"zaparoo-c2s-v1\x01", hashlib.sha256).digest()
    assert SessionKeys.derive(KEY, SALT).c2s_key == t1  # RFC 5869 by hand: one block of 32 bytes


BASE = bytes(range(1, 13))


@pytest.mark.parametrize("counter,expected", [
    (0, BASE),  # Core's TestKAT_NonceXORConstruction cases
    (1, bytes([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13])),
    (0xFFFFFFFFFFFFFFFE, bytes([1, 2, 3, 4, 5 ^ 0xFF, 6 ^ 0xFF, 7 ^ 0xFF, 8 ^ 0xFF, 9 ^ 0xFF, 10 ^ 0xFF, 11 ^ 0xFF,
                                12 ^ 0xFE])),
])
def test_nonce_is_the_base_with_the_counter_xored_into_its_last_8_bytes(counter, expected):
    assert nonce(BASE, counter) == expected
    key = b"\x77" * 32  # and sealing with it is plain AES-GCM with that nonce (Core's comparison)
    assert AESGCM(key).encrypt(nonce(BASE, counter), b"zaparoo", b"auth-token:ws") == \
        AESGCM(key).encrypt(expected, b"zaparoo", b"auth-token:ws")


def test_the_last_counter_is_refused_not_wrapped():
    with pytest.raises(FrameError, match="exhausted"):
        nonce(BASE, 0xFFFFFFFFFFFFFFFF)


def test_length_prefix_is_4_byte_big_endian():
    assert length_prefixed(b"hi", b"") == b"\x00\x00\x00\x02hi\x00\x00\x00\x00"


def test_transcript_mac_covers_every_field_with_length_prefixes():
    mac = transcript_mac(b"k" * 32, "client", "App", b"A", b"B")
    data = b"".join(len(f).to_bytes(4, "big") + f for f in (b"zaparoo-v1", b"p256", b"client", b"App", b"A", b"B"))
    assert mac == hmac.new(b"k" * 32, data, hashlib.sha256).digest()
    assert transcript_mac(b"k" * 32, "client", "Ap", b"pA", b"B") != mac  # the prefixes keep fields apart


def test_client_frames_decrypt_on_the_server_and_back():
    client = EncryptedChannel("tok", KEY, SALT)
    first = client.send({"jsonrpc": "2.0", "method": "version", "id": 1})
    frame = first_frame(first)
    assert frame is not None and frame.token == "tok" and frame.salt == SALT and frame.version == 1
    server = FrameCipher(KEY, "tok", frame.salt)
    assert json.loads(server.open_ciphertext(base64.b64decode(frame.ciphertext)))["method"] == "version"
    assert json.loads(server.open(client.send({"id": 2})))["id"] == 2
    assert client.receive(server.seal(b'{"id":1}')) == {"id": 1}
    assert client.receive(server.seal(b"pong")) == "pong"


def test_a_tampered_frame_fails_and_a_replayed_one_too():
    client = EncryptedChannel("tok", KEY, SALT)
    client.send("first")
    server = FrameCipher(KEY, "tok", SALT)
    server.received = 1
    good = client.send("second")
    ct = bytearray(base64.b64decode(json.loads(good)["e"]))
    ct[0] ^= 1
    with pytest.raises(FrameError, match="authentication"):
        server.open(json.dumps({"e": base64.b64encode(bytes(ct)).decode()}))
    assert server.open(good) == b"second"
    with pytest.raises(FrameError):
        server.open(good)  # the counter moved on: the same frame again does not open


def test_the_aad_binds_frames_to_the_auth_token():
    frame = EncryptedChannel("tok", KEY, SALT).send("x")
    with pytest.raises(FrameError):
        FrameCipher(KEY, "other", SALT).open_ciphertext(base64.b64decode(json.loads(frame)["e"]))


@pytest.mark.parametrize("text", ['{"jsonrpc":"2.0","method":"version","id":1}', "ping", "[1]",
                                  '{"v":0,"e":"a","t":"b","s":"c"}', '{"v":"1","e":"a","t":"b","s":"c"}',
                                  '{"v":1,"e":"","t":"b","s":"c"}'])
def test_plaintext_is_not_a_first_frame(text):
    assert first_frame(text) is None


def test_a_first_frame_with_a_bad_salt_is_an_error():
    with pytest.raises(FrameError, match="16 bytes"):
        first_frame(json.dumps({"v": 1, "e": "AA==", "t": "x", "s": base64.b64encode(b"short").decode()}))
    with pytest.raises(FrameError, match="base64"):
        first_frame(json.dumps({"v": 1, "e": "AA==", "t": "x", "s": "***"}))


@given(st.text(max_size=200))
def test_open_and_first_frame_never_raise_anything_else(text):
    try:
        first_frame(text)
    except FrameError:
        pass
    try:
        FrameCipher(KEY, "tok", SALT).open(text)
    except FrameError:
        pass


@pytest.mark.parametrize("text,expected", [
    (' {"v":1,"e":"x","t":"y","s":"z"}', True), (b'{"v":1,"e":"x","t":"y","s":"z"}', True),
    ('{"jsonrpc":"2.0","method":"version","id":1}', False), ("ping", False), ("", False),
])
def test_the_cheap_pre_check_finds_first_frames_without_loading_crypto(text, expected):
    from tagd.daemon.api.pairing_service import looks_encrypted

    assert looks_encrypted(text) is expected
