"""Emulated tags answer raw ISO14443-3 commands as the datasheets say (sans-I/O)."""

from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from conftest import FIXTURES
from tagd.ndef import classic, type2
from tagd.ndef.dumps import TagDump
from tagd.sim.tags import ACK, AUTH_ERROR, NO_ANSWER, EmulatedTag, Nak, crc_a


def ntag215() -> EmulatedTag:
    return EmulatedTag.from_file(FIXTURES / "snes-ntag215.nfc")


def type2_tag(kind: str, memory: bytes | None = None) -> EmulatedTag:
    uid = bytes.fromhex("04112233445566")
    k = type2.TYPE2_KINDS[kind]
    return EmulatedTag(TagDump(kind=kind, uid=uid, atqa=0x0044, sak=0x00,
                               memory=memory or type2.blank_image(kind, uid), version=k.version,
                               signature=None, unknown=frozenset()))


def classic_card(memory: bytes | None = None) -> EmulatedTag:
    uid = bytes.fromhex("a1b2c3d4")
    return EmulatedTag(TagDump(kind="classic1k", uid=uid, atqa=0x0004, sak=0x08,
                               memory=memory or classic.blank_image("classic1k", uid), version=None,
                               signature=None, unknown=frozenset()))


def test_target_data_is_sens_res_msb_first_sel_res_and_uid():
    t = EmulatedTag.from_file(FIXTURES / "smw-ntag213.nfc")
    assert t.target_data() == bytes.fromhex("004400070416C6C2D73881")


def test_read_returns_four_pages_and_wraps_at_the_end():
    t = ntag215()
    assert t.transceive(b"\x30\x04") == bytes(t.memory[16:32])
    last = 134
    assert t.transceive(bytes([0x30, last])) == bytes(t.memory[last * 4:]) + bytes(t.memory[:12])


def test_read_past_the_end_is_a_nak_and_the_tag_goes_idle():
    t = ntag215()
    answer = t.transceive(b"\x30\x87")
    assert isinstance(answer, Nak) and answer.code == 0 and answer == AUTH_ERROR
    assert t.transceive(b"\x30\x00") == NO_ANSWER
    t.select()
    assert len(t.transceive(b"\x30\x00")) == 16


@given(st.integers(0, 134), st.integers(0, 134))
def test_fast_read_returns_the_pages_or_a_nak(start, end):
    t = ntag215()
    answer = t.transceive(bytes([0x3A, start, end]))
    if start <= end:
        expected = bytearray(t.memory)
        expected[0x85 * 4:0x87 * 4] = bytes(8)  # PWD and PACK read back as zeros
        assert answer == bytes(expected[start * 4:(end + 1) * 4])
    else:
        assert isinstance(answer, Nak)


def test_write_acks_with_the_4_bit_ack_and_changes_memory():
    t = ntag215()
    assert t.transceive(bytes.fromhex("A2050A0B0C0D")) == ACK == b"\x0a"
    assert bytes(t.memory[20:24]) == bytes.fromhex("0A0B0C0D") and t.writes == 1
    assert t.snapshot().memory[20:24] == bytes.fromhex("0A0B0C0D")


@pytest.mark.parametrize("page", [0, 1, 135, 255])
def test_write_to_uid_pages_or_past_the_end_is_a_nak(page):
    assert isinstance(ntag215().transceive(bytes([0xA2, page, 1, 2, 3, 4])), Nak)


def test_lock_and_cc_bytes_can_only_be_set():
    t = ntag215()
    before = bytes(t.memory[8:16])
    t.transceive(bytes.fromhex("A20200000000"))
    t.transceive(bytes.fromhex("A20300000000"))
    assert bytes(t.memory[8:16]) == before
    t.transceive(bytes.fromhex("A202FFFF0F00"))  # BCC1/internal are read-only, lock bits OR in
    assert bytes(t.memory[8:12]) == before[:2] + bytes([before[2] | 0x0F, before[3]])


def test_static_lock_bits_refuse_writes_to_their_pages():
    t = type2_tag("ultralight")
    t.transceive(bytes.fromhex("A20200001001"))  # LOCK0 bit 4 = page 4, LOCK1 bit 0 = page 8
    assert isinstance(t.transceive(bytes.fromhex("A20411111111")), Nak)
    t.select()
    assert isinstance(t.transceive(bytes.fromhex("A20811111111")), Nak)
    t.select()
    assert t.transceive(bytes.fromhex("A20511111111")) == ACK


def test_ntag215_dynamic_lock_bit_locks_sixteen_pages():
    t = type2_tag("ntag215")
    assert t.transceive(bytes.fromhex("A28201000000")) == ACK  # bit 0: pages 16-31
    assert isinstance(t.transceive(bytes.fromhex("A21F11111111")), Nak)
    t.select()
    assert t.transceive(bytes.fromhex("A22011111111")) == ACK


