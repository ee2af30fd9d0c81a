"""Readers that nfcpy drives (Sony RC-S380, PN533 USB, SCL3711, PN532 on a tty …), feeding the same pipeline.

``nfcpy:usb``, ``nfcpy:usb:054c:06c3``, ``nfcpy:tty:USB0:pn532``. nfcpy finds and senses the tag; for
Type 2 tags tagd reads the memory itself (only the pages the NDEF TLV needs) and decodes it exactly
like its own drivers do, so tokens are identical whichever driver read them. Each poll() is one
``connect`` sense round (``iterations=1``) and a 0.1 s pause, so interrupt() and stop take effect within
one round; option ``targets`` (e.g. ``["106A"]``) narrows what is sensed.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from tagd.ndef import type2
from tagd.ndef.decode import decode_tag
from tagd.ndef.records import message_to_text
from tagd.readers.base import Capability, Reader, ReaderError, ReaderEvent, ReaderInfo, TagExcluded, TagGone, \
    TagSeen, WriteError, WriteRequest, register, wait_for_tag
from tagd.token import TYPE_NTAG, Token, normalize_uid

log = logging.getLogger(__name__)

PRESENCE_INTERVAL = 0.1
SENSE_PAUSE = 0.1  # between sense rounds while no tag is there


@register
class NfcpyReader(Reader):
    driver = "nfcpy"
    capabilities = Capability.READ | Capability.WRITE | Capability.REMOVABLE

    def __init__(self, path: str, options: dict[str, Any] | None = None) -> None:
        super().__init__(path, options)
        self.clf: Any = None
        self.tag: Any = None
        self.info: ReaderInfo | None = None
        self._wake = threading.Event()

    def open(self) -> ReaderInfo:
        try:
            import nfc
        except ImportError:
            raise ReaderError("the nfcpy driver needs nfcpy: pip install 'tagd[nfcpy]'") from None
        try:
            self.clf = nfc.ContactlessFrontend(self.path)
        except (IOError, OSError) as exc:
            raise ReaderError(f"nfcpy cannot open {self.path!r}: {exc}") from None
        self.tag = None
        self.info = ReaderInfo("nfcpy", self.path, f"nfcpy:{self.path}", str(self.clf.device), self.capabilities)
        return self.info

    def close(self) -> None:
        if self.clf is not None:
            try:
                self.clf.close()
            except Exception:
                pass
        self.clf = None

    def interrupt(self) -> None:
        self._wake.set()

    def _sense(self) -> Any:
        """One sense round (iterations=1: nfcpy's default of 5 rounds 0.5 s apart would hold poll() for 2 s)."""
        rounds = iter((False,))
        options = {"on-connect": lambda t: False, "beep-on-connect": False, "iterations": 1, "interval": 0.0}
        if "targets" in self.options:
            options["targets"] = list(self.options["targets"])
        try:
            tag = self.clf.connect(rdwr=options, terminate=lambda: next(rounds, True) or self._wake.is_set())
        except (IOError, OSError) as exc:
            raise ReaderError(f"nfcpy: {exc}") from None
        return tag if tag not in (None, False, True) else None

    def poll(self) -> list[ReaderEvent]:
        assert self.info is not None
        if self.tag is not None:
            if self._wake.wait(PRESENCE_INTERVAL):
                self._wake.clear()
                return []
            try:
                present = self.tag.is_present
            except Exception:
                present = False
            if present:
                return []
            self.tag = None
            return [TagGone(self.info.reader_id)]
        tag = self._sense()
        if tag is None:
            self._wake.wait(SENSE_PAUSE)  # not a busy loop: one sense round, then a pause (cut short by interrupt)
            self._wake.clear()
            return []
        self._wake.clear()
        self.tag = tag
        return [self._seen(tag)]

    def _seen(self, tag: Any, written: bool = False) -> TagSeen:
        assert self.info is not None
        uid = bytes(tag.identifier)
        decoded = None
        if tag.type == "Type2Tag":
            try:
                decoded = decode_tag("type2", uid, self._read_type2(tag))
            except Exception as exc:  # nfcpy raises its own errors for a tag that left mid-read
                log.info("nfcpy %s: reading %s failed: %s", self.path, uid.hex(), exc)
        if decoded is not None:
            token = decoded.to_token(reader_id=self.info.reader_id, source=self.info.connect_string)
        else:
            text, data = "", ""
            try:
                if tag.ndef is not None:
                    import ndef
                    message = b"".join(ndef.message_encoder(tag.ndef.records))
                    data, text = message.hex(), message_to_text(message)
            except Exception as exc:  # NdefError, or nfcpy's own errors for a tag that left
                log.info("nfcpy %s: NDEF of %s unreadable: %s", self.path, uid.hex(), exc)
            token = Token(type=TYPE_NTAG if tag.type == "Type2Tag" else tag.type, uid=uid.hex(), text=text, data=data,
                          readerId=self.info.reader_id, source=self.info.connect_string)
        return TagSeen(self.info.reader_id, token, {"kind": str(tag)}, written)

    @staticmethod
    def _read_type2(tag: Any) -> bytes:
        memory = bytes(tag.read(0))
        total = 256
        while True:
            need = type2.pages_to_read(memory, total)
            if need <= len(memory) // 4:
                return memory
            chunk = bytes(tag.read(len(memory) // 4))
            if not chunk:
                return memory
            memory += chunk

    def write(self, request: WriteRequest) -> TagSeen:
        import ndef

        def sensed(left: float) -> bool:
            if self.tag is None:
                self.tag = self._sense()
                if self.tag is None:
                    request.cancel.wait(min(SENSE_PAUSE, left))
            return self.tag is not None

        wait_for_tag(request, sensed)
        tag = self.tag
        uid = normalize_uid(bytes(tag.identifier).hex())
        if uid in {normalize_uid(u) for u in request.exclude_uids}:
            raise TagExcluded(f"tag {uid} is excluded from writing")
        if request.target_uid and normalize_uid(request.target_uid) != uid:
            raise WriteError(f"tag {uid} is not the target tag {normalize_uid(request.target_uid)}")
        if tag.ndef is None or not tag.ndef.is_writeable:
            raise WriteError(f"tag {uid} is not a writable NDEF tag")
        records = [ndef.TextRecord(request.text, "en", "UTF-8")]
        size = len(b"".join(ndef.message_encoder(records)))
        if size > tag.ndef.capacity:
            raise WriteError(f"the message needs {size} bytes but the tag holds {tag.ndef.capacity}")
        try:
            tag.ndef.records = records
        except Exception as exc:
            self.tag = None
            raise WriteError(f"write failed: {exc}") from None
        seen = self._seen(tag, written=True)
        if seen.token.text != request.text:
            raise WriteError(f"verify failed: the tag reads back {seen.token.text!r}")
        return seen
