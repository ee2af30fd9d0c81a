"""A configured simple serial reader (a microcontroller on /dev/ttyACM0) survives being unplugged: the
worker reports it lost, reopens the same path when the device is back, and leaks nothing doing so.

The "device" is a pty reached through a symlink; unplugging closes the pty and removes the link, as
devtmpfs removes the node, and replugging makes a new pty behind the same name."""

import os
import queue
import threading
import tty

import pytest

from conftest import Events
from tagd.readers.base import ReaderAdded, ReaderLost, ReaderWorker, TagGone, TagSeen
from tagd.readers.simpleserial import SimpleSerialReader


def plug(link):
    master, slave = os.openpty()
    tty.setraw(slave)
    os.symlink(os.ttyname(slave), link)
    return master, slave


def unplug(link, fds):
    os.unlink(link)
    for fd in fds:
        os.close(fd)


def drained(events):
    out = []
    while True:
        try:
            out.append(events.q.get_nowait())
        except queue.Empty:
            return out


@pytest.fixture
def plugged(tmp_path):
    """(link, [master, slave], events): a worker on a plugged device, ReaderAdded already taken."""
    link = str(tmp_path / "ttyACM-test")
    pty = plug(link)
    events = Events()
    worker = ReaderWorker(SimpleSerialReader(link), events.put, retry=0.02).start()
    state = [link, pty, events]
    try:
        events.wait(ReaderAdded)
        yield state
    finally:
        worker.stop()
        if os.path.lexists(link):
            unplug(link, state[1])


def test_unplugged_device_is_lost_not_removed_and_comes_back_30_times(plugged):
    link, pty, events = plugged
    base = len(os.listdir("/proc/self/fd")), threading.active_count()
    for cycle in range(30):
        os.write(pty[0], f"SCAN\ttext=**launch.system:snes\tremovable=no\tn={cycle}\n".encode())
        assert events.wait(TagSeen).token.text == "**launch.system:snes"
        unplug(link, pty)
        assert events.wait(ReaderLost).reason
        pty = plugged[1] = plug(link)
        events.wait(ReaderAdded)
        assert not [e for e in drained(events) if isinstance(e, TagGone)]  # a lost reader is not a removal
    assert (len(os.listdir("/proc/self/fd")), threading.active_count()) == base


def test_a_device_that_never_comes_back_only_costs_a_retry_timer(plugged):
    link, pty, events = plugged
    unplug(link, pty)
    events.wait(ReaderLost)
    base = len(os.listdir("/proc/self/fd")), threading.active_count()
    threading.Event().wait(0.3)  # ~15 failed reopen attempts
    assert (len(os.listdir("/proc/self/fd")), threading.active_count()) == base
    assert not [e for e in drained(events) if isinstance(e, (ReaderAdded, TagSeen))]
