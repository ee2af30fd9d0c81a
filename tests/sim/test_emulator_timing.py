"""Issue 14 items 7–9 (emulator fidelity): RFConfiguration item 02 timeouts, NACK and ACK-abort while
InListPassiveTarget is pending (UM0701-02 §6.2.1.3–6.2.1.5), and RF time from ISO 14443-3 frame lengths."""

from __future__ import annotations

import time

import pytest

from conftest import FIXTURES
from tagd.readers.pn532.frames import ACK, NACK, TFI_CHIP, Ack, Frame, FrameDecoder, encode_command
from tagd.sim import rf_time
from tagd.sim.pn532_core import Pn532Core
from tagd.sim.pn532_link import Pn532Link
from tagd.sim.tags import EmulatedTag

NTAG215 = FIXTURES / "snes-ntag215.nfc"
NTAG213 = FIXTURES / "smw-ntag213.nfc"


def frames(link: Pn532Link, chunks) -> list:
    decoder, out = FrameDecoder(), []
    for c in chunks:
        out += decoder.feed(c.data)
    return out


def listed_core(retry: int | None = None) -> Pn532Core:
    core = Pn532Core()
    if retry is not None:
        core.handle(bytes([0x32, 0x02, 0x00, 0x0B, retry]))
    core.place(EmulatedTag.from_file(NTAG215))
    core.handle(b"\x4a\x01\x00")
    return core


# --- item 7: RFConfiguration item 02 -----------------------------------------------------------------
@pytest.mark.parametrize("code,seconds", [(0x0A, 0.0512), (0x09, 0.0256), (0x05, 0.0016)])
def test_rf_configuration_item_02_retry_timeout_is_what_a_gone_tag_costs(code, seconds):
    core = listed_core(code)
    core.remove()
    assert core.handle(b"\x42\x30\x00") == b"\x43\x01"  # timeout
    assert core.wait_time(b"\x42\x30\x00") == pytest.approx(rf_time.reader_frame_time(4) + seconds)


def test_rf_configuration_item_02_power_up_retry_timeout_is_51_2_ms():
    core = listed_core()
    core.remove()
    core.handle(b"\x40\x01\x30\x00")
    assert core.wait_time(b"") == pytest.approx(rf_time.reader_frame_time(4) + 0.0512)


def test_rf_configuration_item_02_timeout_through_the_link_delays_the_timeout_status():
    link = Pn532Link(listed_core(0x0A))
    link.core.remove()
    out = link.receive(encode_command(0x42, b"\x30\x00"), 0.0)
    assert out[1].delay >= 0.0512 and frames(link, out)[1] == Frame(TFI_CHIP, b"\x43\x01")


# --- item 8: NACK and ACK-abort while InListPassiveTarget is pending ---------------------------------
def test_nack_while_list_pending_repeats_nothing_so_no_ghost_tag():
    link = Pn532Link()
    link.core.place(EmulatedTag.from_file(NTAG215))
    first = frames(link, link.receive(encode_command(0x4A, b"\x01\x00"), 0.0))
    assert first[1].data[:3] == bytes.fromhex("4B0101")
    link.core.remove()
    assert frames(link, link.receive(encode_command(0x4A, b"\x01\x00"), 0.0)) == [Ack()]  # waits (FF)
    assert link.receive(NACK, 0.0) == []  # the removed tag's answer is not repeated
    assert link.core.waiting  # the list goes on
    other = EmulatedTag.from_file(NTAG213)
    link.core.place(other)
    (found,) = frames(link, link.due(0.0))
    assert found.data[7:14] == other.uid  # the tag that is there, once
    assert link.due(0.0) == []


def test_nack_after_the_answer_repeats_that_answer():
    link = Pn532Link()
    answer = frames(link, link.receive(encode_command(0x02), 0.0))[1]
    assert frames(link, link.receive(NACK, 0.0)) == [answer]


