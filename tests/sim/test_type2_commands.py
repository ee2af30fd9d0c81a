"""Issue 14 item 6 (emulator fidelity): the Type 2 commands an NTAG21x / Ultralight EV1 answers, with the
datasheets' NAKs — COMPATIBILITY_WRITE in two phases, READ_SIG, READ_CNT, INCR_CNT (EV1), PWD_AUTH with
AUTH0/ACCESS/PWD/PACK enforced, WRITE to the configuration pages."""

from __future__ import annotations

import pytest

from tagd.cli.tags import make_dump
from tagd.ndef import type2
from tagd.ndef.dumps import type2_dump
from tagd.ndef.records import text_message
from tagd.sim.tags import ACK, NO_ANSWER, EmulatedTag, Nak

PWD, PACK = bytes.fromhex("12345678"), bytes.fromhex("9ABC")


def ntag(kind="ntag213", auth0=0xFF, access=0x00, pwd=PWD, pack=PACK) -> EmulatedTag:
    tag = EmulatedTag(make_dump(kind, text_message("**launch.system:snes")))
    cfg = type2.TYPE2_KINDS[kind].cfg_page * 4
    tag.memory[cfg + 3] = auth0
    tag.memory[cfg + 4] = access
    tag.memory[cfg + 8:cfg + 12] = pwd
    tag.memory[cfg + 12:cfg + 14] = pack
    tag.select()
    return tag


def ev1() -> EmulatedTag:
    image = bytearray(20 * 4)
    image[0:12] = bytes([0x04, 0x11, 0x22, 0x88 ^ 0x04 ^ 0x11 ^ 0x22, 0x33, 0x44, 0x55, 0x66, 0x33 ^ 0x44 ^ 0x55 ^ 0x66,
                         0x48, 0, 0])
    image[12:16] = bytes.fromhex("E1100600")
    image[0x10 * 4 + 3] = 0xFF
    tag = EmulatedTag(type2_dump(bytes(image), type2.TYPE2_KINDS["ultralight_ev1"].version))
    tag.select()
    return tag


def test_compatibility_write_in_two_phases_writes_the_first_4_of_16_bytes():
    tag = ntag()
    assert tag.transceive(bytes([0xA0, 5])) == ACK
    assert tag.transceive(bytes(range(16))) == ACK
    assert bytes(tag.memory[20:24]) == bytes([0, 1, 2, 3]) and bytes(tag.memory[24:28]) != bytes([4, 5, 6, 7])


def test_compatibility_write_in_one_exchange_as_a_pn532_sends_it():
    tag = ntag()
    assert tag.transceive(bytes([0xA0, 6]) + bytes(range(16))) == ACK
    assert bytes(tag.memory[24:28]) == bytes([0, 1, 2, 3])


def test_compatibility_write_naks_a_bad_address_in_the_first_phase():
    tag = ntag()
    answer = tag.transceive(bytes([0xA0, 200]))
    assert isinstance(answer, Nak) and answer.code == 0
    assert tag.transceive(b"\x30\x00") == NO_ANSWER  # after a NAK the tag is idle until selected


def test_compatibility_write_second_phase_must_be_16_bytes():
    tag = ntag()
    assert tag.transceive(bytes([0xA0, 5])) == ACK
    assert isinstance(tag.transceive(bytes(4)), Nak)


def test_read_sig_answers_32_bytes_and_naks_a_bad_address():
    tag = ntag()
    assert len(tag.transceive(b"\x3c\x00")) == 32
    assert isinstance(tag.transceive(b"\x3c\x01"), Nak)


def test_read_cnt_ntag_counts_the_first_read_after_power_up_when_enabled():
    tag = ntag(access=0x10)  # NFC_CNT_EN
    tag.enter_field()
    tag.select()
    assert tag.transceive(b"\x39\x02") == b"\x00\x00\x00"
    tag.transceive(b"\x30\x04")
    tag.transceive(b"\x30\x04")
    assert tag.transceive(b"\x39\x02") == b"\x01\x00\x00"  # one power-up, one count
    assert isinstance(tag.transceive(b"\x39\x00"), Nak)  # the NTAG has counter 2 only


def test_read_cnt_password_protected_counter_needs_pwd_auth():
    tag = ntag(access=0x18)  # NFC_CNT_EN | NFC_CNT_PWD_PROT
    assert isinstance(tag.transceive(b"\x39\x02"), Nak)
    tag.select()
    assert tag.transceive(b"\x1b" + PWD) == PACK
    assert len(tag.transceive(b"\x39\x02")) == 3


