"""The PN532 reader: a poll loop built for the shortest tap→token time and the fewest wire bytes.

Waiting: MaxRetries(PassiveActivation = FF) makes InListPassiveTarget wait *in the chip* until a tag
enters the field, so an idle reader sends nothing and the tag is reported the moment it arrives
(an interrupt sends a host ACK to abort the wait when a write is queued or the reader stops).
Reading: NTAG/Ultralight — GET_VERSION, then FAST_READ of the CC and the first data pages, then one
more FAST_READ for exactly the rest of the NDEF TLV (pages 0–2 are rebuilt from the UID the listing
already gave). MIFARE Classic — MAD with the MAD key, then the NDEF sectors with the NFC Forum key,
the default key and the configured keys. Presence: while a tag is there, a READ every 50 ms; no
answer means it left, so removal is noticed within ~60 ms.
"""

from __future__ import annotations

import logging
import os
import re
import time
from typing import Any

from tagd.ndef import classic, type2
from tagd.ndef.decode import DecodedTag, decode_tag
from tagd.ndef.records import text_message
from tagd.readers.base import Capability, Reader, ReaderError, ReaderEvent, ReaderInfo, TagGone, TagSeen, \
    WriteCancelled, WriteError, WriteRequest, register
from tagd.readers.pn532.chip import AuthError, ChipTimeout, Pn532Chip, Pn532Error, Target, TagGoneError
from tagd.readers.pn532.transport import SerialTransport
from tagd.token import normalize_uid

log = logging.getLogger(__name__)

PRESENCE_INTERVAL = 0.05
LIST_SLICE = 0.5  # poll() returns at least this often while the chip waits for a tag
MAX_FAST_READ = 60  # pages per FAST_READ: keeps each answer inside the PN532's buffer
FIRST_READ_END = 19  # first FAST_READ: CC (page 3) to page 19 — a typical ZapScript (≤ 55 bytes) in one exchange


def usb_topology(dev_path: str, sys_root: str = "/sys") -> str | None:
    """The USB port path (``1-2.3.1``) of a tty, found by walking up /sys/dev/char/MAJ:MIN."""
    try:
        st = os.stat(os.path.realpath(dev_path))
        path = os.path.realpath(f"{sys_root}/dev/char/{os.major(st.st_rdev)}:{os.minor(st.st_rdev)}")
    except OSError:
        return None
    pattern = re.compile(r"^\d+-[\d.]+$")
    while path not in ("/", sys_root, ""):
        if pattern.match(os.path.basename(path)):
            return os.path.basename(path)
        path = os.path.dirname(path)
    return None


