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


def test_classic_needs_authentication_with_a_loaded_key():
    c = card("genesis-classic1k.nfc")
    assert c.apdu(bytes.fromhex("FFB0000410")) == bytes.fromhex("6300")
    assert c.apdu(bytes.fromhex("FF82000006FFFFFFFFFFFF")) == bytes.fromhex("9000")
    assert c.apdu(bytes.fromhex("FF860000050100046000")) == bytes.fromhex("6300")
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
