"""The virtual ACR122U card, sans-I/O: ATRs and pseudo-APDUs."""

import pytest

from conftest import FIXTURES
from tagd.sim.acr122 import Acr122Card, atr_for
from tagd.sim.tags import EmulatedTag


def card(name="snes-ntag215.nfc"):
    return Acr122Card(EmulatedTag.from_file(FIXTURES / name))


@pytest.mark.parametrize("kind,name", [("classic1k", "0001"), ("classic4k", "0002"), ("ntag215", "0003")])
def test_atr_names_the_card_and_its_tck_checks(kind, name):
    atr = atr_for(kind)
    assert atr[:4] == bytes.fromhex("3B8F8001") and atr[13:15] == bytes.fromhex(name) and len(atr) == 20
    x = 0
    for b in atr[1:]:
        x ^= b
    assert x == 0


def test_uid_read_and_write_type2():
    c = card()
    assert c.apdu(bytes.fromhex("FFCA000000")) == bytes.fromhex("04A1B2C3D4E5F6 9000".replace(" ", ""))
    assert c.apdu(bytes.fromhex("FFB0000310"))[:4] == bytes.fromhex("E1103E00")
    assert c.apdu(bytes.fromhex("FFD6000504 01020304")) == bytes.fromhex("9000")
    assert bytes(c.tag.memory[20:24]) == bytes.fromhex("01020304")


RESELECT = bytes.fromhex("FF00000004D44A0100")  # InListPassiveTarget by direct transmit


def test_classic_needs_authentication_with_a_loaded_key():
    c = card("genesis-classic1k.nfc")
    assert c.apdu(bytes.fromhex("FFB0000410")) == bytes.fromhex("6300")
    assert c.apdu(RESELECT)[:3] == bytes.fromhex("D54B01")
    assert c.apdu(bytes.fromhex("FF82000006FFFFFFFFFFFF")) == bytes.fromhex("9000")
    assert c.apdu(bytes.fromhex("FF860000050100046000")) == bytes.fromhex("6300")
    assert c.apdu(RESELECT)[:3] == bytes.fromhex("D54B01")
    assert c.apdu(bytes.fromhex("FF82000006D3F7D3F7D3F7")) == bytes.fromhex("9000")
    assert c.apdu(bytes.fromhex("FF860000050100046000")) == bytes.fromhex("9000")
    assert c.apdu(bytes.fromhex("FFB0000410"))[-2:] == bytes.fromhex("9000")


def test_direct_transmit_goes_through_the_pn532_logic():
    c = card()
    assert c.apdu(bytes.fromhex("FF00000003D44260")) == bytes.fromhex("D54300 0004040201001103 9000".replace(" ", ""))
    assert c.apdu(bytes.fromhex("FF00000002D402")) == bytes.fromhex("D503 32010607 9000".replace(" ", ""))


def test_firmware_led_buzzer_and_unsupported():
    c = card()
    assert c.apdu(bytes.fromhex("FF00480000")) == b"ACR122U207"
    assert c.apdu(bytes.fromhex("FF00400F0401010101"))[:1] == b"\x90"
    assert c.apdu(bytes.fromhex("FF00520000")) == bytes.fromhex("9000")
    assert c.apdu(bytes.fromhex("00A4040000")) == bytes.fromhex("6A81")


def test_classic_write_needs_a_16_byte_block_and_type2_a_4_byte_page():
    c = card("genesis-classic1k.nfc")
    c.apdu(bytes.fromhex("FF82000006D3F7D3F7D3F7"))
    assert c.apdu(bytes.fromhex("FF860000050100046000")) == bytes.fromhex("9000")
    assert c.apdu(bytes.fromhex("FFD6000404 11111111".replace(" ", ""))) == bytes.fromhex("6300")
    assert c.apdu(bytes.fromhex("FFD6000410") + b"\x11" * 16) == bytes.fromhex("9000")
    assert c.apdu(bytes.fromhex("FFB0000410")) == b"\x11" * 16 + bytes.fromhex("9000")
    t = card()
    assert t.apdu(bytes.fromhex("FFD6000410") + bytes(16)) == bytes.fromhex("6300")


