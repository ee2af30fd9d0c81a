"""Readers come and go without a restart: the manager finds, probes, prunes and re-finds emulated PN532s,
leaks nothing over 100 unplug/replug cycles, and never touches a port that is someone else's."""

import os
import select
import subprocess
import threading
import time
import tty

import pytest

from conftest import FIXTURES, Events, until
from tagd.readers.base import ReaderAdded, ReaderLost, TagSeen
from tagd.readers.hotplug import DeviceWatcher, Probe, held_by_other_process, probe_pn532, serial_candidates
from tagd.readers.manager import ReaderManager
from tagd.sim.pn532 import Pn532Emulator


def fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.fixture
def emulator():
    emu = Pn532Emulator()
    emu.start()
    yield emu
    emu.stop()


@pytest.fixture
def silent_pty():
    """A serial port with nothing PN532-like behind it; yields (master fd, slave path)."""
    master, slave = os.openpty()
    tty.setraw(slave)
    yield master, os.ttyname(slave)
    os.close(master)
    os.close(slave)


def received(master: int, wait: float = 0.2) -> bytes:
    return os.read(master, 4096) if select.select([master], [], [], wait)[0] else b""


def test_100_unplug_replug_cycles_leak_nothing(tmp_path, emulator):
    """Even cycles keep the node (the worker reconnects); odd ones remove it like devtmpfs does on a real
    unplug, so the manager prunes the worker and probes the node afresh when it comes back."""
    events = Events()
    link = tmp_path / "tagd-pn532-test"
    emulator.link(str(link))
    manager = ReaderManager(events.put, [], auto_detect=True, scan_interval=1.0, retry=0.02,
                            patterns=(str(tmp_path / "tagd-pn532*"),), use_udev=False)
    manager.start()
    try:
        events.wait(ReaderAdded)
        base_fds, base_threads = fds(), threading.active_count()
        first_worker = manager.workers()[0]
        t0 = time.monotonic()
        for cycle in range(100):
            emulator.unplug()
            if cycle % 2:
                os.unlink(link)
            events.wait(ReaderLost)
            if cycle % 2:
                assert until(lambda: not manager.workers()), f"cycle {cycle}: not pruned"
            emulator.replug()
            events.wait(ReaderAdded)
        elapsed = time.monotonic() - t0
        assert manager.workers()[0] is not first_worker  # the prune path ran, not only reconnects
        time.sleep(0.2)
        after_fds, after_threads = fds(), threading.active_count()
        print(f"\n100 cycles in {elapsed:.2f} s; fds {base_fds} -> {after_fds}; threads {base_threads} -> {after_threads}")
        assert len(manager.infos()) == 1
        assert after_fds <= base_fds, (base_fds, after_fds)
        assert after_threads <= base_threads, (base_threads, after_threads)
        emulator.place(FIXTURES / "snes-ntag215.nfc")
        assert events.wait(TagSeen).token.text == "**launch.system:snes"
    finally:
        manager.stop()


def test_vanished_node_is_pruned_and_a_new_node_is_found_by_the_watcher(tmp_path, emulator):
    """scan_interval is 30 s here: only the watcher's wake-up can make the manager look in time."""
    events = Events()
    link = tmp_path / "tagd-pn532-a"
    manager = ReaderManager(events.put, [], auto_detect=True, scan_interval=30, retry=0.05,
                            patterns=(str(tmp_path / "tagd-pn532*"),), use_udev=False)
    manager.start()
    try:
        time.sleep(0.1)
        assert manager.workers() == []
        t0 = time.monotonic()
        os.symlink(emulator.path, link)
        assert events.wait(ReaderAdded, timeout=3).info.path == str(link)
        assert time.monotonic() - t0 < 3.0
        os.unlink(link)
        events.wait(ReaderLost, timeout=3)
        assert until(lambda: not manager.workers())
    finally:
        manager.stop()


