"""A PN532 emulator with the real driver on top, run by a ReaderWorker: on a real pty, or in memory
(``memory=True``: the driver's transport calls the emulator's link directly)."""

from __future__ import annotations

import queue
import time

from tagd.readers.base import ReaderAdded, ReaderLost, ReaderWorker, TagGone, TagSeen
from tagd.readers.pn532.reader import Pn532Reader
from tagd.sim.memory import MemoryPn532
from tagd.sim.pn532 import Faults, Pn532Emulator


class Rig:
    def __init__(self, tag=None, baud=None, firmware="1.6", faults=None, options=None, retry=0.2, memory=False):
        if memory:
            self.emu = MemoryPn532(tag, faults=faults or Faults(), firmware=firmware)
            self.path = "memory"
            factory = self.emu.transport
        else:
            self.emu = Pn532Emulator(tag, baud=baud, firmware=firmware, faults=faults or Faults())
            self.path = self.emu.start()
            factory = None
        self.events: queue.Queue = queue.Queue()
        self.reader = Pn532Reader(self.path, options or {}, **({"transport_factory": factory} if factory else {}))
        self.worker = ReaderWorker(self.reader, self._sink, retry=retry).start()

    def _sink(self, ev):
        self.events.put((time.monotonic(), ev))

    def next(self, kind, timeout=3.0):
        """The next event of this type (skipping others); fails the test on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"no {kind.__name__} within {timeout} s"
            try:
                t, ev = self.events.get(timeout=remaining)
            except queue.Empty:
                raise AssertionError(f"no {kind.__name__} within {timeout} s") from None
            if isinstance(ev, kind):
                return t, ev

    def quiet(self, seconds):
        """Events that arrive within `seconds` (expected none, usually)."""
        time.sleep(seconds)
        out = []
        while not self.events.empty():
            out.append(self.events.get()[1])
        return out

    def close(self):
        self.worker.stop()
        if hasattr(self.emu, "stop"):
            self.emu.stop()


__all__ = ["Rig", "ReaderAdded", "ReaderLost", "TagGone", "TagSeen", "Faults"]
