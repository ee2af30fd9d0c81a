"""The PN532 command logic and the emulated tags, sans-I/O."""

import pytest

from conftest import FIXTURES
from tagd.sim.pn532 import UNKNOWN, Pn532Core, crc_a
from tagd.sim.tags import EmulatedTag


@pytest.fixture
def core():
    c = Pn532Core()
    c.place(EmulatedTag.from_file(FIXTURES / "snes-ntag215.nfc"))
    return c


def test_firmware_versions():
    assert Pn532Core("1.6").handle(b"\x02") == bytes.fromhex("0332010607")
    assert Pn532Core("1.4").handle(b"\x02") == bytes.fromhex("0332010407")


def test_list_reports_the_spec_target_data():
    c = Pn532Core()
    c.place(EmulatedTag.from_file(FIXTURES / "smw-ntag213.nfc"))
    assert c.handle(bytes.fromhex("4A0100")) == bytes.fromhex("4B01010044000704 16C6C2D73881".replace(" ", ""))


def test_max_retries_ff_waits_for_a_tag_and_finite_retries_do_not():
    c = Pn532Core()
    assert c.handle(bytes.fromhex("4A0100")) is None and c.waiting
    c.place(EmulatedTag.from_file(FIXTURES / "snes-ntag215.nfc"))
    assert c.complete_wait()[:3] == bytes.fromhex("4B0101")
    c.remove()
    c.handle(bytes.fromhex("3205FF0102"))
    assert c.handle(bytes.fromhex("4A0100")) == b"\x4b\x00"


def test_host_ack_aborts_the_waiting_list():
    c = Pn532Core()
    c.handle(bytes.fromhex("4A0100"))
    c.abort()
    c.place(EmulatedTag.from_file(FIXTURES / "snes-ntag215.nfc"))
    assert c.complete_wait() is None


def test_fast_read_get_version_and_read_sig(core):
    core.handle(bytes.fromhex("4A0100"))
    assert core.handle(bytes.fromhex("4260")) == bytes.fromhex("4300") + bytes.fromhex("0004040201001103")
    assert len(core.handle(bytes.fromhex("423A0003"))) == 2 + 16
    assert len(core.handle(bytes.fromhex("423C00"))) == 2 + 32


def test_crc_mode_appends_crc_a_and_reports_write_ack_as_0a(core):
    core.handle(bytes.fromhex("4A0100"))
    core.handle(bytes.fromhex("08630300"))  # clear CIU_RxMode bit 7, as nfcpy does
    r = core.handle(bytes.fromhex("423004"))
    assert r[2:] == r[2:18] + crc_a(r[2:18])
    assert core.handle(bytes.fromhex("42A20501020304")) == bytes.fromhex("43000A")


def test_tag_gone_mid_command_is_status_01(core):
    core.handle(bytes.fromhex("4A0100"))
    core.remove()
    assert core.handle(bytes.fromhex("40013000")) == b"\x41\x01"


def test_classic_auth_with_a_wrong_key_is_status_14_and_right_key_reads():
    c = Pn532Core()
    tag = EmulatedTag.from_file(FIXTURES / "genesis-classic1k.nfc")
    c.place(tag)
    c.handle(bytes.fromhex("4A0100"))
    uid = tag.uid
    assert c.handle(bytes.fromhex("4001 6004 FFFFFFFFFFFF".replace(" ", "")) + uid) == b"\x41\x14"
    assert c.handle(bytes.fromhex("4001 6004 D3F7D3F7D3F7".replace(" ", "")) + uid) == b"\x41\x00"
    assert c.handle(bytes.fromhex("40013004"))[:3] == bytes.fromhex("410003")
    assert c.handle(bytes.fromhex("40013007"))[2:8] == bytes(6)  # key A reads back as zeros


def test_unknown_command_gets_the_application_error_frame(core):
    assert core.handle(b"\xee") is UNKNOWN


def test_diagnose_line_test_echoes():
    data = bytes([0x00]) + bytes(i & 0xFF for i in range(262))
    assert Pn532Core().handle(b"\x00" + data) == b"\x01" + data


def test_ultralight_without_get_version_does_not_answer():
    c = Pn532Core()
    c.place(EmulatedTag.from_file(FIXTURES / "ultralight.nfc"))
    c.handle(bytes.fromhex("4A0100"))
    assert c.handle(bytes.fromhex("4260")) == b"\x43\x01"


def test_type2_write_cannot_clear_cc_bits(core):
    core.handle(bytes.fromhex("4A0100"))
    core.handle(bytes.fromhex("4001A20300000000"))
    assert bytes(core.tag.memory[12:16]) == bytes.fromhex("E1103E00")
