"""The simple serial reader (Zaparoo's protocol): a microcontroller prints ``SCAN\\t<args>`` lines at 115200 baud.

Args are tab-separated ``key=value`` pairs — ``uid=…``, ``text=…``, ``removable=no`` — and a line with no
recognised key is all text (``SCAN\\t**launch.system:snes``). A removable token that is not repeated
within 1 s counts as removed; ``removable=no`` tokens stay until another token replaces them.
Unparseable lines are logged and skipped: nothing a device prints can crash the reader.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from tagd.readers.base import Capability, Reader, ReaderEvent, ReaderInfo, TagGone, TagSeen, register
from tagd.readers.pn532.transport import SerialTransport
from tagd.token import TYPE_SERIAL, Token

log = logging.getLogger(__name__)

REMOVE_AFTER = 1.0
MAX_LINE = 4096
KEYS = ("uid", "text", "removable")


@dataclass(frozen=True)
class ScanLine:
    uid: str
    text: str
    removable: bool = True


def parse_line(line: str) -> ScanLine | None:
    """One line of the protocol; None for anything that is not a usable SCAN line."""
    line = line.strip("\r\n")
    if not line.startswith("SCAN"):
        return None
    rest = line[4:]
    if rest and rest[0] not in "\t ":
        return None
    rest = rest[1:]
    fields = rest.split("\t")
    pairs = {}
    for f in fields:
        key, sep, value = f.partition("=")
        if sep and key.strip().lower() in KEYS:
            pairs[key.strip().lower()] = value
    if not pairs:
        text, uid, removable = rest.strip(), "", True
    else:
        text, uid = pairs.get("text", "").strip(), pairs.get("uid", "").strip()
        removable = pairs.get("removable", "yes").strip().lower() not in ("no", "false", "0")
    if not text and not uid:
        return None
    return ScanLine(uid, text, removable)


@register
class SimpleSerialReader(Reader):
    driver = "simpleserial"
    capabilities = Capability.READ | Capability.REMOVABLE

    def __init__(self, path: str, options: dict[str, Any] | None = None) -> None:
        super().__init__(path, options)
        self.transport = SerialTransport(path, int(self.options.get("baud", 115200)))
        self.info: ReaderInfo | None = None
        self.buf = bytearray()
        self.current: ScanLine | None = None
        self.last_seen = 0.0

    def open(self) -> ReaderInfo:
        self.transport.open()
        self.buf.clear()
        self.current = None
        self.info = ReaderInfo("simpleserial", self.path, f"simpleserial:{self.path}", f"simple serial {self.path}",
                               self.capabilities)
        return self.info

    def close(self) -> None:
        self.transport.close()

    def interrupt(self) -> None:
        self.transport.interrupt()

    def dispose(self) -> None:
        self.transport.destroy()

    def poll(self) -> list[ReaderEvent]:
        assert self.info is not None
        events: list[ReaderEvent] = []
        chunk = self.transport.read(0.1, interruptible=True)
        self.transport.drain_interrupt()
        self.buf += chunk
        if len(self.buf) > MAX_LINE and b"\n" not in self.buf:
            log.warning("simpleserial %s: dropping %d bytes without a newline", self.path, len(self.buf))
            self.buf.clear()
        while b"\n" in self.buf:
            raw, _, rest = bytes(self.buf).partition(b"\n")
            self.buf = bytearray(rest)
            scan = parse_line(raw.decode("utf-8", "replace"))
            if scan is None:
                if raw.strip():
                    log.info("simpleserial %s: ignoring line %r", self.path, raw[:80])
                continue
            self.last_seen = time.monotonic()
            if scan == self.current:
                continue
            if self.current is not None:
                events.append(TagGone(self.info.reader_id))
            self.current = scan
            token = Token(type=TYPE_SERIAL, uid=scan.uid, text=scan.text, readerId=self.info.reader_id,
                          source=self.info.connect_string)
            events.append(TagSeen(self.info.reader_id, token))
        if self.current is not None and self.current.removable and time.monotonic() - self.last_seen > REMOVE_AFTER:
            self.current = None
            events.append(TagGone(self.info.reader_id))
        return events
