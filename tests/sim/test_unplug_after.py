"""--unplug-after N (Faults.unplug_after): the board goes away once, at the Nth frame, and a replugged board
works (issue 13: it unplugged again on every frame after a replug, so replug could not be tested)."""

import os
import queue

from conftest import FIXTURES, until
from tagd.readers.base import ReaderAdded, ReaderWorker, TagSeen
from tagd.readers.pn532.frames import encode_command
from tagd.readers.pn532.reader import Pn532Reader
from tagd.sim.pn532 import Faults, Pn532Emulator
from tagd.sim.pn532_link import Pn532Link


def test_unplug_after_hangs_up_once_at_the_nth_frame():
    link = Pn532Link(faults=Faults(unplug_after=2))
    link.receive(encode_command(0x02), 0.0)
    assert not link.hang_up
    link.receive(encode_command(0x02), 0.0)
    assert link.hang_up
    link.hang_up = False
    link.power_cycle(link.core)  # replugged
    for _ in range(5):
        assert link.receive(encode_command(0x02), 0.0) and not link.hang_up


def test_unplug_after_then_replug_gives_a_working_reader(tmp_path):
    emu = Pn532Emulator(FIXTURES / "snes-ntag215.nfc", faults=Faults(unplug_after=3))
    emu.start()
    link = tmp_path / "pn532"
    emu.link(link)
    events: queue.Queue = queue.Queue()
    worker = ReaderWorker(Pn532Reader(str(link)), events.put, retry=0.05).start()

    def next_event(kind):
        while True:
            ev = events.get(timeout=5)
            if isinstance(ev, kind):
                return ev

    try:
        assert until(lambda: emu.frames_in >= 3)  # the 3rd frame (during open) hung up
        assert until(lambda: not os.path.exists(os.readlink(link)))
        emu.replug()
        next_event(ReaderAdded)
        assert next_event(TagSeen).token.text == "**launch.system:snes"
    finally:
        worker.stop()
        emu.stop()
