"""The file reader (Zaparoo's semantics): the trimmed content of a file is the token text.

The file is polled every 100 ms; a change of content is a new tap, an empty (or missing) file is a
removal. A missing file is not a lost reader: scripts create the file when they want to "tap".
"""

from __future__ import annotations

import hashlib
import os
import threading
from typing import Any

from tagd.readers.base import Capability, Reader, ReaderError, ReaderEvent, ReaderInfo, TagGone, TagSeen, register
from tagd.token import TYPE_FILE, Token

POLL_INTERVAL = 0.1
MAX_SIZE = 64 * 1024


@register
class FileReader(Reader):
    driver = "file"
    capabilities = Capability.READ | Capability.REMOVABLE

    def __init__(self, path: str, options: dict[str, Any] | None = None) -> None:
        super().__init__(os.path.abspath(path), options)
        self._wake = threading.Event()
        self._text = ""
        self.info: ReaderInfo | None = None

    def open(self) -> ReaderInfo:
        if "\x00" in self.path:  # the OS cannot open it: an error saying so, not a crash on every poll
            raise ReaderError(f"file reader path {self.path!r} contains a NUL character")
        self._text = ""
        self.info = ReaderInfo("file", self.path, self.path, f"file {self.path}", self.capabilities)
        return self.info

    def close(self) -> None:
        pass

    def interrupt(self) -> None:
        self._wake.set()

    def _read(self) -> str:
        try:
            with open(self.path, "rb") as f:
                raw = f.read(MAX_SIZE)
        except (OSError, ValueError):  # ValueError: a path the OS cannot take (open() refused it already)
            return ""
        return raw.decode("utf-8", "replace").strip()

    def poll(self) -> list[ReaderEvent]:
        assert self.info is not None
        self._wake.wait(POLL_INTERVAL)
        self._wake.clear()
        text = self._read()
        if text == self._text:
            return []
        events: list[ReaderEvent] = []
        if self._text:
            events.append(TagGone(self.info.reader_id))
        self._text = text
        if text:
            uid = hashlib.sha256(text.encode()).hexdigest()[:14]
            token = Token(type=TYPE_FILE, uid=uid, text=text, readerId=self.info.reader_id, source=self.info.connect_string)
            events.append(TagSeen(self.info.reader_id, token))
        return events
