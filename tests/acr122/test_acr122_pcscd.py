"""The ACR122U driver end to end through a real pcscd, vpcd and pyscard, with the virtual card."""

import time

import pytest

from conftest import FIXTURES, Events
from pcsc_harness import READER, pcscd, rig, wait_slot  # noqa: F401  (fixtures)
from tagd.ndef.decode import decode_dump
from tagd.readers.base import ReaderAdded, ReaderLost, ReaderWorker, TagGone, TagSeen, WriteError, WriteRequest, \
    open_reader
from tagd.sim.acr122 import VirtualAcr122


def test_ntag_tap_and_removal(rig):
    sim, worker, wait, added = rig
    assert added.info.driver == "acr122" and added.info.reader_id.startswith("acr122-")
    sim.place(FIXTURES / "snes-ntag215.nfc")
    seen = wait(TagSeen)
    assert seen.token.text == "**launch.system:snes" and seen.token.uid == "04a1b2c3d4e5f6"
    sim.remove()
    wait(TagGone)


def test_classic_tap(rig):
    sim, worker, wait, _ = rig
    sim.place(FIXTURES / "genesis-classic1k.nfc")
    seen = wait(TagSeen)
    assert seen.token.text == "**launch.random:genesis" and seen.token.type == "MIFARE"


def test_write_verify_and_read_back(rig):
    sim, worker, wait, _ = rig
    tag = sim.place(FIXTURES / "factory-ntag213.nfc")
    wait(TagSeen)
    seen = worker.submit_write(WriteRequest("**launch.system:pcsc", timeout=5)).result(30)
    assert seen.written and seen.token.text == "**launch.system:pcsc"
    assert decode_dump(tag.snapshot()).text == "**launch.system:pcsc"


def test_text_too_long_is_refused_and_the_tag_unchanged(rig):
    sim, worker, wait, _ = rig
    tag = sim.place(FIXTURES / "smw-ntag213.nfc")
    wait(TagSeen)
    before = bytes(tag.memory)
    with pytest.raises(WriteError, match="holds"):
        worker.submit_write(WriteRequest("x" * 300, timeout=5)).result(30)
    assert bytes(tag.memory) == before


def test_stopping_pcscd_is_reader_lost_and_it_comes_back(rig, pcscd):
    sim, worker, wait, _ = rig
    pcscd.stop()
    lost = wait(ReaderLost, timeout=10)
    assert lost.reason
    pcscd.start()
    wait(ReaderAdded, timeout=15)
    sim.place(FIXTURES / "snes-ntag215.nfc")
    assert wait(TagSeen).token.text == "**launch.system:snes"


def test_manager_finds_acr122_readers_in_pcscd_and_prunes_them(pcscd):
    from tagd.readers.manager import ReaderManager

    events = Events()
    manager = ReaderManager(events.put, [], auto_detect=True, scan_interval=0.2, retry=0.2, patterns=())
    manager.start()
    try:
        added = events.wait(ReaderAdded, timeout=8)
        assert added.info.driver == "acr122" and "ACR122U Virtual PCD" in added.info.path
        pcscd.stop()
        events.wait(ReaderLost, timeout=10)
        deadline = time.monotonic() + 5
        while manager.workers() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert manager.workers() == []  # pruned with the reader list
    finally:
        manager.stop()
        if pcscd.proc is None:
            pcscd.start()


def test_buzzer_off_and_led_on_read_options(pcscd):
    events = Events()
    sim = VirtualAcr122(pcscd.port)
    worker = ReaderWorker(open_reader(f"acr122:{READER}", {"buzzer": False, "led_on_read": True}), events.put).start()
    try:
        events.wait(ReaderAdded)
        tag = sim.place(FIXTURES / "snes-ntag215.nfc")
        events.wait(TagSeen)
        assert sim.card.led != 0 and tag is sim.tag
    finally:
        sim.remove()
        wait_slot(present=False)
        worker.stop()


def test_zaparoos_driver_name_acr122_pcsc_opens_the_reader_and_is_not_detected_twice(pcscd):
    """A Zaparoo config says driver = "acr122_pcsc": it must open the reader, with the acr122 options,
    and auto-detection must not open the same reader a second time."""
    from tagd.daemon.config import ReaderConnect
    from tagd.readers.manager import ReaderManager

    connect = ReaderConnect(driver="acr122_pcsc", path=READER).connect_string
    events = Events()
    manager = ReaderManager(events.put, [connect], auto_detect=True, options={"acr122": {"buzzer": False}},
                            scan_interval=0.2, retry=0.2, patterns=())
    manager.start()
    sim = VirtualAcr122(pcscd.port)
    try:
        added = events.wait(ReaderAdded, timeout=8)
        assert added.info.driver == "acr122pcsc" and added.info.reader_id.startswith("acr122pcsc-")
        assert manager.workers()[0].reader.options["buzzer"] is False
        time.sleep(0.6)  # three detection passes
        paths = [w.reader.path for w in manager.workers()]
        assert paths.count(READER) == 1, paths  # (vpcd's second slot, "… 00 01", is another reader: detected)
        sim.place(FIXTURES / "snes-ntag215.nfc")
        assert events.wait(TagSeen).token.text == "**launch.system:snes"
    finally:
        sim.remove()
        wait_slot(present=False)
        manager.stop()
