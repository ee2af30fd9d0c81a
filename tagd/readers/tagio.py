"""How a reader reads and writes a tag, independent of the reader: the PN532 and the ACR122U drivers each
give a small :class:`TagIO` (raw Type 2 command, READ, MIFARE auth, page/block write) and share these
algorithms, so both read the same pages in the same order and produce identical tokens.

Reading is minimal by design, and reads exactly what the token's ``data`` is made of (tagd.ndef.decode
defines it), so a tap gives the data a decoded dump of the same tag gives: Type 2 — GET_VERSION, a
FAST_READ of the CC and the first data pages, then exactly the rest of the NDEF TLV (pages 0–2 are
rebuilt from the UID the reader already has); a tag without NDEF gets its real pages 0–2 (lock bytes)
and the rest of its memory, an amiibo only up to its character ID (page 22). MIFARE Classic — the MAD,
then NDEF sectors until the TLV is complete; a card without NDEF is read whole. Keys: the well-known
ones, then the configured ones, the last that worked first. Writing reads the whole tag, plans with the
torn-write-safe plans of tagd.ndef, writes, and verifies by reading back.

A tag that answers its UID but refuses the reads is still a token: :func:`read_or_uid` gives its UID
and the reason, so a reader reports it once instead of failing on it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Protocol, Sequence

from tagd.ndef import classic, type2
from tagd.ndef.decode import DecodedTag, decode_tag
from tagd.ndef.records import text_message
from tagd.ndef.tlv import needed_length
from tagd.readers.base import TagExcluded, WriteError, WriteRequest
from tagd.token import TYPE_MIFARE, TYPE_NTAG, normalize_uid

log = logging.getLogger(__name__)

PWD_AUTH = 0x1B  # NTAG21x / Ultralight EV1: PWD_AUTH pwd(4) → PACK(2)
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


classic_kind = classic.kind_from_sak  # MIFARE Classic kind from SAK (None: not a Classic)


def _whole(answer: bytes, size: int, what: str) -> bytes:
    """The first ``size`` bytes of a tag's answer; a shorter answer is a refusal, not data (a clone or a
    hostile tag must not shift the memory map or stall a read loop that waits for bytes to arrive)."""
    if len(answer) < size:
        raise CommandFailed(f"{what}: {len(answer)} bytes, expected {size}")
    return answer[:size]


def _read_block(io: TagIO, block: int) -> bytes:
    return _whole(io.read_block(block), 16, f"READ {block}")


def _read_pages(io: TagIO, start: int, end: int, fast: list[bool]) -> bytes:
    out = bytearray()
    p = start
    while p <= end:
        stop = min(end, p + MAX_FAST_READ - 1)
        if fast[0]:
            try:
                out += _whole(io.thru(bytes([0x3A, p, stop])), (stop - p + 1) * 4, f"FAST_READ {p}-{stop}")
                p = stop + 1
                continue
            except TagLeft:
                raise
            except CommandFailed:
                fast[0] = False  # a clone chip or a tag without FAST_READ: plain READ from now on,
                io.reselect()  # after waking the tag, which goes mute after a command it refuses
        out += _read_block(io, p)[: (min(end, p + 3) - p + 1) * 4]
        p += 4
    return bytes(out)


def read_type2(io: TagIO, uid: bytes, whole: bool = False) -> TagRead:
    try:
        version: bytes | None = io.thru(b"\x60")[:8]
    except CommandFailed:  # no answer at all is normal here: reselecting tells a plain Ultralight from a lost tag
        version = None  # a plain Ultralight (or an NTAG203) does not answer GET_VERSION and must be reselected
        io.reselect()
    kind = type2.kind_from_version(version)
    fast = [True]
    if kind:
        total = type2.TYPE2_KINDS[kind].pages
    else:  # no GET_VERSION: the CC's size is the best guess (a plain Ultralight says 48 bytes: 16 pages)
        cc = _read_block(io, 0)[12:16]
        total = 4 + (cc[2] * 8) // 4 if cc[:1] == b"\xe1" and cc[2] else 16
        if cc[:1] == b"\xe1" and cc[2] == type2.TYPE2_KINDS["ntag203"].cc_size:
            kind, total = "ntag203", type2.TYPE2_KINDS["ntag203"].pages  # an NTAG213 would have answered
    if whole:
        return TagRead(kind or "type2", _read_pages(io, 0, total - 1, fast), version)
    u = uid if len(uid) == 7 else (uid + bytes(7))[:7]
    memory = type2.head_pages(u) + _read_pages(io, 3, min(FIRST_READ_END, total - 1), fast)
    if memory[12] != 0xE1:  # not NDEF: the data is the memory itself, lock bytes included
        memory = _read_block(io, 0)[:12] + memory[12:]
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
    order = classic.reader_keys(keys)  # the last key that worked moves to the front

    def read_sector(s: int, first_keys: tuple[bytes, ...] = ()) -> bool:
        """Read what key A may read of sector ``s``, trailer first (its access bits say which data blocks
        to skip, as tagd.ndef.classic.unreadable does for a dump); False if any of it stays unknown."""
        first, t = classic.first_block(s), classic.trailer_block(s)
        key = _auth_any(io, first, list(dict.fromkeys([*first_keys, *order])))
        if key is None:
            unknown.update(range(first * 16, (t + 1) * 16))
            return False
        order.remove(key)
        order.insert(0, key)
        mem[t * 16:(t + 1) * 16] = key + _read_block(io, t)[6:16]  # key A reads back as zeros: keep the one that worked
        readable = classic.blocks_key_a_reads(bytes(mem[t * 16 + 6:t * 16 + 9]), s)
        complete = True
        for b in classic.data_blocks(s):
            if b in readable:
                try:
                    mem[b * 16:(b + 1) * 16] = _read_block(io, b)
                    continue
                except TagLeft:
                    raise
                except CommandFailed:  # refused all the same: the card halted, wake it for the next block
                    io.reselect()
                    if not io.auth(first, key):
                        readable = []
            unknown.update(range(b * 16, (b + 1) * 16))
            complete = False
        return complete

    def read_all(start: int, stop_at_gap: bool) -> TagRead:
        """Every sector from ``start``; for a token (``stop_at_gap``) only until one cannot be read whole:
        the data is then "" however much more is read (tagd.ndef.decode), so the rest is marked unknown."""
        for s in range(start, classic.sector_count(kind)):
            if not read_sector(s) and stop_at_gap:
                unknown.update(range(classic.first_block(s) * 16, len(mem)))
                break
        return TagRead(kind, bytes(mem), None, frozenset(unknown))

    if whole:
        return read_all(0, stop_at_gap=False)
    if not read_sector(0, (classic.KEY_MAD, classic.KEY_DEFAULT)):
        log.info("MIFARE Classic %s: sector 0 keys unknown, no MAD", uid.hex())
        return TagRead(kind, bytes(mem), None, frozenset(range(len(mem))))
    ndef_sectors = classic.ClassicMemory(bytes(mem), frozenset(unknown)).ndef_sectors
    if not ndef_sectors:  # no NDEF: the data is the whole card (tagd.ndef.decode)
        return read_all(1, stop_at_gap=True)
    stream = bytearray()
    for s in ndef_sectors:
        if not read_sector(s):
            log.info("MIFARE Classic %s: sector %d keys unknown", uid.hex(), s)
            break
        stream += b"".join(mem[b * 16:(b + 1) * 16] for b in classic.data_blocks(s))
        need = needed_length(bytes(stream))
        if need is not None and need <= len(stream):
            break
    return TagRead(kind, bytes(mem), None, frozenset(unknown))


def read_tag(io: TagIO, uid: bytes, sak: int, keys: list[bytes], whole: bool = False,
             passwords: Sequence[bytes] = ()) -> TagRead:
    """The tag's memory as far as the token needs it (all of it with ``whole``). A Type 2 tag that refuses
    a read is tried again after PWD_AUTH with the configured ``passwords`` (read-protected NTAG21x/EV1)."""
    kind = classic_kind(sak)
    if kind:
        return read_classic(io, uid, kind, keys, whole)
    try:
        return read_type2(io, uid, whole)
    except TagLeft:
        raise
    except CommandFailed:
        if not passwords:
            raise
    unlock(io, passwords)
    return read_type2(io, uid, whole)


def unlock(io: TagIO, passwords: Sequence[bytes]) -> None:
    """PWD_AUTH with each password (4 bytes, or 6: PWD then the PACK the tag must answer) until one opens
    the tag; CommandFailed if none does. The tag is reselected first: a refused command halted it."""
    for pwd in passwords:
        io.reselect()
        try:
            pack = io.thru(bytes([PWD_AUTH]) + pwd[:4])
        except TagLeft:
            raise
        except CommandFailed:  # a wrong password is a NAK
            continue
        if len(pwd) < 6 or pack[:2] == pwd[4:6]:
            return
    raise CommandFailed("the tag is password-protected and none of the configured passwords opens it")


def protected_from(memory: bytes, kind: str) -> int | None:
    """AUTH0, the first page an NTAG21x/EV1 guards with its password (None: not protected, or not known)."""
    k = type2.TYPE2_KINDS.get(kind)
    if not k or k.cfg_page is None or len(memory) < (k.cfg_page + 1) * 4:
        return None
    auth0 = memory[k.cfg_page * 4 + 3]
    return auth0 if auth0 < k.pages else None


def uid_only(uid: bytes, sak: int, why: str) -> DecodedTag:
    """A tag that answered its UID but not the reads: a token by its UID, with the reason in ``errors``."""
    return DecodedTag(kind="unknown", uid=uid.hex(), token_type=TYPE_MIFARE if classic_kind(sak) else TYPE_NTAG,
                      errors=[why])


def read_or_uid(io: TagIO, uid: bytes, sak: int, keys: list[bytes], whole: bool = False,
                passwords: Sequence[bytes] = ()) -> tuple[DecodedTag, TagRead | None]:
    """Read and decode the tag; a tag that refuses the reads gives :func:`uid_only` (and no TagRead)
    instead of an exception, so no tag can take a reader down. TagLeft still raises: the tag left."""
    try:
        read = read_tag(io, uid, sak, keys, whole, passwords)
    except TagLeft:
        raise
    except CommandFailed as exc:
        log.info("tag %s: read failed: %s", uid.hex(), exc)
        return uid_only(uid, sak, f"read failed: {exc}"), None
    return read.decode(uid), read


def check_target(uid: bytes, request: WriteRequest) -> None:
    """Refuse a tag the request excludes, or one that is not its target."""
    u = normalize_uid(uid.hex())
    if u in {normalize_uid(x) for x in request.exclude_uids}:
        raise TagExcluded(f"tag {u} is excluded from writing")
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


def _write_type2(io: TagIO, read: TagRead, message: bytes, passwords: Sequence[bytes]) -> None:
    writes = type2.plan_write(read.memory, message, read.version)
    guarded = protected_from(read.memory, read.kind)
    if guarded is not None and any(w.page >= guarded for w in writes):
        if not passwords:
            raise WriteError(f"the tag is write-protected by a password from page {guarded}: "
                             "set the reader's passwords option")
        unlock(io, passwords)
    for w in writes:
        io.write_page(w.page, w.data)


def write_text(io: TagIO, uid: bytes, sak: int, text: str, keys: list[bytes],
               passwords: Sequence[bytes] = ()) -> DecodedTag:
    """Write one NDEF Text record in torn-write-safe order and verify; WriteError (or TagLeft) on failure.
    A password-protected NTAG21x/EV1 is opened with PWD_AUTH first (``passwords``)."""
    message = text_message(text)
    try:
        read = read_tag(io, uid, sak, keys, whole=True, passwords=passwords)
        if classic_kind(sak):
            _write_classic(io, read.memory, message, keys)
        else:
            _write_type2(io, read, message, passwords)
        decoded = read_tag(io, uid, sak, keys, passwords=passwords).decode(uid)
    except (type2.Type2Error, classic.ClassicError) as exc:
        raise WriteError(str(exc)) from None
    except TagLeft:
        raise
    except CommandFailed as exc:
        raise WriteError(f"write failed: {exc}") from None
    if decoded.text != text:
        raise WriteError(f"verify failed: the tag reads back {decoded.text!r}")
    return decoded