def test_a_port_without_a_pn532_is_probed_once_until_its_node_changes(tmp_path, silent_pty):
    master, slave = silent_pty
    link = tmp_path / "tagd-pn532-silent"
    os.symlink(slave, link)
    probes = []

    def probe(path):
        probes.append(path)
        return probe_pn532(path, timeout=0.05)

    manager = ReaderManager(lambda ev: None, [], auto_detect=False, patterns=(str(tmp_path / "tagd-pn532*"),),
                            probe=probe)
    for _ in range(3):
        manager.scan_once()
    assert probes == [str(link)] and manager.workers() == []
    os.chmod(slave, 0o660)  # udev fixing the permissions changes the node: worth another look
    manager.scan_once()
    assert probes == [str(link)] * 2


def test_a_port_held_by_another_process_is_never_touched(tmp_path, silent_pty):
    master, slave = silent_pty
    with open(slave, "rb") as held:
        other = subprocess.Popen(["sleep", "30"], stdin=held)
    try:
        deadline = time.monotonic() + 2
        while held_by_other_process(slave) != other.pid and time.monotonic() < deadline:
            time.sleep(0.01)
        assert held_by_other_process(slave) == other.pid
        assert probe_pn532(slave) is Probe.BUSY
        manager = ReaderManager(lambda ev: None, [], auto_detect=False, patterns=(slave,))
        manager.scan_once()
        assert received(master) == b"" and manager.workers() == []
    finally:
        other.kill()
        other.wait()


def test_a_configured_readers_port_is_not_probed(silent_pty):
    master, slave = silent_pty
    probes = []
    manager = ReaderManager(lambda ev: None, [f"simpleserial:{slave}"], auto_detect=False, patterns=(slave,),
                            probe=lambda p: probes.append(p) or Probe.SILENT)
    manager.start()
    try:
        manager.scan_once()
        assert probes == [] and len(manager.workers()) == 1
    finally:
        manager.stop()


def test_probe_finds_the_emulated_pn532_and_sends_only_wakeup_and_getfirmwareversion(emulator):
    before = emulator.bytes_in
    assert probe_pn532(emulator.path) is Probe.PN532
    assert emulator.bytes_in - before <= 16 + 9 + 6  # wake-up, the command, at most an abort ACK


def test_probe_gives_up_quickly_on_a_silent_port(silent_pty):
    master, slave = silent_pty
    t0 = time.monotonic()
    assert probe_pn532(slave, timeout=0.2) is Probe.SILENT
    assert time.monotonic() - t0 < 0.5
    sent = received(master)
    assert sent.startswith(b"\x55\x55") and len(sent) == 25


def test_probe_of_a_non_tty_is_silent_and_of_a_vanished_node_gone(tmp_path):
    plain = tmp_path / "ttyUSB0"
    plain.write_bytes(b"")
    assert probe_pn532(str(plain)) is Probe.SILENT
    assert probe_pn532(str(tmp_path / "nothing")) is Probe.GONE


def test_candidates_prefer_the_stable_link_and_skip_dangling_links(tmp_path, silent_pty):
    _, slave = silent_pty
    os.symlink(slave, tmp_path / "tagd-pn532-1-2.3")
    os.symlink("/nonexistent/tty", tmp_path / "tagd-pn532-gone")
    found = serial_candidates((slave, str(tmp_path / "tagd-pn532*")))
    assert found == {os.path.realpath(slave): str(tmp_path / "tagd-pn532-1-2.3")}


def test_watcher_wakes_on_a_matching_node_and_sleeps_otherwise(tmp_path):
    watcher = DeviceWatcher((str(tmp_path / "ttyUSB*"),), use_udev=False)
    try:
        assert watcher.sources == ["inotify"]
        (tmp_path / "unrelated").write_text("")
        assert watcher.wait(0.2) is False
        timer = threading.Timer(0.1, lambda: (tmp_path / "ttyUSB3").write_text(""))
        timer.start()
        t0 = time.monotonic()
        assert watcher.wait(5) is True and time.monotonic() - t0 < 1
        threading.Timer(0.1, watcher.wake).start()
        assert watcher.wait(5) is True
    finally:
        watcher.close()


