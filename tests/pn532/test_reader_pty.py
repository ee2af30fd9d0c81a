"""The PN532 driver end to end through a pty against the emulator (no mock of the serial layer)."""

import time

import pytest

from conftest import FIXTURES, until
from pn532_rig import Faults, ReaderAdded, ReaderLost, Rig, TagGone, TagSeen
from tagd.ndef import classic, dumps, type2
from tagd.ndef.decode import decode_dump
from tagd.readers.base import WriteError, WriteRequest
from tagd.sim.tags import EmulatedTag


@pytest.fixture
def rig():
    r = Rig()
    r.next(ReaderAdded)
    yield r
    r.close()


@pytest.mark.parametrize("name,text", [
    ("snes-ntag215.nfc", "**launch.system:snes"),
    ("smw-ntag213.nfc", "@SNES/Super Mario World"),
    ("ultralight.nfc", "**launch.system:nes"),
    ("genesis-classic1k.nfc", "**launch.random:genesis"),
    ("classic4k.json", "**launch.system:psx"),
    ("ntag216.bin", "**launch.system:n64"),
])
def test_tap_gives_the_token(rig, name, text):
    rig.emu.place(FIXTURES / name)
    _, seen = rig.next(TagSeen)
    assert seen.token.text == text
    assert seen.token.uid == dumps.load(FIXTURES / name).uid.hex()
    assert seen.token.reader_id == rig.reader.info.reader_id


def test_long_zapscript_with_3_byte_tlv_length(rig):
    rig.emu.place(FIXTURES / "long-zapscript-ntag215.nfc")
    _, seen = rig.next(TagSeen)
    assert seen.token.text == decode_dump(dumps.load(FIXTURES / "long-zapscript-ntag215.nfc")).text
    assert len(seen.token.text) == 300


@pytest.mark.parametrize("name,token_type", [("amiibo-style.bin", "Amiibo"), ("toy-ntag215.bin", "NTAG")])
def test_a_tag_without_ndef_gives_the_data_its_dump_decodes_to(rig, name, token_type):
    rig.emu.place(FIXTURES / name)
    _, seen = rig.next(TagSeen)
    assert seen.token.type == token_type
    assert seen.token.data == decode_dump(dumps.load(FIXTURES / name)).data != ""


def test_removal_is_noticed_without_a_new_tag(rig):
    # How fast is bench/pn532_latency.py's job (removal p50 ~36 ms); here only that the presence check notices it.
    rig.emu.place(FIXTURES / "snes-ntag215.nfc")
    rig.next(TagSeen)
    time.sleep(0.2)
    t0 = time.monotonic()
    rig.emu.remove()
    t, _ = rig.next(TagGone)
    assert t - t0 < 1.0


def test_idle_reader_sends_nothing_while_waiting_for_a_tag(rig):
    assert until(lambda: rig.emu.commands[0x4A] >= 1, 5)  # the long-poll InListPassiveTarget is out
    time.sleep(0.05)
    before = rig.emu.bytes_in
    time.sleep(1.0)
    assert rig.emu.bytes_in - before == 0
    assert rig.quiet(0) == []


def test_write_then_read_back(rig):
    rig.emu.place(FIXTURES / "factory-ntag213.nfc")
    rig.next(TagSeen)
    seen = rig.worker.submit_write(WriteRequest("**launch.system:snes", timeout=5)).result(10)
    assert seen.written and seen.token.text == "**launch.system:snes"
    assert decode_dump(rig.emu.tag.snapshot()).text == "**launch.system:snes"


def test_write_waits_for_a_tag(rig):
    fut = rig.worker.submit_write(WriteRequest("hello", timeout=5))
    time.sleep(0.3)
    rig.emu.place(FIXTURES / "snes-ntag215.nfc")
    assert fut.result(10).token.text == "hello"


