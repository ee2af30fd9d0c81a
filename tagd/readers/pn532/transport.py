"""The byte pipe to a PN532: a serial port (pyserial opens and configures it; reads go straight to the
file descriptor) with an interrupt pipe, so that a reader blocked waiting for a tag wakes up at once
when a write is queued or the daemon stops.

:class:`Transport` is what the driver needs of any pipe; the reader takes a factory for one, so the
same driver runs over a serial port, a pty, or the emulator in memory (:mod:`tagd.sim.memory`).
"""

from __future__ import annotations

import errno
import os
import select
from typing import Callable, Protocol

from tagd.readers.base import ReaderError


class Transport(Protocol):
    path: str
    baud: int
    interrupted: bool  # the last wait ended because of interrupt(); drain_interrupt() clears it

    @property
    def is_open(self) -> bool: ...

    def open(self) -> None: ...

    def close(self) -> None: ...

    def destroy(self) -> None: ...  # close for good (frees the interrupt pipe)

    def set_baud(self, baud: int) -> None: ...

    def write(self, data: bytes) -> None: ...

    def read(self, timeout: float, interruptible: bool = False) -> bytes: ...

    def wait_readable(self, timeout: float, interruptible: bool = True) -> bool: ...

    def interrupt(self) -> None: ...  # thread-safe: wake a blocked read/wait

    def drain_interrupt(self) -> None: ...


TransportFactory = Callable[[str, int], Transport]  # (path, baud) -> Transport


class SerialTransport:
    def __init__(self, path: str, baud: int = 115200) -> None:
        self.path = path
        self.baud = baud
        self._serial = None
        self._fd = -1
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        self.interrupted = False

    def open(self) -> None:
        import serial  # pyserial

        try:
            self._serial = serial.Serial(self.path, self.baud, timeout=0, exclusive=True)
        except (serial.SerialException, OSError, ValueError) as exc:
            raise ReaderError(f"cannot open {self.path}: {exc}") from None
        self._fd = self._serial.fileno()
        self.drain_interrupt()

    @property
    def is_open(self) -> bool:
        return self._fd >= 0

    def close(self) -> None:
        if self._serial is not None:
            try:
                self._serial.close()
            except Exception:
                pass
        self._serial = None
        self._fd = -1

    def destroy(self) -> None:
        self.close()
        for fd in (self._wake_r, self._wake_w):
            try:
                os.close(fd)
            except OSError:
                pass

    def set_baud(self, baud: int) -> None:
        self.baud = baud
        if self._serial is not None:
            self._serial.baudrate = baud

    def write(self, data: bytes) -> None:
        if self._fd < 0:
            raise ReaderError(f"{self.path} is not open")
        try:
            view = memoryview(data)
            while view:
                n = os.write(self._fd, view)
                view = view[n:]
        except OSError as exc:
            raise ReaderError(f"{self.path}: write failed: {exc.strerror}") from None

    def wait_readable(self, timeout: float, interruptible: bool = True) -> bool:
        """Block until the port has bytes (True), ``timeout`` passes or an interrupt arrives (False).

        The interrupt pipe is select()ed with the port, so a poll blocked waiting for a tag returns
        the moment a write is queued or the reader stops; ``self.interrupted`` tells which it was."""
        if self._fd < 0:
            raise ReaderError(f"{self.path} is not open")
        fds = [self._fd, self._wake_r] if interruptible else [self._fd]
        try:
            ready, _, _ = select.select(fds, [], [], max(0.0, timeout))
        except (OSError, ValueError) as exc:
            raise ReaderError(f"{self.path}: {exc}") from None
        if self._wake_r in ready:
            self.drain_interrupt()
            self.interrupted = True
        return self._fd in ready

    def read(self, timeout: float, interruptible: bool = False) -> bytes:
        """Whatever arrives within ``timeout`` (b"" on timeout, or at once on interrupt when asked).

        A pty or tty whose device went away reads as end of file or EIO: both are a ReaderError."""
        if not self.wait_readable(timeout, interruptible):
            return b""
        try:
            data = os.read(self._fd, 4096)
        except OSError as exc:
            if exc.errno in (errno.EAGAIN, errno.EINTR):
                return b""
            raise ReaderError(f"{self.path}: {exc.strerror or exc}") from None
        if not data:
            raise ReaderError(f"{self.path}: device disconnected")
        return data

    def interrupt(self) -> None:
        try:
            os.write(self._wake_w, b"!")
        except OSError:
            pass

    def drain_interrupt(self) -> None:
        try:
            while os.read(self._wake_r, 64):
                pass
        except (BlockingIOError, OSError):
            pass
        self.interrupted = False
