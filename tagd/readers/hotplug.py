"""What is plugged in: serial nodes that may be a PN532, a safe probe, and a watcher that wakes on change.

The manager (:mod:`tagd.readers.manager`) scans at most once a second and otherwise sleeps in
:meth:`DeviceWatcher.wait`, which returns early when something changes:

- pyudev's netlink monitor (extra ``udev``) reports tty/usb devices after udev has applied its rules,
  so permissions and the ``tagd-pn532-*`` links are already in place when we look;
- inotify on the directories of the search patterns (``/dev`` itself, or a test's temp dir) sees
  nodes and links come and go where udev is absent (containers, tests);
- with neither, the one-second scan alone finds everything, just later. Nothing busy-loops.

The probe is careful because a serial port may be anything (a modem, an Arduino, another program's
reader): ports held open by another process are not touched at all; the port is opened non-blocking
with an exclusive ``flock`` (pyserial's ``exclusive=True`` takes the same lock); only the PN532 wake-up
and one GetFirmwareVersion frame are sent; the answer is awaited for at most ``timeout`` seconds.
"""

from __future__ import annotations

import enum
import errno
import fcntl
import fnmatch
import glob
import logging
import os
import select
import struct
import termios
import time
import tty
from typing import Any

from tagd.readers.pn532.commands import Command
from tagd.readers.pn532.frames import ACK, TFI_CHIP, WAKEUP, Ack, Frame, FrameDecoder, encode_command

log = logging.getLogger(__name__)

SERIAL_PATTERNS = ("/dev/ttyUSB*", "/dev/ttyACM*", "/dev/tagd-pn532*")


def serial_candidates(patterns: tuple[str, ...] = SERIAL_PATTERNS) -> dict[str, str]:
    """Existing serial nodes matching the patterns: real node → the name to use for it.

    A node reachable through a ``tagd-pn532-*`` link (udev's stable name) is named by the link, so the
    reader keeps its name when the kernel numbers it differently after a replug."""
    found: dict[str, str] = {}
    for path in sorted({p for pattern in patterns for p in glob.glob(pattern)}):
        if not os.path.exists(path):  # a dangling link: the device behind it is gone
            continue
        real = os.path.realpath(path)
        if real not in found or os.path.islink(path) and not os.path.islink(found[real]):
            found[real] = path
    return found


def node_identity(path: str) -> tuple[int, ...] | None:
    """What changes when the device behind a path changes: device number, inode, owner and mode.

    Owner and mode are part of it so that a node probed before udev fixed its permissions is
    probed again once it has."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_rdev, st.st_ino, st.st_mode, st.st_uid, st.st_gid)


def held_by_other_process(path: str, proc: str = "/proc") -> int | None:
    """The pid of another process that has ``path``'s node open, if /proc lets us see one."""
    real = os.path.realpath(path)
    me = os.getpid()
    try:
        pids = [p for p in os.listdir(proc) if p.isdigit() and int(p) != me]
    except OSError:
        return None
    for pid in pids:
        try:
            fds = os.listdir(f"{proc}/{pid}/fd")
        except OSError:  # gone, or another user's process
            continue
        for fd in fds:
            try:
                if os.readlink(f"{proc}/{pid}/fd/{fd}") == real:
                    return int(pid)
            except OSError:
                continue
    return None


class Probe(enum.Enum):
    PN532 = "pn532"  # a PN532 acknowledged (and usually answered) GetFirmwareVersion
    SILENT = "silent"  # opened, but nothing PN532-like answered; or cannot be opened at all
    BUSY = "busy"  # someone else has it: try again later, nothing was sent
    GONE = "gone"  # the node vanished while we looked: nothing to remember about it


def probe_pn532(path: str, timeout: float = 0.3) -> Probe:
    """Is there a PN532 on this serial port? Sends 16 + 9 bytes at most; see the module docstring."""
    if held_by_other_process(path) is not None:
        return Probe.BUSY
    try:
        fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ENODEV, errno.ENXIO):
            return Probe.GONE
        return Probe.BUSY if exc.errno in (errno.EBUSY, errno.EAGAIN) else Probe.SILENT
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return Probe.BUSY
        if not os.isatty(fd):
            return Probe.SILENT
        tty.setraw(fd)
        attrs = termios.tcgetattr(fd)
        attrs[4] = attrs[5] = termios.B115200
        attrs[2] = (attrs[2] | termios.CLOCAL | termios.CREAD) & ~termios.CRTSCTS
        termios.tcsetattr(fd, termios.TCSANOW, attrs)
        termios.tcflush(fd, termios.TCIOFLUSH)
        os.write(fd, WAKEUP + encode_command(Command.GET_FIRMWARE_VERSION))
        return _await_firmware(fd, time.monotonic() + timeout)
    except OSError as exc:
        log.debug("probe %s: %s", path, exc)
        return Probe.SILENT
    finally:
        os.close(fd)


