"""The file reader (Zaparoo's semantics): the trimmed content of a file is the token text.

The file is polled every 100 ms; a change of content is a new tap, an empty (or missing) file is a
removal. A missing file is not a lost reader: scripts create the file when they want to "tap".

Only a regular file of at most :data:`MAX_SIZE` bytes is read, opened without following a symlink and without
blocking: whoever can write the file's directory must not be able to make a secret the symlink points at into token
text (which is broadcast to API clients and stored), nor to park the reader thread on a FIFO with no writer (SIGTERM
waited for it). Anything else counts as no tag, and the log says why once.
"""

from __future__ import annotations

import hashlib
import logging
import os
import stat
import threading
from typing import Any

from tagd.readers.base import Capability, Reader, ReaderError, ReaderEvent, ReaderInfo, TagGone, TagSeen, register
from tagd.token import TYPE_FILE, Token

log = logging.getLogger(__name__)

POLL_INTERVAL = 0.1
MAX_SIZE = 64 * 1024  # the most an NDEF message (and so a tag's text) can be
_OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | getattr(os, "O_CLOEXEC", 0)


@register
class FileReader(Reader):
    driver = "file"
    capabilities = Capability.READ | Capability.REMOVABLE

    def __init__(self, path: str, options: dict[str, Any] | None = None) -> None:
        super().__init__(os.path.abspath(path), options)
        self._wake = threading.Event()
        self._text = ""
        self._problem = ""  # why the file is not read (logged when it changes)
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
        raw, problem = _read_regular(self.path)
        if problem != self._problem:
            self._problem = problem
            if problem:
                log.warning("file reader %s: %s; read as no tag", self.path, problem)
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


def _read_regular(path: str) -> tuple[bytes, str]:
    """The content of ``path`` if it is a regular file of at most MAX_SIZE bytes, else b"" and why not ("" when it is
    simply missing). The type is checked before opening (a device is never opened) and again on the open descriptor
    (the path may have been swapped in between)."""
    try:
        mode = os.lstat(path).st_mode
        if not stat.S_ISREG(mode):
            return b"", _not_regular(mode)
        fd = os.open(path, _OPEN_FLAGS)
    except FileNotFoundError:
        return b"", ""
    except (OSError, ValueError) as exc:  # ELOOP: swapped for a symlink; ValueError: a path the OS cannot take
        return b"", str(getattr(exc, "strerror", None) or exc)
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return b"", _not_regular(info.st_mode)
        raw = f.read(MAX_SIZE + 1)
    if len(raw) > MAX_SIZE:
        return b"", f"larger than {MAX_SIZE} bytes"
    return raw, ""


def _not_regular(mode: int) -> str:
    kind = ("a symlink" if stat.S_ISLNK(mode) else "a FIFO" if stat.S_ISFIFO(mode) else "a directory"
            if stat.S_ISDIR(mode) else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "a socket")
    return f"{kind}, not a regular file"