def test_get_version_and_read_sig_on_ntag_but_not_on_plain_ultralight():
    assert ntag215().transceive(b"\x60") == bytes.fromhex("0004040201001103")
    assert len(ntag215().transceive(b"\x3c\x00")) == 32
    ul = EmulatedTag.from_file(FIXTURES / "ultralight.nfc")
    assert ul.transceive(b"\x60") == NO_ANSWER
    ul.select()
    assert ul.transceive(b"\x3c\x00") == NO_ANSWER


def test_pwd_auth_answers_pack_when_the_password_is_unknown_or_right():
    t = type2_tag("ntag213")
    assert t.transceive(bytes.fromhex("1BFFFFFFFF")) == bytes(t.memory[0x2C * 4:0x2C * 4 + 2])
    t.memory[0x2B * 4:0x2B * 4 + 4] = b"\x12\x34\x56\x78"
    assert isinstance(t.transceive(bytes.fromhex("1BFFFFFFFF")), Nak)
    t.select()
    assert t.transceive(bytes.fromhex("1B12345678")) == bytes(t.memory[0x2C * 4:0x2C * 4 + 2])


def test_crc_a_matches_the_iso14443_example():
    assert crc_a(b"\x00\x00") == bytes.fromhex("A01E")  # ISO/IEC 14443-3 annex B
    assert crc_a(b"\x12\x34") == bytes.fromhex("26CF")


# --- MIFARE Classic ----------------------------------------------------------------------------

def auth(t: EmulatedTag, block: int, key: bytes, key_type: int = 0x60):
    return t.transceive(bytes([key_type, block]) + key + t.uid[-4:])


def test_classic_auth_checks_the_trailer_key_and_a_bad_key_is_status_14():
    t = EmulatedTag.from_file(FIXTURES / "genesis-classic1k.nfc")
    assert auth(t, 4, classic.KEY_DEFAULT) == AUTH_ERROR
    assert t.transceive(b"\x30\x04") == NO_ANSWER  # silent until selected again
    t.select()
    assert auth(t, 4, classic.KEY_NDEF) == b""
    assert t.transceive(b"\x30\x04") == bytes(t.memory[64:80])


def test_classic_read_outside_the_authenticated_sector_is_refused():
    t = EmulatedTag.from_file(FIXTURES / "genesis-classic1k.nfc")
    auth(t, 4, classic.KEY_NDEF)
    assert isinstance(t.transceive(b"\x30\x08"), Nak)


def test_classic_trailer_hides_key_a_and_an_unreadable_key_b():
    t = EmulatedTag.from_file(FIXTURES / "genesis-classic1k.nfc")
    auth(t, 7, classic.KEY_NDEF)
    trailer = t.transceive(b"\x30\x07")
    assert trailer[:6] == bytes(6) and trailer[6:9] == classic.NDEF_ACCESS and trailer[10:] == bytes(6)
    blank = classic_card()
    auth(blank, 7, classic.KEY_DEFAULT)
    assert blank.transceive(b"\x30\x07")[10:] == classic.KEY_DEFAULT  # transport access: key B readable


def test_classic_write_within_the_sector_changes_memory():
    t = classic_card()
    auth(t, 4, classic.KEY_DEFAULT)
    assert t.transceive(b"\xa0\x05" + bytes(range(16))) == b""
    assert bytes(t.memory[80:96]) == bytes(range(16))
    assert isinstance(t.transceive(b"\xa0\x08" + bytes(16)), Nak)


def test_classic_mad_sector_is_written_with_key_b_only():
    t = EmulatedTag.from_file(FIXTURES / "genesis-classic1k.nfc")
    auth(t, 1, classic.KEY_MAD)
    assert isinstance(t.transceive(b"\xa0\x01" + bytes(16)), Nak)


def test_classic_block_0_is_read_only():
    t = classic_card()
    auth(t, 0, classic.KEY_DEFAULT)
    assert isinstance(t.transceive(b"\xa0\x00" + bytes(16)), Nak)


def test_classic_trailer_write_in_transport_state_changes_keys():
    t = classic_card()
    auth(t, 7, classic.KEY_DEFAULT)
    new = classic.trailer_bytes(classic.KEY_NDEF, classic.NDEF_ACCESS, 0x40, classic.KEY_DEFAULT)
    assert t.transceive(b"\xa0\x07" + new) == b""
    t.select()
    assert auth(t, 4, classic.KEY_NDEF) == b""


@given(st.binary(max_size=40))
def test_any_command_gets_bytes_or_a_status_never_an_exception(cmd):
    for t in (ntag215(), EmulatedTag.from_file(FIXTURES / "genesis-classic1k.nfc")):
        answer = t.transceive(cmd)
        assert isinstance(answer, (bytes, int))
