"""Readers come and go without a restart: 100 unplug/replug cycles of an emulated PN532 under the manager,
with no file descriptor or thread left behind."""

import os
import threading
import time

from conftest import FIXTURES, Events
from tagd.readers.base import ReaderAdded, ReaderLost, TagSeen
from tagd.readers.manager import ReaderManager
from tagd.sim.pn532 import Pn532Emulator


def fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_100_unplug_replug_cycles_leak_nothing(tmp_path):
    events = Events()
    emu = Pn532Emulator()
    emu.start()
    emu.link(str(tmp_path / "tagd-pn532-test"))
    manager = ReaderManager(events.put, [], auto_detect=True, scan_interval=0.05, retry=0.05,
                            patterns=(str(tmp_path / "tagd-pn532*"),))

    wait = events.wait
    manager.start()
    try:
        wait(ReaderAdded)
        base_fds, base_threads = fds(), threading.active_count()
        for _ in range(100):
            emu.unplug()
            wait(ReaderLost)
            emu.replug()
            wait(ReaderAdded)
        time.sleep(0.3)
        assert len(manager.infos()) == 1
        assert fds() <= base_fds + 2, (base_fds, fds())
        assert threading.active_count() <= base_threads + 1, (base_threads, threading.active_count())
        emu.place(FIXTURES / "snes-ntag215.nfc")
        assert wait(TagSeen).token.text == "**launch.system:snes"
    finally:
        manager.stop()
        emu.stop()


def test_a_port_without_a_pn532_is_probed_once(tmp_path):
    master, slave = os.openpty()
    link = tmp_path / "tagd-pn532-silent"
    os.symlink(os.ttyname(slave), link)
    probes = []
    manager = ReaderManager(lambda ev: None, [], auto_detect=False, patterns=(str(tmp_path / "tagd-pn532*"),))
    real_probe = manager._probe
    manager._probe = lambda path: probes.append(path) or real_probe(path)
    try:
        for _ in range(3):
            manager.scan_once()
        assert probes == [str(link)] and manager.workers() == []
    finally:
        os.close(master)
        os.close(slave)
