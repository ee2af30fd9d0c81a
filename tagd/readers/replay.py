"""The replay reader: plays a timeline of tag dumps (place/wait/remove) as if tags were tapped.

``replay:/path/to/timeline.txt``. Each placed dump is decoded exactly as a hardware reader would
decode the memory it read; writes go to the in-memory tag. A dump it cannot load is reported once (a
ReaderError naming the timeline line, so the worker reports ReaderLost) and the timeline goes on after it,
rather than starting over and tapping the earlier tags again. Good for demos and for tests of
everything downstream of a reader, with no pty and no hardware.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from tagd.ndef import classic, type2
from tagd.ndef.decode import decode_dump
from tagd.ndef.dumps import DumpError, TagDump, load
from tagd.ndef.records import text_message
from tagd.readers.base import Capability, Reader, ReaderError, ReaderEvent, ReaderInfo, TagGone, TagSeen, WriteError, \
    WriteRequest, register, wait_for_tag
from tagd.sim import timeline


@register
class ReplayReader(Reader):
    driver = "replay"
    capabilities = Capability.READ | Capability.WRITE | Capability.REMOVABLE

    def __init__(self, path: str, options: dict[str, Any] | None = None) -> None:
        super().__init__(path, options)
        self.loop = bool(self.options.get("loop", False))
        self._wake = threading.Event()
        self.info: ReaderInfo | None = None
        self.tag: TagDump | None = None
        self._steps: list[timeline.Step] = []
        self._pos = 0
        self._due = 0.0
        self._unplugged = False

    def open(self) -> ReaderInfo:
        if self._unplugged:
            self._unplugged = False  # replug, or reopened after a dump it could not play: go on from there
        else:
            if "\x00" in self.path:  # open() would raise ValueError: an error saying so, not a crash each retry
                raise ReaderError(f"replay timeline path {self.path!r} contains a NUL character")
            try:
                self._steps = timeline.load(self.path)
            except timeline.TimelineError as exc:
                raise ReaderError(str(exc)) from None
            self._pos, self._due, self.tag = 0, time.monotonic(), None
        self.info = ReaderInfo("replay", self.path, self.path, f"replay {self.path}", self.capabilities)
        return self.info

    def close(self) -> None:
        pass

    def interrupt(self) -> None:
        self._wake.set()

    def _seen(self, dump: TagDump, written: bool = False) -> TagSeen:
        assert self.info is not None
        decoded = decode_dump(dump)
        token = decoded.to_token(reader_id=self.info.reader_id, source=self.info.connect_string)
        return TagSeen(self.info.reader_id, token, {"kind": decoded.kind, "errors": decoded.errors,
                                                    "notes": decoded.notes}, written)

    def poll(self) -> list[ReaderEvent]:
        assert self.info is not None
        wait = self._due - time.monotonic()
        if wait > 0:
            self._wake.wait(min(wait, 0.5))
            self._wake.clear()
            return []
        if self._pos >= len(self._steps):
            if not self.loop:
                self._wake.wait(0.5)
                self._wake.clear()
                return []
            self._pos = 0
        step = self._steps[self._pos]
        self._pos += 1
        if step.command == "loop":
            self._pos = 0
        elif step.command == "wait":
            self._due = time.monotonic() + float(step.arg)  # type: ignore[arg-type]
        elif step.command == "place":
            try:
                self.tag = load(str(step.arg))
            except DumpError as exc:  # reported once (ReaderLost); the reopened reader goes on after this step
                self.tag, self._unplugged = None, True
                raise ReaderError(f"timeline line {step.line}: {exc}") from None
            return [self._seen(self.tag)]
        elif step.command == "remove" and self.tag is not None:
            self.tag = None
            return [TagGone(self.info.reader_id)]
        elif step.command == "unplug":
            self._unplugged = True
            raise ReaderError("unplugged (timeline)")
        return []

    def write(self, request: WriteRequest) -> TagSeen:
        def tag_here(_: float) -> bool:
            if self.tag is None:
                self.poll()
            return self.tag is not None

        wait_for_tag(request, tag_here)
        message = text_message(request.text)
        d = self.tag
        if d.is_felica:  # as the PN532 driver: tagd writes Type 2 tags and MIFARE Classic cards only
            raise WriteError("writing to a FeliCa card is not supported: tagd writes NTAG/Ultralight and MIFARE Classic")
        try:
            if d.is_classic:
                mem = classic.apply_writes(d.memory, classic.plan_write(d.memory, message))
            else:
                mem = type2.apply_writes(d.memory, type2.plan_write(d.memory, message, d.version))
        except (type2.Type2Error, classic.ClassicError) as exc:
            raise WriteError(str(exc)) from None
        self.tag = TagDump(d.kind, d.uid, d.atqa, d.sak, mem, d.version, d.signature, d.unknown)
        return self._seen(self.tag, written=True)
