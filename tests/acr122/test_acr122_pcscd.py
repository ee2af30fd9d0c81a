"""The ACR122U driver end to end through a real pcscd, vpcd and pyscard, with the virtual card."""

import time

import pytest

from conftest import FIXTURES, Events
from pcsc_harness import READER, Pcscd
from tagd.ndef.decode import decode_dump
from tagd.readers.base import ReaderAdded, ReaderLost, ReaderWorker, TagGone, TagSeen, WriteError, WriteRequest, \
    open_reader
from tagd.sim.acr122 import VirtualAcr122


@pytest.fixture(scope="module")
def pcscd(tmp_path_factory):
    d = Pcscd(str(tmp_path_factory.mktemp("pcscd"))).start()
    yield d
    d.stop()


@pytest.fixture
def rig(pcscd):
    events = Events()
    sim = VirtualAcr122(pcscd.port)
    worker = ReaderWorker(open_reader(f"acr122:{READER}"), events.put, retry=0.3).start()
    wait = events.wait

    added = wait(ReaderAdded)
    yield sim, worker, wait, added
    sim.remove()
    time.sleep(1.0)  # vpcd/pcscd notice a removal on their next poll (~400 ms): leave the slot empty for the next test
    worker.stop()


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