def test_write_formats_a_blank_classic_card(rig):
    blank = dumps.loads(classic.blank_image("classic1k", bytes.fromhex("0a0b0c0d")), "blank")
    rig.emu.place(EmulatedTag(blank))
    rig.next(TagSeen)
    seen = rig.worker.submit_write(WriteRequest("**launch.system:amiga", timeout=5)).result(20)
    assert seen.token.text == "**launch.system:amiga"
    card = classic.ClassicMemory(bytes(rig.emu.tag.memory))
    assert card.trailer(1).key_a == classic.KEY_NDEF and card.ndef_sectors


def test_text_too_long_fails_before_any_write(rig):
    rig.emu.place(FIXTURES / "smw-ntag213.nfc")
    rig.next(TagSeen)
    before = bytes(rig.emu.tag.memory)
    with pytest.raises(WriteError, match=r"needs \d+ bytes but the NTAG213 holds"):
        rig.worker.submit_write(WriteRequest("x" * 300, timeout=5)).result(10)
    assert bytes(rig.emu.tag.memory) == before and rig.emu.tag.writes == 0


def test_write_refuses_excluded_and_non_target_tags(rig):
    rig.emu.place(FIXTURES / "snes-ntag215.nfc")
    rig.next(TagSeen)
    with pytest.raises(WriteError, match="excluded"):
        rig.worker.submit_write(WriteRequest("x", exclude_uids=frozenset({"04:A1:B2:C3:D4:E5:F6"}))).result(10)
    with pytest.raises(WriteError, match="not the target"):
        rig.worker.submit_write(WriteRequest("x", target_uid="04ffffffffffff")).result(10)
    assert rig.emu.tag.writes == 0


def test_write_cancel(rig):
    req = WriteRequest("x", timeout=10)
    fut = rig.worker.submit_write(req)
    time.sleep(0.3)
    req.cancel.set()
    with pytest.raises(WriteError, match="cancelled"):
        fut.result(5)


@pytest.mark.parametrize("cut", [1, 2, 3, 4, 6, 8, 10, 12])
def test_tag_pulled_mid_write_never_reads_truncated(cut):
    r = Rig(faults=Faults())
    try:
        r.next(ReaderAdded)
        r.emu.place(FIXTURES / "snes-ntag215.nfc")
        r.next(TagSeen)
        r.emu.faults.remove_after = r.emu.core.tag_commands + cut
        tag = r.emu.tag
        new = "**launch.search:" + "Donkey Kong Country 2 " * 6
        with pytest.raises(WriteError):
            r.worker.submit_write(WriteRequest(new, timeout=2)).result(10)
        assert decode_dump(tag.snapshot()).text in ("**launch.system:snes", "")
    finally:
        r.close()


def test_classic_sector_with_unknown_keys_gives_empty_text_and_a_reason():
    d = dumps.load(FIXTURES / "genesis-classic1k.nfc")
    mem = bytearray(d.memory)
    t = classic.trailer_block(1) * 16
    mem[t:t + 6] = bytes.fromhex("123456789abc")
    mem[t + 10:t + 16] = bytes.fromhex("123456789abc")
    d.memory = bytes(mem)
    for options, text in (({}, ""), ({"keys": ["123456789abc"]}, "**launch.random:genesis")):
        r = Rig(EmulatedTag(d), options=options)
        try:
            _, seen = r.next(TagSeen)
            assert seen.token.text == text
            if not text:
                assert any("sector 1: keys unknown" in e for e in seen.detail["errors"])
        finally:
            r.close()


def test_firmware_1_4_clone_works():
    r = Rig(FIXTURES / "snes-ntag215.nfc", firmware="1.4")
    try:
        _, added = r.next(ReaderAdded)
        assert added.info.name == "PN532 v1.4"
        assert r.next(TagSeen)[1].token.text == "**launch.system:snes"
    finally:
        r.close()


