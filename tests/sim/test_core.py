"""Pn532Core: the chip's command logic, driven by SPEC §1's byte examples (sans-I/O)."""

from __future__ import annotations

import pytest

from conftest import FIXTURES
from tagd.readers.pn532.frames import TFI_CHIP, Frame, FrameDecoder, encode_frame
from tagd.sim.pn532 import UNKNOWN, Pn532Core
from tagd.sim.tags import EmulatedTag, crc_a


def frame_exchange(core: Pn532Core, command_frame: str) -> bytes:
    """Full host frame in (hex), full chip frame out: the SPEC examples as written."""
    (cmd,) = FrameDecoder().feed(bytes.fromhex(command_frame.replace(" ", "")))
    assert isinstance(cmd, Frame)
    return encode_frame(TFI_CHIP, core.handle(cmd.data))


def tag(name: str = "snes-ntag215.nfc") -> EmulatedTag:
    return EmulatedTag.from_file(FIXTURES / name)


@pytest.fixture
def core():
    c = Pn532Core()
    c.place(tag())
    c.handle(bytes.fromhex("4A0100"))
    return c


def test_get_firmware_version_frames_from_the_spec():
    assert frame_exchange(Pn532Core(), "00 00 FF 02 FE D4 02 2A 00") == bytes.fromhex("0000FF06FAD50332010607E800")
    assert Pn532Core("1.4").handle(b"\x02") == bytes.fromhex("0332010407")


def test_sam_configuration_and_max_retries_frames_from_the_spec():
    c = Pn532Core()
    assert frame_exchange(c, "00 00 FF 05 FB D4 14 01 00 00 17 00") == bytes.fromhex("0000FF02FED515 1600".replace(" ", ""))
    assert frame_exchange(c, "00 00 FF 06 FA D4 32 05 FF 01 02 F3 00") == bytes.fromhex("0000FF02FED533F800")
    assert c.max_retries == (0xFF, 0x01, 0x02)


def test_list_passive_target_answers_the_spec_target_data():
    c = Pn532Core()
    c.place(tag("smw-ntag213.nfc"))
    got = frame_exchange(c, "00 00 FF 04 FC D4 4A 01 00 E1 00")
    assert got == bytes.fromhex("0000FF0FF1D54B01010044000704 16C6C2D7388161 00".replace(" ", ""))


def test_no_tag_with_finite_retries_is_the_spec_empty_answer():
    c = Pn532Core()
    c.handle(bytes.fromhex("3205FF0100"))
    assert frame_exchange(c, "00 00 FF 04 FC D4 4A 01 00 E1 00") == bytes.fromhex("0000FF03FDD54B00E000")
    assert c.retry_time() > 0


def test_max_retries_ff_waits_until_a_tag_is_placed():
    c = Pn532Core()  # power-up default: FF
    assert c.handle(bytes.fromhex("4A0100")) is None and c.waiting
    assert c.complete_wait() is None
    c.place(tag())
    assert c.complete_wait()[:3] == bytes.fromhex("4B0101") and not c.waiting


def test_host_ack_aborts_the_waiting_list():
    c = Pn532Core()
    c.handle(bytes.fromhex("4A0100"))
    c.abort()
    c.place(tag())
    assert c.complete_wait() is None


def test_read_page_4_through_in_data_exchange_from_the_spec(core):
    got = frame_exchange(core, "00 00 FF 05 FB D4 40 01 30 04 B7 00")
    assert FrameDecoder().feed(got) == [Frame(TFI_CHIP, b"\x41\x00" + bytes(core.tag.memory[16:32]))]


def test_get_version_through_in_communicate_thru_from_the_spec(core):
    got = frame_exchange(core, "00 00 FF 03 FD D4 42 60 8A 00")
    assert FrameDecoder().feed(got) == [Frame(TFI_CHIP, bytes.fromhex("43000004040201001103"))]


def test_fast_read_and_read_sig_through_in_communicate_thru(core):
    assert core.handle(bytes.fromhex("423A0003")) == b"\x43\x00" + bytes(core.tag.memory[:16])
    assert len(core.handle(bytes.fromhex("423C00"))) == 2 + 32


def test_crc_check_off_appends_crc_a_and_passes_the_4_bit_ack_and_nak(core):
    core.handle(bytes.fromhex("08630300"))  # CIU_RxMode bit 7 cleared, as nfcpy does
    r = core.handle(bytes.fromhex("423004"))
    assert r[2:] == r[2:18] + crc_a(r[2:18])
    assert core.handle(bytes.fromhex("42A20501020304")) == bytes.fromhex("43000A")
    assert core.handle(bytes.fromhex("42A20001020304")) == bytes.fromhex("430000")  # NAK 0


def test_with_crc_check_on_a_raw_ack_is_a_crc_error_and_data_exchange_knows_mifare(core):
    assert core.handle(bytes.fromhex("42A20501020304")) == b"\x43\x02"
    core.handle(bytes.fromhex("4A0100"))
    assert core.handle(bytes.fromhex("4001A20501020304")) == b"\x41\x00"
    assert core.handle(bytes.fromhex("4001A20001020304")) == b"\x41\x14"  # NAK


def test_a_tag_gone_mid_command_is_status_01(core):
    core.remove()
    assert core.handle(bytes.fromhex("40013000")) == b"\x41\x01"


