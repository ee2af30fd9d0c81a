"""The emulated PN532 in memory: a transport for the real driver with no pty, no thread and no line speed.

:class:`MemoryPn532` holds the same chip and host interface as the pty emulator
(:class:`~tagd.sim.pn532_link.Pn532Link`); its :meth:`~MemoryPn532.transport` is a transport factory
for :class:`~tagd.readers.pn532.reader.Pn532Reader`, so driver tests run the whole dialog — frames,
ACKs, waiting lists, aborts — as function calls::

    chip = MemoryPn532(tag)
    reader = Pn532Reader("memory", transport_factory=chip.transport)

A write is answered at once (the link's times are ignored, except a finite list's tries, which are
waited for); a read blocks, interruptibly, until the chip has something to say: a tag placed while a
list waits wakes it from another thread, as on the pty.
"""

from __future__ import annotations

import os
import threading
import time

from tagd.readers.base import ReaderError
from tagd.sim.pn532_core import Pn532Core
from tagd.sim.pn532_link import Faults, Outgoing, Pn532Link
from tagd.sim.tags import EmulatedTag


class MemoryPn532:
    def __init__(self, tag: str | os.PathLike[str] | EmulatedTag | None = None, faults: Faults | None = None,
                 firmware: str = "1.6") -> None:
        self.chip = Pn532Link(Pn532Core(firmware), faults)
        self.cond = threading.Condition()
        self.outbox = bytearray()
        self.connected = True
        if tag is not None:
            self.place(tag)

    @property
    def core(self) -> Pn532Core:
        return self.chip.core

    @property
    def tag(self) -> EmulatedTag | None:
        return self.core.tag

    def place(self, tag: str | os.PathLike[str] | EmulatedTag) -> EmulatedTag:
        t = tag if isinstance(tag, EmulatedTag) else EmulatedTag.from_file(tag)
        with self.cond:
            self.core.place(t)
            self._collect(self.chip.due(time.monotonic()))
        return t

    def remove(self) -> None:
        with self.cond:
            self.core.remove()

    def unplug(self) -> None:
        with self.cond:
            self.connected = False
            self.outbox.clear()
            self.chip.drop_in_flight()
            self.cond.notify_all()

    def replug(self) -> None:
        with self.cond:
            if not self.connected:
                self.connected = True
                self.chip.power_cycle(Pn532Core())

    def stats(self) -> dict[str, object]:
        return self.chip.stats()

    def transport(self, path: str, baud: int = 115200) -> "MemoryTransport":
        """The transport factory a Pn532Reader takes."""
        return MemoryTransport(self, path)

    def _collect(self, chunks: list[Outgoing]) -> None:
        for chunk in chunks:
            self.chip.count_out(len(chunk.data), chunk.code)
            self.outbox += chunk.data
        if chunks:
            self.cond.notify_all()


class MemoryTransport:
    """The driver's side: the same small API as :class:`~tagd.readers.pn532.transport.SerialTransport`."""

    def __init__(self, chip: MemoryPn532, path: str) -> None:
        self.chip = chip
        self.path = path
        self.baud = 115200
        self.is_open = False
        self.interrupted = False
        self._interrupt = False

    def open(self) -> None:
        if not self.chip.connected:
            raise ReaderError(f"cannot open {self.path}: no such device")
        self.is_open = True
        self.drain_interrupt()

    def close(self) -> None:
        self.is_open = False

    def destroy(self) -> None:
        self.close()

    def set_baud(self, baud: int) -> None:
        self.baud = baud

    def _check(self) -> None:
        if not self.is_open:
            raise ReaderError(f"{self.path} is not open")
        if not self.chip.connected:
            raise ReaderError(f"{self.path}: device disconnected")

    def write(self, data: bytes) -> None:
        with self.chip.cond:
            self._check()
            chip = self.chip.chip
            self.chip._collect(chip.receive(bytes(data), time.monotonic()))
            if chip.hang_up:
                chip.hang_up = False
                self.chip.unplug()

    def wait_readable(self, timeout: float, interruptible: bool = True) -> bool:
        deadline = time.monotonic() + max(0.0, timeout)
        with self.chip.cond:
            while True:
                self._check()
                now = time.monotonic()
                self.chip._collect(self.chip.chip.due(now))
                if self.chip.outbox:
                    return True
                if interruptible and self._interrupt:
                    self._interrupt = False
                    self.interrupted = True
                    return False
                due = self.chip.chip.next_due()
                wake = deadline if due is None else min(deadline, due)
                if now >= deadline:
                    return False
                self.chip.cond.wait(max(0.0, wake - now))

    def read(self, timeout: float, interruptible: bool = False) -> bytes:
        if not self.wait_readable(timeout, interruptible):
            return b""
        with self.chip.cond:
            data = bytes(self.chip.outbox)
            self.chip.outbox.clear()
        return data

    def interrupt(self) -> None:
        with self.chip.cond:
            self._interrupt = True
            self.chip.cond.notify_all()

    def drain_interrupt(self) -> None:
        with self.chip.cond:
            self._interrupt = False
        self.interrupted = False
