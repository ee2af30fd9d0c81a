"""NFC Forum Type 2 tags (MIFARE Ultralight, NTAG213/215/216): the memory map and write plans.

Memory is a run of 4-byte pages. Page 0–1 hold the 7-byte UID and BCC0, page 2 BCC1 and the static
lock bytes, page 3 the Capability Container ``E1 ver size/8 access``; the data area starts at page 4.
The tag kind comes from GET_VERSION when we have it (real tags often carry a wrong CC), else the CC
size byte, else the image size.

Writing follows the torn-write-safe order (SPEC §2): the NDEF TLV is first written with length 0,
then the message pages, then the real length — a tag pulled away mid-write reads as empty (or as its
old content), never as a truncated message.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from tagd.ndef import tlv as tlvmod
from tagd.ndef.records import message_to_text

PAGE = 4
DATA_START = 16  # byte address of page 4


@dataclass(frozen=True)
class Type2Kind:
    name: str
    label: str
    pages: int
    user_end: int  # last user page (inclusive)
    cc_size: int
    dyn_lock_page: int | None = None
    cfg_page: int | None = None
    version: bytes | None = None
    pages_per_dyn_lock_bit: int = 0  # NTAG213: 2; NTAG215/216: 16; NTAG203: 4 (datasheets, "dynamic lock bytes")
    first_dyn_lock_bit: int = 0  # NTAG203's first 4 bits lock the lock bits themselves (block-locking), not pages

    @property
    def user_start(self) -> int:
        return 4

    @property
    def user_bytes(self) -> int:
        return (self.user_end - 3) * PAGE


TYPE2_KINDS: dict[str, Type2Kind] = {
    k.name: k
    for k in (
        Type2Kind("ultralight", "MIFARE Ultralight", 16, 15, 0x06),
        Type2Kind("ultralight_ev1", "MIFARE Ultralight EV1", 20, 15, 0x06, None, 0x10,
                  bytes.fromhex("0004030101000B03")),
        # NTAG203: no GET_VERSION (it NAKs), same CC size and factory Lock Control TLV as NTAG213, 42 pages
        Type2Kind("ntag203", "NTAG203", 42, 39, 0x12, 0x28, None, None, 4, 4),
        Type2Kind("ntag213", "NTAG213", 45, 39, 0x12, 0x28, 0x29, bytes.fromhex("0004040201000F03"), 2),
        Type2Kind("ntag215", "NTAG215", 135, 129, 0x3E, 0x82, 0x83, bytes.fromhex("0004040201001103"), 16),
        Type2Kind("ntag216", "NTAG216", 231, 225, 0x6D, 0xE2, 0xE3, bytes.fromhex("0004040201001303"), 16),
    )
}


class Type2Error(ValueError):
    """A write that cannot be planned (see the subclasses)."""


class CapacityError(Type2Error):
    """The message does not fit; raised before anything is written."""


class ReadOnlyError(Type2Error):
    """The CC or the lock bits forbid the write."""


class NotNdefError(Type2Error):
    """The tag holds something that is not NDEF (an amiibo, say): tagd will not overwrite it."""


class PageWrite(NamedTuple):
    page: int
    data: bytes


def kind_from_version(version: bytes | None) -> str | None:
    """The kind named by a GET_VERSION answer (product type byte 2, storage size byte 6)."""
    if not version or len(version) < 7:
        return None
    for kind in TYPE2_KINDS.values():
        if kind.version and version[2] == kind.version[2] and version[6] == kind.version[6]:
            return kind.name
    return None


AMIIBO_HEADER = bytes.fromhex("480FE0F110FFEE")  # bytes 9–15: internal byte, lock bytes, CC (Zaparoo Core's test)
AMIIBO_ID = slice(21 * PAGE, 23 * PAGE)  # pages 21–22: the 8-byte character ID Core reports as the token data


def is_amiibo(memory: bytes) -> bool:
    """Zaparoo Core's rule (its libnfc NTAG reader): bytes 9–15 of pages 0–3 are ``48 0F E0 F1 10 FF EE``."""
    return memory[9:16] == AMIIBO_HEADER


def uid_check_problem(memory: bytes) -> str | None:
    """Why pages 0–2 cannot be a Type 2 tag's UID (the check bytes BCC0 = 88^UID0^UID1^UID2 and
    BCC1 = UID3^…^UID6 disagree), or None. ISO 15693, iCLASS and other images fail this."""
    m = memory
    bcc0, bcc1 = 0x88 ^ m[0] ^ m[1] ^ m[2], m[4] ^ m[5] ^ m[6] ^ m[7]
    if m[3] != bcc0:
        return f"BCC0 (page 0, byte 3) is {m[3]:02X} where the UID bytes give {bcc0:02X}"
    if m[8] != bcc1:
        return f"BCC1 (page 2, byte 0) is {m[8]:02X} where the UID bytes give {bcc1:02X}"
    return None


