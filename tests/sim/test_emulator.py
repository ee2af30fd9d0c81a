"""Pn532Emulator on a real pty, driven by a bare host (frames written and read by hand)."""

from __future__ import annotations

import errno
import os
import select
import time
import tty

import pytest

from conftest import FIXTURES, until
from tagd.readers.pn532.frames import (ACK, ERROR_FRAME, NACK, TFI_CHIP, WAKEUP, Ack, BadFrame, ErrorFrame, Frame,
                                       FrameDecoder, Nack, encode_command, encode_frame)
from tagd.sim import rf_time
from tagd.sim.pn532 import TRY_TIME, Faults, Pn532Emulator

NTAG = FIXTURES / "snes-ntag215.nfc"


class Host:
    def __init__(self, path: str) -> None:
        self.fd = os.open(path, os.O_RDWR | os.O_NOCTTY)
        tty.setraw(self.fd)
        self.decoder = FrameDecoder()

    def send(self, raw: bytes) -> float:
        """Write, and return the time just before: a lower bound for what the emulator does with it (taken
        after the write, a preempted test thread would stamp it later than the emulator saw the bytes)."""
        t0 = time.monotonic()
        os.write(self.fd, raw)
        return t0

    def read(self, count: int = 1, timeout: float = 5.0) -> list:
        """Up to ``count`` items, as soon as they arrive; the timeout only bounds a wait for what never comes (a
        loaded CI machine can starve the emulator's thread for a second)."""
        items: list = []
        deadline = time.monotonic() + timeout
        while len(items) < count:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.fd], [], [], left)[0]:
                break
            items += self.decoder.feed(os.read(self.fd, 4096))
        return items

    def command(self, code: int, params: bytes = b"", timeout: float = 5.0) -> list:
        self.send(encode_command(code, params))
        return self.read(2, timeout)

    def close(self) -> None:
        os.close(self.fd)


@pytest.fixture
def rig(request):
    opts = getattr(request, "param", {})
    emu = Pn532Emulator(opts.get("tag", NTAG), baud=opts.get("baud"), faults=opts.get("faults"))
    host = Host(emu.start())
    yield emu, host
    host.close()
    emu.stop()


def response(data: bytes) -> Frame:
    return Frame(TFI_CHIP, data)


def test_command_gets_ack_then_response_and_bytes_are_counted(rig):
    emu, host = rig
    assert host.command(0x02) == [Ack(), response(bytes.fromhex("0332010607"))]
    assert emu.bytes_in == 9 and emu.bytes_out == 6 + 13
    assert emu.stats()["command_bytes"] == {"02": {"in": 9, "out": 19}}


def test_wakeup_preamble_before_the_first_command_is_ignored(rig):
    emu, host = rig
    host.send(WAKEUP + encode_command(0x14, b"\x01\x00\x00"))
    assert host.read(2) == [Ack(), response(b"\x15")]


@pytest.mark.parametrize("rig", [{"tag": None}], indirect=True)
def test_list_with_retries_ff_answers_when_a_tag_is_placed(rig):
    emu, host = rig
    host.send(encode_command(0x4A, b"\x01\x00"))
    assert host.read(1) == [Ack()] and host.read(1, 0.3) == []  # waiting for a tag
    emu.place(NTAG)
    (got,) = host.read(1)
    assert got.data[:3] == bytes.fromhex("4B0101")


@pytest.mark.parametrize("rig", [{"tag": None}], indirect=True)
def test_host_ack_aborts_a_waiting_list(rig):
    emu, host = rig
    host.send(encode_command(0x4A, b"\x01\x00"))
    assert host.read(1) == [Ack()]
    host.send(ACK)
    assert until(lambda: not emu.core.waiting)  # the emulator has taken the abort
    emu.place(NTAG)
    assert host.read(1, 0.3) == []
    assert host.command(0x02)[1] == response(bytes.fromhex("0332010607"))


@pytest.mark.parametrize("rig", [{"tag": None}], indirect=True)
def test_finite_retries_take_n_plus_1_tries_then_answer_none(rig):
    emu, host = rig
    host.command(0x32, b"\x05\xff\x01\x31")  # 49 retries = 50 tries
    t0 = host.send(encode_command(0x4A, b"\x01\x00"))
    got = host.read(2)
    assert got == [Ack(), response(b"\x4b\x00")]
    assert time.monotonic() - t0 >= 50 * TRY_TIME


@pytest.mark.parametrize("rig", [{"tag": None}], indirect=True)
def test_a_tag_placed_during_the_retries_is_found(rig):
    emu, host = rig
    host.command(0x32, b"\x05\xff\x01\xfe")  # 255 tries, about half a second
    host.send(encode_command(0x4A, b"\x01\x00"))
    assert host.read(1) == [Ack()]
    emu.place(NTAG)
    (got,) = host.read(1)
    assert got.data[:3] == bytes.fromhex("4B0101")


def test_host_nack_gets_the_last_response_again(rig):
    emu, host = rig
    first = host.command(0x02)[1]
    host.send(NACK)
    assert host.read(1) == [first]


def test_bad_checksum_from_the_host_gets_a_nack(rig):
    emu, host = rig
    bad = bytearray(encode_command(0x02))
    bad[-2] ^= 0xFF
    host.send(bytes(bad))
    assert host.read(1) == [Nack()]