@register
class Pn532Reader(Reader):
    driver = "pn532uart"
    capabilities = Capability.READ | Capability.WRITE | Capability.REMOVABLE

    def __init__(self, path: str, options: dict[str, Any] | None = None) -> None:
        super().__init__(path, options)
        self.baud = int(self.options.get("baud", 115200))
        self.keys = [bytes.fromhex(k) for k in self.options.get("keys", [])]
        self.transport = SerialTransport(path, self.baud)
        self.chip = Pn532Chip(self.transport)
        self.info: ReaderInfo | None = None
        self.target: Target | None = None
        self.listing = False
        self._last_check = 0.0
        self.last_read: tuple[Target, bytes, bytes | None, frozenset[int]] | None = None

    # --- lifecycle --------------------------------------------------------
    def open(self) -> ReaderInfo:
        self.transport.open()
        try:
            self.chip.wake_up()
            self.chip.decoder.reset()
            self.chip.sam_configuration()
            fw = self.chip.firmware_version()
            self.chip.set_max_retries(0xFF, 0x01, 0xFF)
        except (ReaderError, Pn532Error) as exc:
            self.transport.close()
            raise ReaderError(f"no PN532 answering on {self.path}: {exc}") from None
        self.target, self.listing = None, False
        stable = usb_topology(self.path) or f"pn532uart:{self.path}"
        name = f"PN532 v{fw[1]}.{fw[2]}" if len(fw) >= 3 else "PN532"
        self.info = ReaderInfo("pn532", self.path, stable, name, self.capabilities)
        return self.info

    def close(self) -> None:
        if self.transport.is_open:
            try:
                self.chip.abort()
            except Exception:
                pass
        self.transport.close()
        self.listing = False

    def interrupt(self) -> None:
        self.transport.interrupt()

    def dispose(self) -> None:
        self.transport.destroy()

    # --- polling ----------------------------------------------------------
    def poll(self) -> list[ReaderEvent]:
        assert self.info is not None
        if self.target is not None:
            return self._check_presence()
        if not self.listing:
            self.chip.start_list()
            self.listing = True
        target = self.chip.finish_list(LIST_SLICE, interruptible=True) if self.chip.pending else None
        if target is None:
            if self.transport.interrupted:
                self.chip.abort()
                self.listing = False
                self.transport.drain_interrupt()
            elif self.chip.pending is None:
                self.listing = False  # the chip answered "no target" (finite retries)
            return []
        self.listing = False
        return self._on_target(target)

    def _on_target(self, target: Target) -> list[ReaderEvent]:
        self.target = target
        self._last_check = time.monotonic()
        try:
            decoded = self._read(target)
        except TagGoneError:
            self.target = None
            return []
        assert self.info is not None
        token = decoded.to_token(reader_id=self.info.reader_id, source=self.info.connect_string)
        return [TagSeen(self.info.reader_id, token, self._detail(target, decoded))]

    @staticmethod
    def _detail(target: Target, decoded: DecodedTag) -> dict[str, Any]:
        return {"kind": decoded.kind, "atqa": f"{target.atqa:04x}", "sak": f"{target.sak:02x}",
                "capacity": decoded.capacity, "read_only": decoded.read_only, "errors": decoded.errors}

    def _check_presence(self) -> list[ReaderEvent]:
        assert self.info is not None and self.target is not None
        wait = self._last_check + PRESENCE_INTERVAL - time.monotonic()
        if wait > 0:
            self.transport.read(wait, interruptible=True) if not self.chip._items else None
            if self.transport.interrupted:
                self.transport.drain_interrupt()
                return []
        self._last_check = time.monotonic()
        if self._present():
            return []
        self.target = None
        return [TagGone(self.info.reader_id)]

    def _present(self) -> bool:
        """Is the same tag still there? A READ of page 0 answers with the first UID bytes on a Type 2 tag,
        so a tag swapped for another between two checks is noticed too."""
        assert self.target is not None
        try:
            page0 = self.chip.data_exchange(b"\x30\x00", timeout=0.3)
        except TagGoneError:
            return False
        except Pn532Error:  # an answer that is an error (e.g. Classic without auth): still there
            return True
        if not self._is_classic(self.target) and len(self.target.uid) == 7 and page0[:3] != self.target.uid[:3]:
            return False
        return True

    # --- reading ----------------------------------------------------------
    def _is_classic(self, target: Target) -> bool:
        return bool(target.sak & 0x18)

    def _read(self, target: Target, whole: bool = False) -> DecodedTag:
        if self._is_classic(target):
            kind = "classic4k" if target.sak & 0x10 else ("classicmini" if target.sak == 0x09 else "classic1k")
            memory, unknown = self._read_classic(target, kind, whole)
            self.last_read = (target, memory, None, unknown)
            return decode_tag(kind, target.uid, memory, None, unknown)
        memory, version = self._read_type2(target, whole)
        self.last_read = (target, memory, version, frozenset())
        kind = type2.kind_from_version(version) or "type2"
        return decode_tag(kind, target.uid, memory, version)

    def _reselect(self) -> None:
        self.chip.release()
        if self.chip.list_target(0.5) is None:
            raise TagGoneError(0x01, "reselect")

    def _read_pages(self, start: int, end: int, fast: list[bool]) -> bytes:
        out = bytearray()
        p = start
        while p <= end:
            stop = min(end, p + MAX_FAST_READ - 1)
            if fast[0]:
                try:
                    out += self.chip.communicate_thru(bytes([0x3A, p, stop]))
                    p = stop + 1
                    continue
                except TagGoneError:
                    raise
                except Pn532Error:
                    fast[0] = False  # a clone chip or tag without FAST_READ: plain READ from now on
            chunk = self.chip.data_exchange(bytes([0x30, p]))
            out += chunk[: (min(end, p + 3) - p + 1) * 4]
            p += 4
        return bytes(out)

    def _read_type2(self, target: Target, whole: bool) -> tuple[bytes, bytes | None]:
        try:
            version = self.chip.communicate_thru(b"\x60")[:8]
        except Pn532Error:
            version = None  # a plain Ultralight does not answer GET_VERSION and must be reselected
            self._reselect()
        kind = type2.kind_from_version(version)
        total = type2.TYPE2_KINDS[kind].pages if kind else 16
        uid = target.uid if len(target.uid) == 7 else (target.uid + bytes(7))[:7]
        head = bytes([uid[0], uid[1], uid[2], 0x88 ^ uid[0] ^ uid[1] ^ uid[2]]) + uid[3:7] + \
            bytes([uid[3] ^ uid[4] ^ uid[5] ^ uid[6], 0x48, 0, 0])
        fast = [True]
        if whole:
            return self._read_pages(0, total - 1, fast), version
        memory = head + self._read_pages(3, min(FIRST_READ_END, total - 1), fast)
        need = type2.pages_to_read(memory, total)
        while need > len(memory) // 4:
            memory += self._read_pages(len(memory) // 4, need - 1, fast)
            need = type2.pages_to_read(memory, total)
        return memory, version

    def _auth(self, target: Target, block: int, keys: list[bytes]) -> bytes | None:
        uid4 = target.uid[-4:]
        for key in keys:
            try:
                self.chip.data_exchange(bytes([0x60, block]) + key + uid4)
                return key
            except AuthError:
                self._reselect()  # a failed authentication halts the card
        return None

    def _read_classic(self, target: Target, kind: str, whole: bool) -> tuple[bytes, frozenset[int]]:
        mem = bytearray(classic.SIZES[kind])
        unknown: set[int] = set()
        all_keys = [classic.KEY_NDEF, classic.KEY_MAD, classic.KEY_DEFAULT] + self.keys

        def read_sector(s: int, keys: list[bytes]) -> bool:
            key = self._auth(target, classic.first_block(s), keys)
            first, n = classic.first_block(s), classic.blocks_in(s)
            if key is None:
                unknown.update(range(first * 16, (first + n) * 16))
                return False
            for b in range(first, first + n):
                mem[b * 16:(b + 1) * 16] = self.chip.data_exchange(bytes([0x30, b]))[:16]
            t = classic.trailer_block(s) * 16
            mem[t:t + 6] = key  # key A reads back as zeros: keep the one that worked
            return True

        if whole:
            for s in range(classic.sector_count(kind)):
                read_sector(s, all_keys)
            return bytes(mem), frozenset(unknown)
        if not read_sector(0, [classic.KEY_MAD, classic.KEY_DEFAULT] + self.keys):
            log.info("MIFARE Classic %s: sector 0 keys unknown, no MAD", target.uid.hex())
            unknown.update(range(len(mem)))
            return bytes(mem), frozenset(unknown)
        card = classic.ClassicMemory(bytes(mem))
        stream = bytearray()
        from tagd.ndef.tlv import needed_length
        for s in card.ndef_sectors:
            if not read_sector(s, all_keys):
                log.info("MIFARE Classic %s: sector %d keys unknown", target.uid.hex(), s)
                break
            stream += b"".join(mem[b * 16:(b + 1) * 16] for b in classic.data_blocks(s))
            need = needed_length(bytes(stream))
            if need is not None and need <= len(stream):
                break
        return bytes(mem), frozenset(unknown)

    # --- writing ----------------------------------------------------------
    def _wait_for_tag(self, request: WriteRequest) -> Target:
        if self.target is not None:
            return self.target
        deadline = time.monotonic() + request.timeout
        self.chip.start_list()
        while True:
            if request.cancel.is_set():
                self.chip.abort()
                raise WriteCancelled("write cancelled")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.chip.abort()
                raise WriteError(f"no tag within {request.timeout:g} s")
            target = self.chip.finish_list(min(0.1, remaining), interruptible=True)
            if target is not None:
                self.target = target
                return target
            self.transport.drain_interrupt()
            if self.chip.pending is None:
                self.chip.start_list()

    def write(self, request: WriteRequest) -> TagSeen:
        assert self.info is not None
        if self.listing:
            self.chip.abort()
            self.listing = False
        message = text_message(request.text)
        target = self._wait_for_tag(request)
        uid = normalize_uid(target.uid.hex())
        if uid in {normalize_uid(u) for u in request.exclude_uids}:
            raise WriteError(f"tag {uid} is excluded from writing")
        if request.target_uid and normalize_uid(request.target_uid) != uid:
            raise WriteError(f"tag {uid} is not the target tag {normalize_uid(request.target_uid)}")
        try:
            self._read(target, whole=True)
            assert self.last_read is not None
            _, memory, version, unknown = self.last_read
            if self._is_classic(target):
                self._write_classic(target, memory, message)
            else:
                self._write_type2(memory, message, version)
            decoded = self._read(target)
        except (type2.Type2Error, classic.ClassicError) as exc:
            raise WriteError(str(exc)) from None
        except TagGoneError:
            self.target = None
            raise WriteError("the tag left the reader during the write") from None
        except Pn532Error as exc:
            raise WriteError(f"write failed: {exc}") from None
        if decoded.text != request.text:
            raise WriteError(f"verify failed: the tag reads back {decoded.text!r}")
        token = decoded.to_token(reader_id=self.info.reader_id, source=self.info.connect_string)
        return TagSeen(self.info.reader_id, token, self._detail(target, decoded), written=True)

    def _write_type2(self, memory: bytes, message: bytes, version: bytes | None) -> None:
        for w in type2.plan_write(memory, message, version):
            self.chip.data_exchange(bytes([0xA2, w.page]) + w.data)

    def _write_classic(self, target: Target, memory: bytes, message: bytes) -> None:
        writes = classic.plan_write(memory, message)
        current = classic.ClassicMemory(memory)
        keys = [classic.KEY_NDEF, classic.KEY_DEFAULT, classic.KEY_MAD] + self.keys
        authed: int | None = None
        for w in writes:
            s = classic.sector_of(w.block)
            if authed != s:
                preferred = [current.trailer(s).key_a] + keys
                if self._auth(target, w.block, preferred) is None:
                    raise WriteError(f"sector {s}: no known key can write it")
                authed = s
            self.chip.data_exchange(bytes([0xA0, w.block]) + w.data)
            if w.block == classic.trailer_block(s):
                authed = None  # new keys from now on
                current = classic.ClassicMemory(classic.apply_writes(current.memory, [w]))

    # --- dumping ----------------------------------------------------------
    def dump(self, timeout: float = 30.0):  # -> TagDump
        """Read the whole tag on the reader (waiting up to ``timeout``) as a TagDump."""
        from tagd.ndef.dumps import TagDump

        target = self._wait_for_tag(WriteRequest(text="", timeout=timeout))
        decoded = self._read(target, whole=True)
        assert self.last_read is not None
        _, memory, version, unknown = self.last_read
        return TagDump(kind=decoded.kind, uid=target.uid, atqa=target.atqa, sak=target.sak, memory=memory,
                       version=version, unknown=unknown)


@register
class Pn532Alias(Pn532Reader):
    """``pn532:/dev/ttyUSB0`` is accepted too."""

    driver = "pn532"


__all__ = ["Pn532Reader", "usb_topology", "ChipTimeout"]