def _await_firmware(fd: int, deadline: float) -> Probe:
    decoder, acked = FrameDecoder(), False
    while (left := deadline - time.monotonic()) > 0:
        if not select.select([fd], [], [], left)[0]:
            break
        data = os.read(fd, 256)
        if not data:
            break
        for item in decoder.feed(data):
            if isinstance(item, Ack):
                acked = True
            elif isinstance(item, Frame) and item.tfi == TFI_CHIP and item.code == Command.GET_FIRMWARE_VERSION.response:
                return Probe.PN532
    if acked:
        os.write(fd, ACK)  # acknowledged but not answered yet: abort, leave the chip idle
        return Probe.PN532
    return Probe.SILENT


# --- the watcher ----------------------------------------------------------------

IN_ATTRIB, IN_MOVED_FROM, IN_MOVED_TO, IN_CREATE, IN_DELETE = 0x4, 0x40, 0x80, 0x100, 0x200
_EVENT = struct.Struct("iIII")  # wd, mask, cookie, len (then the name, NUL-padded)


class _Inotify:
    """A minimal inotify on a few directories, through libc (no extra dependency)."""

    def __init__(self, dirs: list[str], names: list[str]) -> None:
        import ctypes  # only with auto-detection on, and no pyudev

        libc = ctypes.CDLL(None, use_errno=True)  # the process's own libc: no ldconfig run to find it
        self.fd = libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if self.fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1 failed")
        self.names = names
        mask = IN_ATTRIB | IN_MOVED_FROM | IN_MOVED_TO | IN_CREATE | IN_DELETE
        watched = [d for d in dirs if libc.inotify_add_watch(self.fd, os.fsencode(d), mask) >= 0]
        if not watched:
            os.close(self.fd)
            raise OSError(ctypes.get_errno(), f"cannot watch {dirs}")

    def drain(self) -> bool:
        """Read every pending event; True if one concerns a name we look for."""
        relevant = False
        while True:
            try:
                buf = os.read(self.fd, 65536)
            except BlockingIOError:
                return relevant
            if not buf:
                return relevant
            offset = 0
            while offset + _EVENT.size <= len(buf):
                _wd, _mask, _cookie, size = _EVENT.unpack_from(buf, offset)
                name = buf[offset + _EVENT.size:offset + _EVENT.size + size].rstrip(b"\0").decode(errors="replace")
                offset += _EVENT.size + size
                relevant = relevant or any(fnmatch.fnmatchcase(name, n) for n in self.names)

    def close(self) -> None:
        os.close(self.fd)


class DeviceWatcher:
    """Sleeps until a serial/USB device may have come or gone, a timeout passes, or :meth:`wake`."""

    def __init__(self, patterns: tuple[str, ...] = SERIAL_PATTERNS, use_udev: bool = True) -> None:
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        self.udev: Any = self._udev_monitor() if use_udev else None
        dirs = sorted({os.path.dirname(p) for p in patterns})
        names = sorted({os.path.basename(p) for p in patterns})
        try:
            self.inotify: _Inotify | None = _Inotify(dirs, names) if dirs else None
        except (OSError, AttributeError) as exc:  # AttributeError: a libc without inotify
            log.debug("no inotify on %s: %s", dirs, exc)
            self.inotify = None

    @staticmethod
    def _udev_monitor() -> Any:
        try:
            import pyudev
        except ImportError:
            return None
        try:
            monitor = pyudev.Monitor.from_netlink(pyudev.Context())
            monitor.filter_by("tty")
            monitor.filter_by("usb")
            monitor.start()
        except Exception as exc:  # no netlink in this sandbox, no libudev...
            log.debug("pyudev monitor unavailable: %s", exc)
            return None
        return monitor

    @property
    def sources(self) -> list[str]:
        return [name for name, on in (("udev", self.udev), ("inotify", self.inotify)) if on is not None]

    def wait(self, timeout: float) -> bool:
        """True when woken by a device change (or wake()), False after ``timeout``."""
        fds = [self._wake_r] + [s.fileno() if s is self.udev else s.fd for s in (self.udev, self.inotify) if s]
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                ready = select.select(fds, [], [], left)[0]
            except (OSError, ValueError):
                return False
            if self._wake_r in ready:
                self._drain_wake()
                return True
            changed = False
            if self.udev is not None and self.udev.fileno() in ready:
                while self.udev.poll(timeout=0) is not None:
                    changed = True
            if self.inotify is not None and self.inotify.fd in ready:
                changed = self.inotify.drain() or changed
            if changed:
                return True
        return False

    def wake(self) -> None:
        try:
            os.write(self._wake_w, b"!")
        except OSError:
            pass

    def _drain_wake(self) -> None:
        try:
            while os.read(self._wake_r, 64):
                pass
        except OSError:
            pass

    def close(self) -> None:
        if self.inotify is not None:
            self.inotify.close()
            self.inotify = None
        self.udev = None  # pyudev closes its socket when the monitor is collected
        for fd in (self._wake_r, self._wake_w):
            try:
                os.close(fd)
            except OSError:
                pass