def test_a_swapped_tag_does_not_answer_until_listed_again(core):
    core.place(tag("smw-ntag213.nfc"))
    assert core.handle(bytes.fromhex("40013000")) == b"\x41\x01"
    assert core.handle(bytes.fromhex("4A0100"))[6:] == bytes.fromhex("070416C6C2D73881")
    assert core.handle(bytes.fromhex("40013000"))[:2] == b"\x41\x00"


def test_wrong_target_number_and_no_target_are_status_27(core):
    assert core.handle(bytes.fromhex("40023000")) == b"\x41\x27"
    core.handle(bytes.fromhex("5200"))  # InRelease
    assert core.handle(bytes.fromhex("40013000")) == b"\x41\x27"
    assert core.handle(bytes.fromhex("5401")) == b"\x55\x27"


def test_deselect_halts_the_tag_and_select_wakes_it(core):
    assert core.handle(bytes.fromhex("4401")) == b"\x45\x00"
    assert core.handle(bytes.fromhex("40013000")) == b"\x41\x01"
    assert core.handle(bytes.fromhex("5401")) == b"\x55\x00"
    assert core.handle(bytes.fromhex("40013000"))[:2] == b"\x41\x00"


def test_rf_off_silences_the_tag_until_listed(core):
    core.handle(bytes.fromhex("320100"))
    assert core.handle(bytes.fromhex("40013000")) == b"\x41\x27"
    assert core.handle(bytes.fromhex("4A0100"))[:3] == bytes.fromhex("4B0101") and core.rf_on


def test_classic_auth_bad_key_is_14_then_reselect_and_right_key_reads():
    c = Pn532Core()
    card = tag("genesis-classic1k.nfc")
    c.place(card)
    c.handle(bytes.fromhex("4A0100"))
    uid4 = card.uid[-4:]
    assert c.handle(bytes.fromhex("40016004FFFFFFFFFFFF") + uid4) == b"\x41\x14"
    assert c.handle(bytes.fromhex("40013004")) == b"\x41\x01"  # the card stays silent after a failed auth
    c.handle(bytes.fromhex("4A0100"))
    assert c.handle(bytes.fromhex("40016004D3F7D3F7D3F7") + uid4) == b"\x41\x00"
    assert c.handle(bytes.fromhex("40013004"))[:3] == bytes.fromhex("410003")
    assert c.handle(bytes.fromhex("40013007"))[2:8] == bytes(6)  # key A reads back as zeros
    assert c.handle(bytes.fromhex("4001A005") + bytes(range(16))) == b"\x41\x00"
    assert bytes(card.memory[80:96]) == bytes(range(16))


def test_registers_read_back_and_fifo_reads_26_with_no_tag():
    c = Pn532Core()
    assert c.handle(bytes.fromhex("066303 6339".replace(" ", ""))) == bytes.fromhex("078026")
    assert c.handle(bytes.fromhex("08630300 630212".replace(" ", ""))) == b"\x09"
    assert c.handle(bytes.fromhex("0663036302")) == bytes.fromhex("070012") and not c.crc_checked


def test_set_serial_baudrate_remembers_the_speed_for_after_the_ack():
    c = Pn532Core()
    assert c.handle(b"\x10\x07") == b"\x11" and c.new_baud == 921600


def test_diagnose_line_test_echoes_and_misc_commands_answer():
    data = bytes([0x00]) + bytes(i & 0xFF for i in range(262))
    c = Pn532Core()
    assert c.handle(b"\x00" + data) == b"\x01" + data
    assert c.handle(b"\x12\x00") == b"\x13"
    assert c.handle(b"\x16\x20\x01") == b"\x17\x00"


@pytest.mark.parametrize("data", [b"", b"\xee", b"\x4a", b"\x32"])
def test_unknown_or_truncated_commands_get_the_application_error(data):
    assert Pn532Core().handle(data) is UNKNOWN


def test_truncated_exchange_is_a_syntax_error_status():
    assert Pn532Core().handle(b"\x40") == b"\x41\x27"


def test_ultralight_without_get_version_does_not_answer():
    c = Pn532Core()
    c.place(tag("ultralight.nfc"))
    c.handle(bytes.fromhex("4A0100"))
    assert c.handle(bytes.fromhex("4260")) == b"\x43\x01"


def test_list_with_initiator_data_selects_only_that_uid():
    c = Pn532Core()
    c.handle(bytes.fromhex("3205FF0100"))
    card = tag("genesis-classic1k.nfc")
    c.place(card)
    assert c.handle(bytes.fromhex("4A0100") + bytes.fromhex("01020304")) == b"\x4b\x00"
    assert c.handle(bytes.fromhex("4A0100") + card.uid)[:3] == bytes.fromhex("4B0101")


def test_list_with_a_cascaded_7_byte_uid_as_nfcpy_sends_it():
    c = Pn532Core()
    t = tag("smw-ntag213.nfc")
    c.place(t)
    assert c.handle(bytes.fromhex("4A0100") + b"\x88" + t.uid)[6:] == bytes.fromhex("070416C6C2D73881")


def test_select_after_the_tag_left_or_was_swapped_gets_no_answer(core):
    core.remove()
    assert core.handle(bytes.fromhex("5401")) == b"\x55\x01"
    core.place(tag("smw-ntag213.nfc"))
    assert core.handle(bytes.fromhex("5401")) == b"\x55\x01"
