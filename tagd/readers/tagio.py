"""How a reader reads and writes a tag, independent of the reader: the PN532 and the ACR122U drivers each
give a small :class:`TagIO` (raw Type 2 command, READ, MIFARE auth, page/block write) and share these
algorithms, so both read the same pages in the same order and produce identical tokens.

Reading is minimal by design: Type 2 — GET_VERSION, a FAST_READ of the CC and the first data pages, then
exactly the rest of the NDEF TLV (pages 0–2 are rebuilt from the UID the reader already has); MIFARE
Classic — the MAD with the MAD key, then NDEF sectors until the TLV is complete. Writing reads the whole
tag, plans with the torn-write-safe plans of tagd.ndef, writes, and verifies by reading back.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Protocol

from tagd.ndef import classic, type2
from tagd.ndef.decode import DecodedTag, decode_tag
from tagd.ndef.records import text_message
from tagd.ndef.tlv import needed_length
from tagd.readers.base import WriteError, WriteRequest
from tagd.token import normalize_uid

log = logging.getLogger(__name__)

MAX_FAST_READ = 60  # pages per FAST_READ: keeps each answer inside the PN532's buffer
FIRST_READ_END = 19  # first FAST_READ: CC (page 3) to page 19 — a typical ZapScript (≤ 55 bytes) in one exchange


class CommandFailed(Exception):
    """The tag (or reader) answered a command with an error; the tag is still there."""


class TagLeft(CommandFailed):
    """The tag did not answer: it left the field."""


class TagIO(Protocol):
    def thru(self, cmd: bytes) -> bytes: ...  # a raw Type 2 command and the tag's answer

    def read_block(self, block: int) -> bytes: ...  # READ: 16 bytes (4 Type 2 pages or one Classic block)

    def auth(self, block: int, key: bytes) -> bool: ...  # MIFARE key A authentication; False if refused

    def write_page(self, page: int, data: bytes) -> None: ...

    def write_block(self, block: int, data: bytes) -> None: ...

    def reselect(self) -> None: ...  # after a command that halts the tag (no GET_VERSION, failed auth)


@dataclass
class TagRead:
    kind: str
    memory: bytes
    version: bytes | None = None
    unknown: frozenset[int] = field(default_factory=frozenset)

    def decode(self, uid: bytes) -> DecodedTag:
        return decode_tag(self.kind, uid, self.memory, self.version, self.unknown)


def classic_kind(sak: int) -> str | None:
    """MIFARE Classic kind from SAK (None: not a Classic)."""
    if sak & 0x18 == 0:
        return None
    return "classic4k" if sak & 0x10 else ("classicmini" if sak == 0x09 else "classic1k")


def _read_pages(io: TagIO, start: int, end: int, fast: list[bool]) -> bytes:
    out = bytearray()
    p = start
    while p <= end:
        stop = min(end, p + MAX_FAST_READ - 1)
        if fast[0]:
            try:
                out += io.thru(bytes([0x3A, p, stop]))[: (stop - p + 1) * 4]
                p = stop + 1
                continue
            except TagLeft:
                raise
            except CommandFailed:
                fast[0] = False  # a clone chip or a tag without FAST_READ: plain READ from now on,
                io.reselect()  # after waking the tag, which goes mute after a command it refuses
        out += io.read_block(p)[: (min(end, p + 3) - p + 1) * 4]
        p += 4
    return bytes(out)


def read_type2(io: TagIO, uid: bytes, whole: bool = False) -> TagRead:
    try:
        version: bytes | None = io.thru(b"\x60")[:8]
    except CommandFailed:  # no answer at all is normal here: reselecting tells a plain Ultralight from a lost tag
        version = None  # a plain Ultralight does not answer GET_VERSION and must be reselected
        io.reselect()
    kind = type2.kind_from_version(version)
    fast = [True]
    if kind:
        total = type2.TYPE2_KINDS[kind].pages
    else:  # no GET_VERSION: the CC's size is the best guess (a plain Ultralight says 48 bytes: 16 pages)
        cc = io.read_block(0)[12:16]
        total = 4 + (cc[2] * 8) // 4 if cc[:1] == b"\xe1" and cc[2] else 16
    if whole:
        return TagRead(kind or "type2", _read_pages(io, 0, total - 1, fast), version)
    u = uid if len(uid) == 7 else (uid + bytes(7))[:7]
    head = bytes([u[0], u[1], u[2], 0x88 ^ u[0] ^ u[1] ^ u[2]]) + u[3:7] + bytes([u[3] ^ u[4] ^ u[5] ^ u[6], 0x48, 0, 0])
    memory = head + _read_pages(io, 3, min(FIRST_READ_END, total - 1), fast)
    need = type2.pages_to_read(memory, total)
    while need > len(memory) // 4:
        memory += _read_pages(io, len(memory) // 4, need - 1, fast)
        need = type2.pages_to_read(memory, total)
    return TagRead(kind or "type2", memory, version)


def _auth_any(io: TagIO, block: int, keys: list[bytes]) -> bytes | None:
    for key in keys:
        if io.auth(block, key):
            return key
        io.reselect()  # a failed authentication halts the card
    return None


def read_classic(io: TagIO, uid: bytes, kind: str, keys: list[bytes], whole: bool = False) -> TagRead:
    mem = bytearray(classic.SIZES[kind])
    unknown: set[int] = set()
    all_keys = [classic.KEY_NDEF, classic.KEY_MAD, classic.KEY_DEFAULT] + keys

    def read_sector(s: int, keys_: list[bytes]) -> bool:
        first, n = classic.first_block(s), classic.blocks_in(s)
        key = _auth_any(io, first, keys_)
        if key is None:
            unknown.update(range(first * 16, (first + n) * 16))
            return False
        for b in range(first, first + n):
            mem[b * 16:(b + 1) * 16] = io.read_block(b)[:16]
        t = classic.trailer_block(s) * 16
        mem[t:t + 6] = key  # key A reads back as zeros: keep the one that worked
        return True

    if whole:
        for s in range(classic.sector_count(kind)):
            read_sector(s, all_keys)
        return TagRead(kind, bytes(mem), None, frozenset(unknown))
    if not read_sector(0, [classic.KEY_MAD, classic.KEY_DEFAULT] + keys):
        log.info("MIFARE Classic %s: sector 0 keys unknown, no MAD", uid.hex())
        return TagRead(kind, bytes(mem), None, frozenset(range(len(mem))))
    stream = bytearray()
    for s in classic.ClassicMemory(bytes(mem)).ndef_sectors:
        if not read_sector(s, all_keys):
            log.info("MIFARE Classic %s: sector %d keys unknown", uid.hex(), s)
            break
        stream += b"".join(mem[b * 16:(b + 1) * 16] for b in classic.data_blocks(s))
        need = needed_length(bytes(stream))
        if need is not None and need <= len(stream):
            break
    return TagRead(kind, bytes(mem), None, frozenset(unknown))


def read_tag(io: TagIO, uid: bytes, sak: int, keys: list[bytes], whole: bool = False) -> TagRead:
    kind = classic_kind(sak)
    return read_classic(io, uid, kind, keys, whole) if kind else read_type2(io, uid, whole)


def check_target(uid: bytes, request: WriteRequest) -> None:
    """Refuse a tag the request excludes, or one that is not its target."""
    u = normalize_uid(uid.hex())
    if u in {normalize_uid(x) for x in request.exclude_uids}:
        raise WriteError(f"tag {u} is excluded from writing")
    if request.target_uid and normalize_uid(request.target_uid) != u:
        raise WriteError(f"tag {u} is not the target tag {normalize_uid(request.target_uid)}")


def _write_classic(io: TagIO, memory: bytes, message: bytes, keys: list[bytes]) -> None:
    writes = classic.plan_write(memory, message)
    current = classic.ClassicMemory(memory)
    authed: int | None = None
    for w in writes:
        s = classic.sector_of(w.block)
        if authed != s:
            preferred = [current.trailer(s).key_a, classic.KEY_NDEF, classic.KEY_DEFAULT, classic.KEY_MAD] + keys
            if _auth_any(io, w.block, preferred) is None:
                raise WriteError(f"sector {s}: no known key can write it")
            authed = s
        io.write_block(w.block, w.data)
        if w.block == classic.trailer_block(s):
            authed = None  # new keys from now on
            current = classic.ClassicMemory(classic.apply_writes(current.memory, [w]))


def write_text(io: TagIO, uid: bytes, sak: int, text: str, keys: list[bytes]) -> DecodedTag:
    """Write one NDEF Text record in torn-write-safe order and verify; WriteError (or TagLeft) on failure."""
    message = text_message(text)
    try:
        read = read_tag(io, uid, sak, keys, whole=True)
        if classic_kind(sak):
            _write_classic(io, read.memory, message, keys)
        else:
            for w in type2.plan_write(read.memory, message, read.version):
                io.write_page(w.page, w.data)
        decoded = read_tag(io, uid, sak, keys).decode(uid)
    except (type2.Type2Error, classic.ClassicError) as exc:
        raise WriteError(str(exc)) from None
    except TagLeft:
        raise
    except CommandFailed as exc:
        raise WriteError(f"write failed: {exc}") from None
    if decoded.text != text:
        raise WriteError(f"verify failed: the tag reads back {decoded.text!r}")
    return decoded