def test_unplug_is_reader_lost_then_replug_reconnects_without_phantom_taps():
    r = Rig(retry=0.1)
    try:
        r.next(ReaderAdded)
        r.emu.unplug()
        r.next(ReaderLost)
        assert not any(isinstance(e, TagSeen) for e in r.quiet(0.3))
        r.emu.link_path = None
        path = r.emu.replug()
        r.reader.transport.path = path  # the pty name changes; a --link path would not
        r.next(ReaderAdded, timeout=5)
        r.emu.place(FIXTURES / "snes-ntag215.nfc")
        assert r.next(TagSeen)[1].token.text == "**launch.system:snes"
    finally:
        r.close()


def test_garbage_on_the_line_is_survived():
    r = Rig(FIXTURES / "snes-ntag215.nfc", faults=Faults(corrupt_byte=30))
    try:
        assert r.next(TagSeen, timeout=5)[1].token.text == "**launch.system:snes"
    finally:
        r.close()


def test_chip_that_stops_answering_is_reader_lost():
    r = Rig(retry=0.1)
    try:
        r.next(ReaderAdded)
        r.emu.place(FIXTURES / "snes-ntag215.nfc")
        r.next(TagSeen)
        r.emu.faults.ack_delay = 0.5  # far past the driver's 100 ms ACK timeout
        r.next(ReaderLost, timeout=5)
    finally:
        r.close()


@pytest.mark.parametrize("name", ["classic1k.mfd", "classic4k.json", "snes-ntag215.nfc", "ntag216.bin"])
def test_a_chip_whose_ack_comes_late_now_and_then_still_gives_the_tags_token(name):
    """A chip starved of time (on a loaded host, or an emulator under a busy test run) ACKs after the
    driver's 100 ms: the command is sent again, after a resync, and no answer is taken for the next one's
    (once a READ was answered by an authentication's empty answer and a card read as its UID only)."""
    expected = decode_dump(dumps.load(FIXTURES / name)).to_token()
    r = Rig(faults=Faults(late_ack_every=9))
    try:
        r.next(ReaderAdded, timeout=5)
        for _ in range(3):  # the late ACK falls on a different command each time
            r.emu.place(FIXTURES / name)
            seen = r.next(TagSeen, timeout=20)[1]
            assert (seen.token.text, seen.token.data, seen.detail["errors"]) == (expected.text, expected.data, [])
            r.emu.remove()
            r.next(TagGone, timeout=5)
    finally:
        r.close()


def test_paced_at_115200_a_tap_costs_a_few_hundred_bytes_and_tens_of_ms():
    r = Rig(baud=115200)
    try:
        r.next(ReaderAdded)
        time.sleep(0.1)
        r.emu.reset_stats()
        t0 = time.monotonic()
        r.emu.place(FIXTURES / "snes-ntag215.nfc")
        t, seen = r.next(TagSeen)
        wire = r.emu.bytes_in + r.emu.bytes_out
        assert seen.token.text == "**launch.system:snes"
        assert wire < 400 and t - t0 >= wire * 10 / 115200  # physically possible, and cheap
    finally:
        r.close()


def test_baud_option_switches_the_line_speed_after_open_and_back_at_close():
    r = Rig(baud=115200, options={"baud": 921600})
    try:
        r.next(ReaderAdded)
        assert r.emu.baud == 921600  # SetSerialBaudrate, then the host's ACK
        r.emu.place(FIXTURES / "snes-ntag215.nfc")
        assert r.next(TagSeen)[1].token.text == "**launch.system:snes"
    finally:
        r.worker.stop()
    assert until(lambda: r.emu.baud == 115200)  # a fresh open finds the chip at its power-up speed
    r.emu.stop()


def test_baud_option_that_the_chip_has_not_is_a_reader_error():
    from tagd.readers.base import ReaderError
    from tagd.readers.pn532.reader import Pn532Reader

    with pytest.raises(ReaderError, match="line speed 100000"):
        Pn532Reader("/dev/null", {"baud": 100000}).open()
