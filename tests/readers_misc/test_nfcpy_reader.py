"""The nfcpy-backed driver through nfcpy's own tty path against the emulated PN532, alone and in the daemon."""

import asyncio
import os
import uuid

import pytest

from conftest import FIXTURES, Events, need
from tagd.ndef.decode import decode_dump
from tagd.readers.base import ReaderAdded, ReaderWorker, TagGone, TagSeen, WriteRequest
from tagd.sim.pn532 import Pn532Emulator


@pytest.fixture
def nfcpy_emulator():
    try:
        import nfc
    except ImportError:
        nfc = None
    need(nfc is not None, "nfcpy is not installed (extra 'nfcpy')")
    need(os.access("/dev", os.W_OK), "needs write access to /dev to link the pty (run as root)")
    name = f"tagdnfc{uuid.uuid4().hex[:6]}"
    emu = Pn532Emulator()
    emu.start()
    emu.link(f"/dev/{name}")
    yield emu, f"nfcpy:tty:{name}:pn532"
    emu.stop()


def test_nfcpy_driver_reads_removes_and_writes(nfcpy_emulator):
    from tagd.readers.base import open_reader

    emu, connect = nfcpy_emulator
    events = Events()
    worker = ReaderWorker(open_reader(connect), events.put).start()
    wait = events.wait

    try:
        wait(ReaderAdded)
        emu.place(FIXTURES / "snes-ntag215.nfc")
        seen = wait(TagSeen)
        assert seen.token.text == "**launch.system:snes" and seen.token.uid == "04a1b2c3d4e5f6"
        assert seen.token.data == decode_dump(emu.tag.snapshot()).data
        emu.remove()
        wait(TagGone)
        emu.place(FIXTURES / "smw-ntag213.nfc")
        wait(TagSeen)
        written = worker.submit_write(WriteRequest("**launch.system:nfcpy", timeout=5)).result(20)
        assert written.written and written.token.text == "**launch.system:nfcpy"
        assert decode_dump(emu.tag.snapshot()).text == "**launch.system:nfcpy"
    finally:
        worker.stop()


async def test_nfcpy_reader_feeds_the_daemon_pipeline(nfcpy_emulator, tmp_path):
    from tagd.daemon.config import Config
    from tagd.daemon.service import Daemon

    emu, connect = nfcpy_emulator
    config = Config.model_validate({"readers": {"auto_detect": False}, "database": str(tmp_path / "t.db"),
                                    "api": {"listen": "127.0.0.1:0"}})
    d = Daemon(config, tmp_path / "c.toml", extra_readers=[connect])
    await d.start()
    try:
        for _ in range(100):
            if d.reader_infos():
                break
            await asyncio.sleep(0.1)
        emu.place(FIXTURES / "snes-ntag215.nfc")
        for _ in range(100):
            if d.store.history(1):
                break
            await asyncio.sleep(0.1)
        assert d.store.history(1)[0].text == "**launch.system:snes"
        assert d.reader_infos()[0].driver == "nfcpy"
    finally:
        await d.stop()


def test_nfcpy_reader_lost_on_unplug_and_back_on_replug(nfcpy_emulator):
    from tagd.readers.base import ReaderLost, open_reader

    emu, connect = nfcpy_emulator
    events = Events()
    worker = ReaderWorker(open_reader(connect), events.put, retry=0.1).start()
    try:
        events.wait(ReaderAdded)
        emu.unplug()
        assert events.wait(ReaderLost).reason
        emu.replug()
        events.wait(ReaderAdded)
        emu.place(FIXTURES / "snes-ntag215.nfc")
        assert events.wait(TagSeen).token.text == "**launch.system:snes"
    finally:
        worker.stop()


def test_nfcpy_stop_returns_quickly_while_sensing(nfcpy_emulator):
    import time

    from tagd.readers.base import open_reader

    emu, connect = nfcpy_emulator
    events = Events()
    worker = ReaderWorker(open_reader(connect), events.put).start()
    events.wait(ReaderAdded)
    time.sleep(0.3)
    t0 = time.monotonic()
    worker.stop()
    assert time.monotonic() - t0 < 2.0 and not worker._thread.is_alive()
