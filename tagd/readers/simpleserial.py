"""The simple serial reader (Zaparoo's protocol): a microcontroller prints ``SCAN\\t<args>`` lines at 115200 baud.

Args are tab-separated ``name=value`` pairs — ``uid=…``, ``text=…``, ``removable=no`` — and a line with
no named argument is all text (``SCAN\\t**launch.system:snes``). A device keeps repeating the line while
its token is present; a token not repeated within 1 s counts as removed, unless the device said
``removable=no`` (barcode scanners, buttons: nothing to lift). ``removable=`` sticks until a line says
otherwise, as in Zaparoo Core. A bare ``SCAN`` line removes the token at once (Zaparoo documents it as the
explicit removal; it is the only way to clear a ``removable=no`` token other than replacing it).

Like Core, a line is only a scan when it starts with ``SCAN`` and a tab, the token's ``data`` is the whole
line, and a line longer than 4096 bytes is dropped up to its newline. Whatever else a device prints is
logged and skipped: nothing on the wire can crash the reader.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from tagd.readers.base import Capability, Reader, ReaderEvent, ReaderInfo, TagGone, TagSeen, register
from tagd.readers.pn532.reader import usb_topology
from tagd.readers.pn532.transport import SerialTransport
from tagd.token import TYPE_SERIAL, Token

log = logging.getLogger(__name__)

REMOVE_AFTER = 1.0
MAX_LINE = 4096
PREFIX = "SCAN\t"


@dataclass(frozen=True)
class ScanLine:
    """One parsed line. ``removable`` is None when the line did not say (the reader keeps its setting)."""

    uid: str
    text: str
    removable: bool | None = None
    line: str = ""

    @property
    def key(self) -> tuple[str, str]:
        """What makes two lines the same token (a repeat keeps it present, a change is a new tap)."""
        return (self.uid, self.text)


REMOVE = ScanLine("", "", None, "SCAN")  # the bare SCAN line: the token was lifted


def parse_line(line: str) -> ScanLine | None:
    """One line of the protocol: a ScanLine, :data:`REMOVE` for a bare ``SCAN``, None for anything else."""
    line = line.strip()
    if line == "SCAN":
        return REMOVE
    if not line.startswith(PREFIX):
        return None
    args = line[len(PREFIX):]
    uid = text = ""
    removable: bool | None = None
    named = False
    for arg in args.split("\t"):
        arg = arg.strip()
        name, sep, value = arg.partition("=")
        if not sep or name not in ("uid", "text", "removable"):
            continue
        named = True
        if name == "uid":
            uid = value
        elif name == "text":
            text = value
        else:
            removable = value.strip().lower() != "no"
    if not named:
        text = args
    if not text and not uid:
        return None  # e.g. "SCAN\tremovable=no" alone: nothing to launch
    return ScanLine(uid, text, removable, line)


class LineSplitter:
    """Bytes in, complete lines out; a line over ``limit`` bytes is dropped up to its newline."""

    def __init__(self, limit: int = MAX_LINE) -> None:
        self.limit = limit
        self.buf = bytearray()
        self.dropping = False

    def reset(self) -> None:
        self.buf.clear()
        self.dropping = False

    def feed(self, data: bytes) -> list[bytes]:
        lines = []
        *complete, tail = data.split(b"\n")
        for piece in complete:
            if not self.dropping and len(self.buf) + len(piece) <= self.limit:
                lines.append(bytes(self.buf + piece))
            elif not self.dropping:
                log.warning("simple serial: dropped a line longer than %d bytes", self.limit)
            self.buf.clear()
            self.dropping = False
        if not self.dropping:
            self.buf += tail
            if len(self.buf) > self.limit:
                log.warning("simple serial: dropping a line longer than %d bytes", self.limit)
                self.buf.clear()
                self.dropping = True
        return lines


@register
class SimpleSerialReader(Reader):
    driver = "simpleserial"
    capabilities = Capability.READ | Capability.REMOVABLE
    # what a line-based serial device differs in (barcode.py's scanner is one too)
    kind = "simpleserial"  # the readerId's driver part
    description = "simple serial"
    default_baud = 115200
    token_type = TYPE_SERIAL
    parse = staticmethod(parse_line)

    def __init__(self, path: str, options: dict[str, Any] | None = None) -> None:
        super().__init__(path, options)
        self.transport = SerialTransport(path, int(self.options.get("baud", self.default_baud)))
        self.info: ReaderInfo | None = None
        self.lines = LineSplitter()
        self.current: ScanLine | None = None
        self.removable = True
        self.last_seen = 0.0

    def open(self) -> ReaderInfo:
        self.transport.open()
        self.lines.reset()
        self.current, self.removable = None, True
        stable = usb_topology(self.path) or f"{self.kind}:{self.path}"
        self.info = ReaderInfo(self.kind, self.path, stable, f"{self.description} {self.path}", self.capabilities)
        return self.info

    def close(self) -> None:
        self.transport.close()

    @staticmethod
    def line_ends(chunk: bytes) -> bytes:
        """The bytes as the line splitter takes them (lines end with LF; a CR before it is stripped)."""
        return chunk

    def interrupt(self) -> None:
        self.transport.interrupt()

    def dispose(self) -> None:
        self.transport.destroy()

    def poll(self) -> list[ReaderEvent]:
        assert self.info is not None
        events: list[ReaderEvent] = []
        chunk = self.transport.read(0.1, interruptible=True)
        self.transport.drain_interrupt()
        for raw in self.lines.feed(self.line_ends(chunk)):
            events += self._on_line(raw)
        if (self.current is not None and self.removable
                and time.monotonic() - self.last_seen > REMOVE_AFTER):
            self.current = None
            events.append(TagGone(self.info.reader_id))
        return events

    def _on_line(self, raw: bytes) -> list[ReaderEvent]:
        assert self.info is not None
        scan = self.parse(raw.decode("utf-8", "replace"))
        if scan is None:
            if raw.strip():
                log.info("%s %s: ignoring line %r", self.kind, self.path, raw[:80])
            return []
        if scan is REMOVE:
            gone = self.current is not None
            self.current = None
            return [TagGone(self.info.reader_id)] if gone else []
        if scan.removable is not None:
            self.removable = scan.removable
        self.last_seen = time.monotonic()
        if self.current is not None and scan.key == self.current.key:
            return []
        events: list[ReaderEvent] = [TagGone(self.info.reader_id)] if self.current is not None else []
        self.current = scan
        token = Token(type=self.token_type, uid=scan.uid, text=scan.text, data=scan.line,
                      readerId=self.info.reader_id, source=self.info.connect_string)
        return events + [TagSeen(self.info.reader_id, token)]