def test_incr_cnt_ev1_increments_and_naks_on_overflow():
    tag = ev1()
    assert tag.transceive(bytes.fromhex("A501050000 00".replace(" ", ""))) == ACK
    assert tag.transceive(b"\x39\x01") == b"\x05\x00\x00"
    answer = tag.transceive(bytes.fromhex("A501FFFFFF00"))
    assert isinstance(answer, Nak) and answer.code == 4
    tag.select()
    assert tag.transceive(b"\x39\x01") == b"\x05\x00\x00"  # unchanged by the refused increment
    assert isinstance(tag.transceive(bytes.fromhex("A503010000 00".replace(" ", ""))), Nak)


def test_incr_cnt_is_not_an_ntag_command():
    assert ntag().transceive(bytes.fromhex("A502010000 00".replace(" ", ""))) == NO_ANSWER


def test_pwd_auth_answers_pack_for_the_right_password_and_naks_a_wrong_one():
    tag = ntag(auth0=4)
    assert tag.transceive(b"\x1b" + PWD) == PACK
    tag.select()
    answer = tag.transceive(b"\x1b\x00\x00\x00\x01")
    assert isinstance(answer, Nak) and answer.code == 0


def test_pwd_auth_auth0_write_protects_pages_from_auth0_until_authenticated():
    tag = ntag(auth0=6)  # PROT = 0: reads are free, writes from page 6 need the password
    assert tag.transceive(bytes.fromhex("A20511223344")) == ACK
    assert len(tag.transceive(b"\x30\x06")) == 16
    assert isinstance(tag.transceive(bytes.fromhex("A20611223344")), Nak)
    tag.select()
    assert tag.transceive(b"\x1b" + PWD) == PACK
    assert tag.transceive(bytes.fromhex("A20611223344")) == ACK


def test_pwd_auth_access_prot_read_protects_and_a_read_rolls_over_at_auth0():
    tag = ntag(auth0=6, access=0x80)
    assert isinstance(tag.transceive(b"\x30\x06"), Nak)
    tag.select()
    assert isinstance(tag.transceive(b"\x3a\x04\x06"), Nak)
    tag.select()
    got = tag.transceive(b"\x30\x04")  # pages 4, 5, then 0, 1: protected pages never leave the tag
    assert got == bytes(tag.memory[16:24]) + bytes(tag.memory[0:8])
    assert tag.transceive(b"\x1b" + PWD) == PACK
    assert tag.transceive(b"\x30\x04") == bytes(tag.memory[16:32])


def test_pwd_auth_authlim_ends_password_attempts():
    tag = ntag(auth0=4, access=0x02)  # AUTHLIM 2
    for _ in range(2):
        tag.select()
        assert tag.transceive(b"\x1b\x00\x00\x00\x01").code == 0
    tag.select()
    answer = tag.transceive(b"\x1b" + PWD)
    assert isinstance(answer, Nak) and answer.code == 4


def test_pwd_and_pack_read_back_as_zeros():
    tag = ntag()
    cfg = type2.TYPE2_KINDS["ntag213"].cfg_page
    got = tag.transceive(bytes([0x30, cfg]))
    assert got[8:16] == bytes(8) and got[:8] == bytes(tag.memory[cfg * 4:cfg * 4 + 8])


def test_write_to_config_pages_sets_auth0_and_the_password():
    tag = ntag(pwd=bytes(4), pack=bytes(2))
    cfg = type2.TYPE2_KINDS["ntag213"].cfg_page
    assert tag.transceive(bytes([0xA2, cfg + 2]) + PWD) == ACK
    assert tag.transceive(bytes([0xA2, cfg + 3]) + PACK + b"\x00\x00") == ACK
    assert tag.transceive(bytes([0xA2, cfg, 0x04, 0x00, 0x00, 0x05])) == ACK  # AUTH0 = 5
    assert tag.transceive(bytes([0xA2, cfg + 1, 0x00, 0x00, 0x00, 0x00])) == ACK  # in effect from the next activation
    tag.select()
    assert isinstance(tag.transceive(bytes.fromhex("A20511223344")), Nak)
    tag.select()
    assert tag.transceive(b"\x1b" + PWD) == PACK


def test_write_to_config_pages_is_refused_after_cfglck():
    tag = ntag(access=0x40)
    cfg = type2.TYPE2_KINDS["ntag213"].cfg_page
    assert isinstance(tag.transceive(bytes([0xA2, cfg, 0, 0, 0, 4])), Nak)
    tag.select()
    assert tag.transceive(bytes([0xA2, cfg + 2]) + PWD) == ACK  # PWD itself stays writable


@pytest.mark.parametrize("kind", ["ntag213", "ntag215", "ntag216"])
def test_get_version_names_the_ntag(kind):
    assert ntag(kind).transceive(b"\x60") == type2.TYPE2_KINDS[kind].version