def test_key_slots_and_authentication_errors():
    c = card("genesis-classic1k.nfc")
    assert c.apdu(bytes.fromhex("FF82000206FFFFFFFFFFFF")) == bytes.fromhex("6A81")  # slots 0 and 1 only
    assert c.apdu(bytes.fromhex("FF860000050100046001")) == bytes.fromhex("6300")  # nothing loaded in slot 1
    c.apdu(bytes.fromhex("FF82000106D3F7D3F7D3F7"))
    assert c.apdu(bytes.fromhex("FF860000050100046201")) == bytes.fromhex("6300")  # key type neither 60 nor 61
    assert c.apdu(bytes.fromhex("FF860000050100046001")) == bytes.fromhex("9000")


def test_type2_read_wraps_at_the_last_page_and_fails_past_it():
    c = card()  # NTAG215: pages 0..134
    assert c.apdu(bytes.fromhex("FFB0008610"))[4:8] == c.tag.uid[:3] + bytes([0x88 ^ c.tag.uid[0] ^ c.tag.uid[1] ^ c.tag.uid[2]])
    assert c.apdu(bytes.fromhex("FFB000FF10")) == bytes.fromhex("6300")
    assert c.apdu(bytes.fromhex("FFD600FF0400000000")) == bytes.fromhex("6300")


def test_direct_transmit_fast_read_and_a_truncated_command():
    c = card()
    out = c.apdu(bytes.fromhex("FF00000005D4423A0304"))
    assert out[:3] == bytes.fromhex("D54300") and out[3:7] == bytes.fromhex("E1103E00") and out[-2:] == b"\x90\x00"
    assert c.apdu(bytes.fromhex("FF00000001D4")) == bytes.fromhex("6300")


def test_blank_classic_atr_and_uid():
    from tagd.ndef import classic, dumps

    c = Acr122Card(EmulatedTag(dumps.classic_dump(classic.blank_image("classic1k", bytes.fromhex("11223344")))))
    assert c.atr[13:15] == bytes.fromhex("0001")
    assert c.apdu(bytes.fromhex("FFCA000000")) == bytes.fromhex("112233449000")


@pytest.mark.parametrize("apdu", ["", "FF", "FFCA", "FFCA010000", "FF00000000", "FF000000020000", "00A4040000"])
def test_malformed_apdus_are_refused_not_crashes(apdu):
    assert card().apdu(bytes.fromhex(apdu))[-2:] in (bytes.fromhex("6A81"), bytes.fromhex("6300"))


def test_any_apdu_gets_an_answer():
    from hypothesis import given, settings, strategies as st

    ntag, classic = card(), card("genesis-classic1k.nfc")

    @settings(max_examples=400, deadline=None)
    @given(st.one_of(st.binary(max_size=40), st.binary(max_size=40).map(lambda b: b"\xff" + b),
                     st.binary(max_size=30).map(lambda b: b"\xff\x00\x00\x00" + bytes([len(b) + 1]) + b"\xd4" + b)))
    def check(apdu):
        for c in (ntag, classic):
            answer = c.apdu(apdu)
            assert isinstance(answer, bytes) and len(answer) >= 2

    check()


def test_a_refused_command_leaves_the_tag_mute_until_it_is_reselected():
    c = card("ultralight.nfc")  # a plain Ultralight does not know GET_VERSION
    assert c.apdu(bytes.fromhex("FF00000003D44260"))[:3] == bytes.fromhex("D54301")
    assert c.apdu(bytes.fromhex("FFB0000410")) == bytes.fromhex("6300")
    assert c.apdu(bytes.fromhex("FF00000004D4423A0304"))[:3] == bytes.fromhex("D54301")
    assert c.apdu(RESELECT)[:3] == bytes.fromhex("D54B01")
    assert c.apdu(bytes.fromhex("FFB0000310"))[-2:] == bytes.fromhex("9000")


def test_power_on_selects_the_card_again():
    c = card("genesis-classic1k.nfc")
    assert c.apdu(bytes.fromhex("FF82000006FFFFFFFFFFFF")) == bytes.fromhex("9000")
    assert c.apdu(bytes.fromhex("FF860000050100046000")) == bytes.fromhex("6300")
    c.activate()  # vpcd's 01 (power on) / 02 (reset)
    assert c.apdu(bytes.fromhex("FF82000006D3F7D3F7D3F7")) == bytes.fromhex("9000")
    assert c.apdu(bytes.fromhex("FF860000050100046000")) == bytes.fromhex("9000")