def head_pages(uid: bytes, lock: bytes = b"\x00\x00") -> bytes:
    """Pages 0–2 of a Type 2 tag with this 7-byte UID: UID, BCC0, BCC1, the internal byte 48, lock bytes."""
    u = uid
    return bytes([u[0], u[1], u[2], 0x88 ^ u[0] ^ u[1] ^ u[2]]) + u[3:7] + bytes([u[3] ^ u[4] ^ u[5] ^ u[6], 0x48]) + lock


def _kind_guess(memory: bytes, version: bytes | None, hint: str | None) -> tuple[Type2Kind | None, bool]:
    """(kind, whether the chip's size is known for sure): GET_VERSION, else the caller's kind (a dump file's
    device type), else the CC size byte, else the image size. A CC naming a kind smaller than the image
    itself is wrong (real tags carry wrong CCs): then the image size decides."""
    named = kind_from_version(version) or (hint if hint in TYPE2_KINDS else None)
    if named:
        return TYPE2_KINDS[named], True
    by_size = next((k for k in TYPE2_KINDS.values() if k.pages * PAGE == len(memory)
                    and k.name != "ultralight_ev1"), None)
    if memory[12] == 0xE1:
        by_cc = next((k for k in TYPE2_KINDS.values() if k.cc_size == memory[14] and k.name != "ntag203"), None)
        if by_cc and (by_size is None or by_cc.pages >= by_size.pages):
            return by_cc, False
    return by_size, by_size is not None


class Type2Memory:
    """A read-only view of a Type 2 memory image."""

    def __init__(self, memory: bytes, version: bytes | None = None, kind: str | None = None) -> None:
        if len(memory) < 16:
            raise Type2Error(f"a Type 2 image needs at least 16 bytes (pages 0-3), got {len(memory)}")
        self.memory = bytes(memory)
        self.version = version
        self._kind, self._size_known = _kind_guess(self.memory, version, kind)

    # --- identity ---------------------------------------------------------
    @property
    def uid(self) -> bytes:
        return self.memory[0:3] + self.memory[4:8]

    @property
    def cc(self) -> bytes:
        return self.memory[12:16]

    @property
    def kind(self) -> str:
        return self._kind.name if self._kind else "type2"

    @property
    def label(self) -> str:
        return self._kind.label if self._kind else "Type 2 tag"

    @property
    def is_ndef(self) -> bool:
        return self.cc[0] == 0xE1

    @property
    def locked_pages(self) -> frozenset[int]:
        """Pages the lock bits make read-only: static lock bytes (page 2: L-CC and L4–L15) and, when the
        image holds them, the dynamic lock bytes (each bit locks a group of pages from page 16 on)."""
        static = int.from_bytes(self.memory[10:12], "little")  # bit 3 = page 3, bits 4..15 = pages 4..15
        pages = {p for p in range(3, 16) if static >> p & 1}
        k = self._kind
        if k and k.dyn_lock_page is not None and len(self.memory) >= (k.dyn_lock_page + 1) * PAGE:
            at = k.dyn_lock_page * PAGE
            bits = int.from_bytes(self.memory[at:at + 2], "little")
            for bit in range(k.first_dyn_lock_bit, 16):
                if bits >> bit & 1:
                    first = 16 + (bit - k.first_dyn_lock_bit) * k.pages_per_dyn_lock_bit
                    pages.update(range(first, min(first + k.pages_per_dyn_lock_bit, k.user_end + 1)))
        return frozenset(pages)

    @property
    def read_only(self) -> bool:
        """No NDEF write can succeed: the CC denies write access, or page 4 (where the NDEF TLV starts) is locked."""
        return (self.is_ndef and (self.cc[3] & 0x0F) != 0) or 4 in self.locked_pages

    # --- data area --------------------------------------------------------
    @property
    def area_end(self) -> int:
        """Byte address just past the data area."""
        limit = len(self.memory)
        if self._kind:
            limit = min(limit, (self._kind.user_end + 1) * PAGE)
        if self.is_ndef and self.cc[2] and not self._size_known:
            # without GET_VERSION (or a whole image) the CC is all we know; with it, the chip's real size wins
            # (CCs are often wrong)
            limit = min(limit, DATA_START + self.cc[2] * 8)
        return max(limit, DATA_START)

    @property
    def write_end(self) -> int:
        """Byte address just past what a write may use: never past what the CC declares, so that any
        reader trusting the CC still sees the whole message."""
        if self.is_ndef and self.cc[2]:
            return min(self.area_end, DATA_START + self.cc[2] * 8)
        return self.area_end

    @property
    def capacity(self) -> int:
        """Bytes of the NDEF data area that a write may use (from the kind and CC, not from how much of
        the memory was read: readers fetch only the pages they need)."""
        end = (self._kind.user_end + 1) * PAGE if self._kind else len(self.memory)
        if self.is_ndef and self.cc[2]:
            end = min(end, DATA_START + self.cc[2] * 8)
        return max(0, end - DATA_START)

    def stream_addresses(self) -> list[int]:
        """Absolute addresses of the data-area bytes, minus those that Lock/Memory Control TLVs reserve."""
        reserved = reserved_addresses(self.memory[:self.area_end])
        return [a for a in range(DATA_START, self.area_end) if a not in reserved]

    def stream(self) -> bytes:
        return bytes(self.memory[a] for a in self.stream_addresses())

    @property
    def ndef_message(self) -> bytes | None:
        """The NDEF message bytes; None when the tag is not NDEF or holds no NDEF TLV.

        Raises TlvError when the TLV structure is malformed."""
        if not self.is_ndef:
            return None
        return tlvmod.find_ndef(self.stream())

    @property
    def text(self) -> str:
        msg = self.ndef_message
        return message_to_text(msg) if msg else ""


