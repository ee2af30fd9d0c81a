"""A PN532 on a pty: :class:`Pn532Emulator` runs the chip (:mod:`tagd.sim.pn532_core`) behind its host
interface (:mod:`tagd.sim.pn532_link`) in its own thread, on a pty a driver opens like a USB-serial board.

This module is only the I/O: it reads what the host writes, hands it to the link, and writes the
link's answers when the line speed allows (paced bytes are written when the last of them would have
left the chip's UART, so the host can never have a frame earlier than the wire allows).
``unplug()`` closes the pty (the host's reads see end of file, writes EIO); ``replug()`` makes a new
one, with a power-cycled chip, and re-points the link.

Not modelled: PowerDown sleep and the wake-up it needs, SAMConfiguration being mandatory after
power-up, InAutoPoll, ISO 14443-4 targets and other baud-rate/type targets (BrTy ≠ 00 finds none).
"""

from __future__ import annotations

import logging
import os
import select
import threading
import time
import tty

from tagd.sim.pn532_core import FIRMWARE, TAG_COMMAND_TIME, TRY_TIME, UNKNOWN, Pn532Core, uid_from_cascade
from tagd.sim.pn532_link import Faults, Outgoing, Pn532Link
from tagd.sim.tags import EmulatedTag, crc_a

log = logging.getLogger(__name__)

__all__ = ["Pn532Emulator", "Pn532Core", "Pn532Link", "Faults", "FIRMWARE", "TAG_COMMAND_TIME", "TRY_TIME",
           "UNKNOWN", "crc_a", "uid_from_cascade"]


class Pn532Emulator:
    """A PN532 on a pty. ``start()`` returns the pty path the host opens.

    Host frames with a bad checksum get a NACK (the real chip ignores them or NACKs depending on the
    firmware; a NACK makes a driver's resend path testable), frames with a wrong TFI or an unknown
    command get the application error frame, a host NACK gets the last response again.
    """

    def __init__(self, tag: str | os.PathLike[str] | EmulatedTag | None = None, baud: int | None = None,
                 firmware: str = "1.6", faults: Faults | None = None) -> None:
        self.chip = Pn532Link(Pn532Core(firmware), faults, baud)
        self.path = ""
        self.link_path: str | None = None
        self.placed_at: float | None = None
        self._lock = threading.RLock()
        self._wake_r, self._wake_w = os.pipe()
        self._master = self._slave = -1
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if tag is not None:
            self.place(tag)

    # --- what tests and the CLI look at ------------------------------------
    @property
    def core(self) -> Pn532Core:
        return self.chip.core

    @property
    def faults(self) -> Faults:
        return self.chip.faults

    @property
    def baud(self) -> int | None:
        return self.chip.baud

    @baud.setter
    def baud(self, value: int | None) -> None:
        self.chip.baud = value

    @property
    def bytes_in(self) -> int:
        return self.chip.bytes_in

    @property
    def bytes_out(self) -> int:
        return self.chip.bytes_out

    @property
    def frames_in(self) -> int:
        return self.chip.frames_in

    @property
    def commands(self):
        return self.chip.commands

    @property
    def tag(self) -> EmulatedTag | None:
        return self.core.tag

    def stats(self) -> dict[str, object]:
        return self.chip.stats()

    def reset_stats(self) -> None:
        self.chip.reset_stats()

    # --- control (thread-safe) -------------------------------------------
    def start(self) -> str:
        self._open_pty()
        self._thread = threading.Thread(target=self._run, name="pn532-emulator", daemon=True)
        self._thread.start()
        return self.path

    def link(self, path: str | os.PathLike[str]) -> None:
        """Make ``path`` a symlink to the pty; replug() re-points it at the new pty."""
        self.link_path = os.fspath(path)
        self._relink()

    def place(self, tag: str | os.PathLike[str] | EmulatedTag) -> EmulatedTag:
        t = tag if isinstance(tag, EmulatedTag) else EmulatedTag.from_file(tag)
        with self._lock:
            self.core.place(t)
            self.placed_at = time.monotonic()
        self._wake()
        return t

    def remove(self) -> None:
        with self._lock:
            self.core.remove()
        self._wake()

    def unplug(self) -> None:
        """The board leaves the USB bus: the pty closes, the host's reads fail (EIO / hangup)."""
        with self._lock:
            self._close_pty()
        self._wake()

    def replug(self) -> str:
        """The board comes back, power-cycled, as a new pty (the link follows); the tag stays."""
        with self._lock:
            if self._master < 0:
                self._open_pty()
                self.chip.power_cycle(Pn532Core("1.6" if self.core.firmware == FIRMWARE["1.6"] else "1.4"))
        self._wake()
        return self.path

    def stop(self) -> None:
        self._stop.set()
        self._wake()
        if self._thread:
            self._thread.join(5)
        with self._lock:
            self._close_pty()
        for fd in (self._wake_r, self._wake_w):
            try:
                os.close(fd)
            except OSError:
                pass
        if self.link_path and os.path.islink(self.link_path):
            os.unlink(self.link_path)

    # --- internals --------------------------------------------------------
    def _open_pty(self) -> None:
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)
        self.path = os.ttyname(self._slave)
        self.chip.decoder.reset()
        self._relink()

    def _relink(self) -> None:
        if self.link_path and self.path:
            tmp = f"{self.link_path}.tmp{os.getpid()}"
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
            os.symlink(self.path, tmp)
            os.replace(tmp, self.link_path)

    def _close_pty(self) -> None:
        for fd in (self._master, self._slave):
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self._master = self._slave = -1
        self.chip.drop_in_flight()  # nothing in flight survives the unplug

    def _wake(self) -> None:
        try:
            os.write(self._wake_w, b"x")
        except OSError:
            pass

    def _send(self, chunks: list[Outgoing]) -> None:
        """Write the link's answers, each when its last byte would have left the chip's UART."""
        for chunk in chunks:
            start = max(time.monotonic() + chunk.delay, chunk.not_before)
            delay = start + len(chunk.data) * self.chip.byte_time() - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            if self._master < 0:
                return
            # count before writing: once the host has the bytes it may read the counters at once
            self.chip.count_out(len(chunk.data), chunk.code)
            try:
                os.write(self._master, chunk.data)
            except OSError:  # unplugged meanwhile: nothing went out
                self.chip.count_out(-len(chunk.data), chunk.code)

    def _run(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                master = self._master
                due = self.chip.next_due()
                timeout = 0.5 if due is None else max(0.0, due - time.monotonic())
            fds = [self._wake_r] + ([master] if master >= 0 else [])
            try:
                ready, _, _ = select.select(fds, [], [], timeout)
            except (OSError, ValueError):
                continue
            if self._wake_r in ready:
                try:
                    os.read(self._wake_r, 4096)
                except OSError:
                    pass
            with self._lock:
                self._send(self.chip.due(time.monotonic()))
            if master >= 0 and master in ready:
                try:
                    chunk = os.read(master, 4096)
                except OSError:
                    chunk = b""
                if not chunk:
                    time.sleep(0.01)
                    continue
                with self._lock:
                    self._send(self.chip.receive(chunk, time.monotonic()))
                    if self.chip.hang_up:
                        self.chip.hang_up = False
                        self._close_pty()