def test_ack_abort_while_list_pending_ends_it_and_a_nack_then_repeats_nothing():
    link = Pn532Link()
    link.core.place(EmulatedTag.from_file(NTAG215))
    link.receive(encode_command(0x4A, b"\x01\x00"), 0.0)
    link.core.remove()
    link.receive(encode_command(0x4A, b"\x01\x00"), 0.0)
    assert link.receive(ACK, 0.0) == [] and not link.core.waiting
    assert link.receive(NACK, 0.0) == []
    link.core.place(EmulatedTag.from_file(NTAG213))
    assert link.due(0.0) == []  # the aborted list never answers
    assert frames(link, link.receive(encode_command(0x02), 0.0))[1].data[:1] == b"\x03"


def test_nack_while_list_pending_on_the_pty_gives_no_ghost(tmp_path):
    from tagd.sim.pn532 import Pn532Emulator
    import os
    import select
    import tty

    emu = Pn532Emulator(NTAG215)
    path = emu.start()
    fd = os.open(path, os.O_RDWR | os.O_NOCTTY)
    tty.setraw(fd)
    decoder = FrameDecoder()

    def read(n, timeout=1.0):
        got, deadline = [], time.monotonic() + timeout
        while len(got) < n and select.select([fd], [], [], max(0.0, deadline - time.monotonic()))[0]:
            got += decoder.feed(os.read(fd, 4096))
        return got

    try:
        os.write(fd, encode_command(0x4A, b"\x01\x00"))
        assert read(2)[1].data[:3] == bytes.fromhex("4B0101")
        emu.remove()
        os.write(fd, encode_command(0x4A, b"\x01\x00"))
        assert read(1) == [Ack()]
        os.write(fd, NACK)
        assert read(1, 0.3) == []
        other = emu.place(NTAG213)
        (found,) = read(1)
        assert found.data[7:14] == other.uid
    finally:
        os.close(fd)
        emu.stop()


# --- item 9: RF time from ISO 14443-3 frame lengths at 106 kbps --------------------------------------
def test_rf_time_frames_match_the_ntag_datasheet_timings():
    assert rf_time.reader_frame_time(4) == pytest.approx(368e-6, abs=3e-6)  # READ command (30 p + CRC)
    assert rf_time.tag_frame_time(18) == pytest.approx(1548e-6, abs=3e-6)  # its 16 bytes + CRC
    assert rf_time.reader_frame_time(3) == pytest.approx(283e-6, abs=3e-6)  # GET_VERSION command
    assert rf_time.tag_frame_time(10) == pytest.approx(868e-6, abs=3e-6)  # its 8 bytes + CRC
    assert rf_time.ACK_BITS * rf_time.BIT == pytest.approx(57e-6, abs=3e-6)  # a 4-bit ACK/NAK


def test_rf_time_activation_of_a_7_byte_uid_is_two_cascade_levels():
    one, two = rf_time.activation_time(4), rf_time.activation_time(7)
    assert 1e-3 < two - one < 3e-3 and 3e-3 < two < 6e-3


@pytest.mark.parametrize("pages", [1, 17, 60])
def test_rf_time_fast_read_grows_with_the_pages_read(pages):
    core = listed_core()
    core.handle(bytes([0x42, 0x3A, 0x04, 0x04 + pages - 1]))
    assert core.wait_time(b"") == pytest.approx(rf_time.exchange_time(3, 4 * pages))
    per_page = rf_time.exchange_time(3, 4 * pages) - rf_time.exchange_time(3, 4 * (pages - 1))
    assert per_page == pytest.approx(4 * 9 * rf_time.BIT)  # 4 bytes with parity per page: ~340 µs


def test_rf_time_of_the_listing_is_the_activation():
    core = Pn532Core()
    core.place(EmulatedTag.from_file(NTAG215))
    core.handle(b"\x4a\x01\x00")
    assert core.wait_time(b"") == pytest.approx(rf_time.activation_time(7))


def test_rf_time_write_waits_for_the_eeprom():
    core = listed_core()
    core.handle(bytes.fromhex("4001A20511223344"))
    assert core.wait_time(b"") == pytest.approx(rf_time.exchange_time(6, None) + rf_time.WRITE_TIME)
