"""Writes through pcscd: a blank Classic is formatted, wrong/excluded tags and missing tags are refused
with the tag unchanged, a write waits for a tap, and a cancelled write stops waiting."""

import threading
import time

import pytest

from conftest import FIXTURES
from pcsc_harness import pcscd, rig  # noqa: F401  (fixtures)
from tagd.ndef import classic, dumps
from tagd.ndef.decode import decode_dump
from tagd.readers.base import TagSeen, WriteCancelled, WriteError, WriteRequest
from tagd.sim.tags import EmulatedTag


def test_blank_classic_is_formatted_written_and_read_back(rig):  # noqa: F811
    sim, worker, wait, _ = rig
    tag = sim.place(EmulatedTag(dumps.classic_dump(classic.blank_image("classic1k", bytes.fromhex("5a6b7c8d")))))
    assert wait(TagSeen).token.text == ""
    seen = worker.submit_write(WriteRequest("**launch.system:megadrive", timeout=5)).result(60)
    assert seen.written and seen.token.text == "**launch.system:megadrive" and seen.token.uid == "5a6b7c8d"
    image = classic.ClassicMemory(bytes(tag.memory))
    assert image.trailer(1).key_a == classic.KEY_NDEF  # formatted with the NFC Forum keys
    assert decode_dump(tag.snapshot()).text == "**launch.system:megadrive"


def test_classic_ndef_card_is_rewritten(rig):  # noqa: F811
    sim, worker, wait, _ = rig
    tag = sim.place(FIXTURES / "genesis-classic1k.nfc")
    wait(TagSeen)
    seen = worker.submit_write(WriteRequest("**launch.random:snes", timeout=5)).result(60)
    assert seen.token.text == "**launch.random:snes" and decode_dump(tag.snapshot()).text == "**launch.random:snes"


@pytest.mark.parametrize("request_", [
    WriteRequest("x", target_uid="04 00 00 00 00 00 01", timeout=5),
    WriteRequest("x", exclude_uids=frozenset({"04a1b2c3d4e5f6"}), timeout=5),
], ids=["not-the-target", "excluded"])
def test_wrong_or_excluded_tag_is_refused_and_unchanged(rig, request_):  # noqa: F811
    sim, worker, wait, _ = rig
    tag = sim.place(FIXTURES / "snes-ntag215.nfc")
    wait(TagSeen)
    before = bytes(tag.memory)
    with pytest.raises(WriteError, match="target|excluded"):
        worker.submit_write(request_).result(30)
    assert bytes(tag.memory) == before


def test_no_tag_times_out(rig):  # noqa: F811
    _, worker, _, _ = rig
    t = time.monotonic()
    with pytest.raises(WriteError, match="no tag within"):
        worker.submit_write(WriteRequest("x", timeout=0.8)).result(10)
    assert time.monotonic() - t < 3


def test_write_waits_for_the_tap(rig):  # noqa: F811
    sim, worker, _, _ = rig
    future = worker.submit_write(WriteRequest("**launch.system:nes", timeout=10))
    time.sleep(0.5)
    tag = sim.place(FIXTURES / "factory-ntag213.nfc")
    assert future.result(30).token.text == "**launch.system:nes"
    assert decode_dump(tag.snapshot()).text == "**launch.system:nes"


def test_cancelled_write_stops_waiting(rig):  # noqa: F811
    _, worker, _, _ = rig
    cancel = threading.Event()
    future = worker.submit_write(WriteRequest("x", timeout=30, cancel=cancel))
    time.sleep(0.3)
    cancel.set()
    with pytest.raises(WriteCancelled):
        future.result(5)