def reserved_addresses(memory: bytes) -> frozenset[int]:
    """Byte addresses that the Lock/Memory Control TLVs at the start of the data area declare
    (NFC Forum Type 2: PageAddr, ByteOffset, size, bytes-per-page exponent). Such areas always lie
    after the TLVs declaring them; anything else is malformed and ignored. On NTAG21x the dynamic lock
    bytes sit after the user area, so this is usually empty within it."""
    reserved: set[int] = set()
    try:
        for t in tlvmod.iter_tlvs(memory[DATA_START:]):
            if t.tag not in (tlvmod.LOCK_CONTROL, tlvmod.MEMORY_CONTROL):
                break
            ctl = tlvmod.decode_control(t)
            if ctl and ctl.address >= DATA_START + t.offset + 5:
                reserved.update(range(ctl.address, ctl.address + ctl.size))
    except tlvmod.TlvError:
        pass
    return frozenset(reserved)


def blank_image(kind: str, uid: bytes) -> bytes:
    """Factory content of a tag of this kind with this 7-byte UID."""
    k = TYPE2_KINDS[kind]
    if len(uid) != 7:
        raise Type2Error(f"a Type 2 UID has 7 bytes, got {len(uid)}")
    mem = bytearray(k.pages * PAGE)
    mem[0:12] = head_pages(uid)
    mem[12:16] = bytes([0xE1, 0x10, k.cc_size, 0x00])
    if kind in ("ntag213", "ntag203"):
        mem[16:24] = bytes.fromhex("0103A00C340300FE")
    else:
        mem[16:20] = bytes.fromhex("0300FE00")
    if k.dyn_lock_page is not None and k.version:  # NTAG21x: RFUI byte 3 of the dynamic lock page
        mem[k.dyn_lock_page * PAGE + 3] = 0xBD
    if k.cfg_page is not None:  # CFG0: AUTH0 = FF (no password protection); CFG1 = 00; PWD FF; PACK 00
        mem[k.cfg_page * PAGE:(k.cfg_page + 1) * PAGE] = bytes([0x04 if k.dyn_lock_page else 0x00, 0x00, 0x00, 0xFF])
        if k.cfg_page + 2 < k.pages:
            mem[(k.cfg_page + 2) * PAGE:(k.cfg_page + 3) * PAGE] = b"\xff" * 4
    return bytes(mem)


def apply_writes(memory: bytes, writes: list[PageWrite]) -> bytes:
    mem = bytearray(memory)
    for w in writes:
        mem[w.page * PAGE:(w.page + 1) * PAGE] = w.data
    return bytes(mem)


def _prefix_length(stream: bytes) -> int:
    """Length of the leading control TLVs (Lock/Memory Control, NULL) that a rewrite keeps."""
    pos = 0
    try:
        for t in tlvmod.iter_tlvs(stream):  # stops at the first other TLV: old content after it does not matter
            if t.tag not in (tlvmod.LOCK_CONTROL, tlvmod.MEMORY_CONTROL):
                break
            pos = t.offset + 2 + len(t.value)
    except tlvmod.TlvError:
        pass
    return pos