def test_watcher_uses_pyudev_when_installed(tmp_path):
    from conftest import need

    try:
        import pyudev
    except ImportError:
        pyudev = None
    need(pyudev is not None, "pyudev is not installed (extra 'udev')")
    watcher = DeviceWatcher((str(tmp_path / "ttyUSB*"),))
    try:
        assert "udev" in watcher.sources
        assert watcher.wait(0.1) is False  # no device change, no wake-up
    finally:
        watcher.close()


def test_an_idle_manager_does_not_busy_loop(tmp_path, silent_pty):
    import resource

    _, slave = silent_pty
    os.symlink(slave, tmp_path / "tagd-pn532-silent")
    manager = ReaderManager(lambda ev: None, [], auto_detect=True, patterns=(str(tmp_path / "tagd-pn532*"),),
                            probe=lambda p: Probe.SILENT)
    manager.start()
    try:
        time.sleep(0.2)
        before = resource.getrusage(resource.RUSAGE_SELF)
        time.sleep(1.0)
        after = resource.getrusage(resource.RUSAGE_SELF)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        assert cpu < 0.1, f"{cpu:.3f} s of CPU in 1 s idle"
    finally:
        manager.stop()


def test_an_nfcpy_tty_reader_keeps_auto_detection_off_its_port(silent_pty):
    import uuid

    from conftest import need
    from tagd.readers.manager import _device_of

    need(os.access("/dev", os.W_OK), "needs write access to /dev to link the pty (run as root)")
    _, slave = silent_pty
    name = f"tagdhp{uuid.uuid4().hex[:6]}"
    os.symlink(slave, f"/dev/{name}")
    try:
        assert _device_of("nfcpy", f"tty:{name}:pn532") == os.path.realpath(slave)
        assert _device_of("nfcpy", "usb:054c:06c3") == "usb:054c:06c3"
    finally:
        os.unlink(f"/dev/{name}")


def test_an_alias_driver_gets_the_options_of_the_driver_it_extends():
    """[readers.options.pn532uart] applies to a reader configured as pn532:…; its own section wins."""
    manager = ReaderManager(lambda e: None, [], auto_detect=False,
                            options={"pn532uart": {"baud": 115200, "x": 1}, "pn532": {"x": 2}})
    assert manager.options_for("pn532") == {"baud": 115200, "x": 2}
    assert manager.options_for("pn532uart") == {"baud": 115200, "x": 1}


def test_reconfigure_turns_auto_detection_off_and_on_and_swaps_configured_readers(tmp_path, emulator):
    """settings.update's readersAutoDetect and readersConnect, as the daemon hands them to the manager."""
    events = Events()
    link = tmp_path / "tagd-pn532-a"
    os.symlink(emulator.path, link)
    tag = tmp_path / "tag.txt"
    manager = ReaderManager(events.put, [], auto_detect=True, scan_interval=0.1, retry=0.05,
                            patterns=(str(tmp_path / "tagd-pn532*"),), use_udev=False)
    manager.start()
    try:
        assert events.wait(ReaderAdded, timeout=5).info.driver == "pn532"
        manager.reconfigure([f"file:{tag}"], auto_detect=False)
        lost = events.wait(ReaderLost, timeout=5)
        assert lost.reason == "stopped"
        assert events.wait(ReaderAdded, timeout=5).info.driver == "file"
        time.sleep(0.3)  # three detection intervals: nothing probes the PN532 again
        assert [w.reader.driver for w in manager.workers()] == ["file"]
        manager.reconfigure([f"file:{tag}"], auto_detect=True)  # unchanged entry: its worker stays
        assert events.wait(ReaderAdded, timeout=5).info.driver == "pn532"
        assert sorted(w.reader.driver for w in manager.workers()) == ["file", "pn532uart"]
        manager.reconfigure([], auto_detect=True, options={"pn532uart": {"baud": 115200}})
        assert until(lambda: [w.reader.driver for w in manager.workers()] == ["pn532uart"], 5)
        assert until(lambda: manager.workers()[0].reader.options == {"baud": 115200}, 5)  # found again, new options
    finally:
        manager.stop()