@pytest.mark.parametrize("raw", [encode_frame(0xD5, b"\x02"), encode_command(0xEE)])
def test_wrong_tfi_or_unknown_command_gets_the_application_error_frame(rig, raw):
    emu, host = rig
    host.send(raw)
    got = host.read(1)
    got += host.read(1, 0.3) if got and got[0] == Ack() else []
    assert got[-1] == ErrorFrame()


@pytest.mark.parametrize("rig", [{"faults": Faults(corrupt_byte=6 + 7)}], indirect=True)  # a response data byte
def test_fault_corrupt_byte_reaches_the_host_as_a_bad_frame(rig):
    emu, host = rig
    got = host.command(0x02)
    assert got[0] == Ack() and isinstance(got[1], BadFrame)


@pytest.mark.parametrize("rig", [{"faults": Faults(drop_byte=0)}], indirect=True)
def test_fault_drop_byte_loses_one_byte_of_the_ack(rig):
    emu, host = rig
    got = host.command(0x02)
    assert got == [Ack(), response(bytes.fromhex("0332010607"))] or Ack() not in got
    assert emu.bytes_out == 6 + 13 - 1


@pytest.mark.parametrize("rig", [{"faults": Faults(ack_delay=0.2)}], indirect=True)
def test_fault_ack_delay_holds_the_ack_back(rig):
    emu, host = rig
    t0 = host.send(encode_command(0x02))
    assert host.read(1)[0] == Ack() and time.monotonic() - t0 >= 0.2


@pytest.mark.parametrize("rig", [{"faults": Faults(remove_after=2)}], indirect=True)
def test_fault_remove_after_n_tag_commands(rig):
    emu, host = rig
    host.command(0x4A, b"\x01\x00")
    assert host.command(0x40, b"\x01\x30\x00")[1].data[:2] == b"\x41\x00"
    assert host.command(0x40, b"\x01\x30\x04")[1].data == b"\x41\x01"
    assert emu.tag is None


@pytest.mark.parametrize("rig", [{"faults": Faults(unplug_after=2)}], indirect=True)
def test_fault_unplug_after_n_frames_hangs_up_the_host(rig):
    emu, host = rig
    host.command(0x02)
    host.send(encode_command(0x02))
    assert hung_up(host)


def hung_up(host: Host) -> bool:
    """The pty's master side is gone: reads see end of file, writes fail with EIO."""
    if not select.select([host.fd], [], [], 1)[0] or os.read(host.fd, 100) != b"":
        return False
    try:
        os.write(host.fd, ACK)
    except OSError as exc:
        return exc.errno == errno.EIO
    return False


def test_unplug_then_replug_repoints_the_link_to_a_new_pty(rig, tmp_path):
    emu, host = rig
    link = tmp_path / "pn532"
    emu.link(link)
    old = os.readlink(link)
    emu.unplug()
    assert hung_up(host) and not os.path.exists(old)
    new_path = emu.replug()
    assert os.readlink(link) == new_path and emu.tag is not None
    again = Host(str(link))
    try:
        assert again.command(0x02)[1] == response(bytes.fromhex("0332010607"))
    finally:
        again.close()


@pytest.mark.parametrize("rig", [{"baud": 9600}], indirect=True)
def test_paced_response_cannot_arrive_before_its_wire_time(rig):
    emu, host = rig
    t0 = host.send(encode_command(0x02))
    got = host.read(2)
    elapsed = time.monotonic() - t0
    assert got[1] == response(bytes.fromhex("0332010607"))
    wire = (9 + 6 + 13) * 10 / 9600  # command in, ACK and response out, 10 bits a byte
    assert elapsed >= wire


@pytest.mark.parametrize("rig", [{"baud": 115200}], indirect=True)
def test_paced_tag_command_adds_the_tag_time(rig):
    emu, host = rig
    host.command(0x4A, b"\x01\x00")
    t0 = host.send(encode_command(0x42, b"\x3a\x00\x3b"))
    got = host.read(2)
    elapsed = time.monotonic() - t0
    assert len(got[1].data) == 2 + 60 * 4
    wire = (10 + 6 + 2 + 242 + 7) * 10 / 115200
    assert elapsed >= wire + rf_time.command_time(b"\x3a\x00\x3b", bytes(240))


@pytest.mark.parametrize("rig", [{"baud": 115200}], indirect=True)
def test_set_serial_baudrate_switches_speed_after_the_host_ack(rig):
    emu, host = rig
    assert host.command(0x10, b"\x07") == [Ack(), response(b"\x11")]
    assert emu.baud == 115200
    host.send(ACK)
    assert until(lambda: emu.baud == 921600)


def test_diagnose_line_test_echoes_an_extended_frame(rig):
    emu, host = rig
    data = bytes([0x00]) + bytes(i & 0xFF for i in range(262))
    got = host.command(0x00, data)
    assert got[1] == Frame(TFI_CHIP, b"\x01" + data, True)


def test_error_frame_constant_is_what_the_host_receives(rig):
    emu, host = rig
    host.send(encode_command(0xEE))
    os.read(host.fd, 6)  # the ACK
    assert select.select([host.fd], [], [], 1)[0] and os.read(host.fd, 64) == ERROR_FRAME
