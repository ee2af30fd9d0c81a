"""The PN532 driver over the emulator in memory (tagd.sim.memory): the same dialog as through a pty, as
function calls — what the transport factory is for."""

import time

import pytest

from conftest import FIXTURES
from pn532_rig import Faults, ReaderAdded, ReaderLost, Rig, TagGone, TagSeen
from tagd.ndef import dumps
from tagd.readers.base import WriteRequest
from tagd.readers.pn532.reader import Pn532Reader
from tagd.sim.memory import MemoryPn532


@pytest.fixture
def rig():
    r = Rig(memory=True)
    r.next(ReaderAdded)
    yield r
    r.close()


@pytest.mark.parametrize("name", ["snes-ntag215.nfc", "smw-ntag213.nfc", "ultralight.nfc", "genesis-classic1k.nfc"])
def test_tap_in_memory_gives_the_same_token_as_the_dump(rig, name):
    rig.emu.place(FIXTURES / name)
    _, seen = rig.next(TagSeen)
    assert seen.token.uid == dumps.load(FIXTURES / name).uid.hex()
    assert seen.token.text


def test_removal_in_memory_is_a_tag_gone(rig):
    rig.emu.place(FIXTURES / "snes-ntag215.nfc")
    rig.next(TagSeen)
    rig.emu.remove()
    rig.next(TagGone)


def test_write_in_memory_lands_on_the_emulated_tag(rig):
    rig.emu.place(FIXTURES / "factory-ntag213.nfc")
    rig.next(TagSeen)
    seen = rig.worker.submit_write(WriteRequest(text="**launch.system:snes", timeout=2)).result(5)
    assert seen.token.text == "**launch.system:snes"
    assert b"launch.system:snes" in bytes(rig.emu.tag.memory)


def test_unplug_in_memory_is_a_lost_reader_and_replug_brings_it_back():
    r = Rig(FIXTURES / "snes-ntag215.nfc", memory=True, retry=0.05)
    try:
        r.next(ReaderAdded)
        r.next(TagSeen)
        r.emu.unplug()
        r.next(ReaderLost)
        r.emu.replug()
        r.next(ReaderAdded)
        r.next(TagSeen)
    finally:
        r.close()


def test_memory_transport_is_faster_than_the_wire():
    """The point of running the driver in memory: a tap read costs no line time at all."""
    chip = MemoryPn532(FIXTURES / "long-zapscript-ntag215.nfc")
    reader = Pn532Reader("memory", transport_factory=chip.transport)
    reader.open()
    try:
        t0 = time.monotonic()
        events = reader.poll()
        elapsed = time.monotonic() - t0
    finally:
        reader.close()
    assert isinstance(events[0], TagSeen) and len(events[0].token.text) == 300
    wire = chip.stats()["bytes_in"] + chip.stats()["bytes_out"]
    assert elapsed < wire * 10 / 115200  # well under what those bytes take at 115200 baud