def plan_write(memory: bytes, message: bytes, version: bytes | None = None) -> list[PageWrite]:
    """The page writes that put ``message`` on the tag, in torn-write-safe order."""
    tag = Type2Memory(memory, version)
    if tag.read_only:
        why = f"CC {tag.cc.hex().upper()}" if tag.cc[3] & 0x0F else "page 4 locked"
        raise ReadOnlyError(f"the {tag.label} is read-only ({why})")
    mem = bytearray(tag.memory)
    writes: list[PageWrite] = []
    if not tag.is_ndef:
        if any(tag.cc):
            raise NotNdefError(f"the {tag.label} is not NDEF formatted (CC {tag.cc.hex().upper()}); refusing to overwrite it")
        size = tag._kind.cc_size if tag._kind else (len(mem) - DATA_START) // 8  # the factory CC
        mem[12:16] = bytes([0xE1, 0x10, size, 0x00])
        writes.append(PageWrite(3, bytes(mem[12:16])))
        tag = Type2Memory(bytes(mem), version)
    addrs = [a for a in tag.stream_addresses() if a < tag.write_end]
    stream = bytes(mem[a] for a in addrs)
    prefix = stream[:_prefix_length(stream)]
    room = len(addrs) - len(prefix)
    needed = tlvmod.header_size(len(message)) + len(message)  # sized before encoding: a TLV holds at most 65534
    if needed > room:
        in_use = f"; {len(prefix)} bytes go to control TLVs" if prefix else ""
        raise CapacityError(
            f"the message needs {needed} bytes but the {tag.label} holds {room} "
            f"({len(message)}-byte NDEF message + {needed - len(message)}-byte TLV header{in_use})"
        )
    body = tlvmod.ndef_tlv(message)
    if len(body) < room:
        body += bytes([tlvmod.TERMINATOR])
    header_len = tlvmod.header_size(len(message))
    zero_header = bytes([tlvmod.NDEF]) + (b"\x00" if header_len == 2 else b"\xff\x00\x00")
    final = prefix + body
    header_addrs = addrs[len(prefix):len(prefix) + header_len]
    header_pages = sorted({a // PAGE for a in header_addrs})

    def page_bytes(content: bytes) -> dict[int, bytes]:
        img = bytearray(mem)
        for a, b in zip(addrs, content):
            img[a] = b
        return {p: bytes(img[p * PAGE:(p + 1) * PAGE]) for p in {a // PAGE for a in addrs[:len(content)]}}

    target = page_bytes(final)
    staged = page_bytes(prefix + zero_header + body[header_len:])
    # 1. the TLV header with length 0 (the tag now reads as empty)
    for p in header_pages:
        writes.append(PageWrite(p, staged[p]))
    # 2. the message (and terminator), only pages that change
    for p in sorted(target):
        if p not in header_pages and target[p] != bytes(mem[p * PAGE:(p + 1) * PAGE]):
            writes.append(PageWrite(p, target[p]))
    # 3. the real length
    for p in header_pages:
        if target[p] != staged[p]:
            writes.append(PageWrite(p, target[p]))
    locked = sorted({w.page for w in writes} & tag.locked_pages)
    if locked:
        raise ReadOnlyError(f"the {tag.label} has locked pages in the way of this write: {', '.join(map(str, locked))}")
    return writes


def pages_to_read(prefix: bytes, total_pages: int) -> int:
    """How many pages from page 0 must be read to decode the tag, given the bytes read so far.

    A result larger than ``len(prefix) // 4`` means: read up to there, then ask again.
    Non-NDEF tags are read whole, since their token data is the memory; an amiibo up to page 22.
    Bytes reserved by Lock/Memory Control TLVs are not part of the NDEF stream, so the TLV may end later.
    """
    have = len(prefix) // PAGE
    if len(prefix) < 16:
        return max(4, min(total_pages, 16))
    if prefix[12] != 0xE1:  # the token data is the memory (an amiibo: its character ID, pages 21–22)
        return max(have, min(total_pages, AMIIBO_ID.stop // PAGE)) if is_amiibo(prefix) else total_pages
    area_pages = min(total_pages, 4 + -(-prefix[14] * 8 // PAGE)) if prefix[14] else total_pages
    reserved = reserved_addresses(prefix)
    addrs = [a for a in range(DATA_START, len(prefix)) if a not in reserved]
    need = tlvmod.needed_length(bytes(prefix[a] for a in addrs))
    if need is None:
        return max(have, min(area_pages, max(have + 1, have * 2)))
    need += 1  # and the byte after the TLV (the terminator): cheap, and it tells the reader the area ends there
    if need <= len(addrs):
        end = addrs[need - 1] + 1
    else:  # count the bytes still to come, stepping over reserved ones
        end, remaining = len(prefix), need - len(addrs)
        while remaining:
            remaining -= end not in reserved
            end += 1
    return max(4, min(area_pages, -(-end // PAGE)))
