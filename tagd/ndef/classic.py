"""MIFARE Classic 1K/4K/Mini: sectors, trailers, access bits, the MAD and NDEF across sectors.

1K: 16 sectors of 4 blocks; 4K: 32 sectors of 4 blocks then 8 of 16; Mini: 5 sectors of 4. Each sector
ends with a trailer ``KeyA(6) | access bits(3) GPB(1) | KeyB(6)``. An NFC Forum NDEF card carries a MAD
(sector 0; v2 also in sector 16 on a 4K) whose AIDs mark NDEF sectors with ``E1 03``; the NDEF TLVs
run across the data blocks of those sectors, skipping trailers.

Memory images hold every block (16 bytes each) with the real keys in the trailers.
"""

from __future__ import annotations

from typing import NamedTuple

from tagd.ndef import tlv as tlvmod
from tagd.ndef.records import message_to_text

BLOCK = 16
KEY_DEFAULT = b"\xff" * 6
KEY_MAD = bytes.fromhex("a0a1a2a3a4a5")
KEY_NDEF = bytes.fromhex("d3f7d3f7d3f7")
WELL_KNOWN_KEYS = (KEY_DEFAULT, KEY_MAD, KEY_NDEF, bytes.fromhex("b0b1b2b3b4b5"), bytes(6))
NDEF_AID = 0xE103
MAD_ACCESS = bytes.fromhex("787788")
NDEF_ACCESS = bytes.fromhex("7f0788")
TRANSPORT_ACCESS = bytes.fromhex("ff0780")
SIZES = {"classicmini": 320, "classic1k": 1024, "classic4k": 4096}
LABELS = {"classicmini": "MIFARE Classic Mini", "classic1k": "MIFARE Classic 1K", "classic4k": "MIFARE Classic 4K"}
ATQA_SAK = {"classicmini": (0x0004, 0x09), "classic1k": (0x0004, 0x08), "classic4k": (0x0002, 0x18)}


class ClassicError(ValueError):
    """A MIFARE Classic image or write that cannot be handled (see the subclasses)."""


class CapacityError(ClassicError):
    """The message does not fit the NDEF sectors; raised before anything is written."""


class NotFormattedError(ClassicError):
    """The card is not NDEF and holds data (or a MAD for other applications) that formatting would destroy."""


class ReadOnlyError(ClassicError):
    """The access bits or the NFC Forum GPB of an NDEF sector forbid writing it."""


class BlockWrite(NamedTuple):
    block: int
    data: bytes


class Trailer(NamedTuple):
    key_a: bytes
    access: bytes  # 3 access bytes + GPB
    key_b: bytes


def mad_crc(data: bytes) -> int:
    """CRC-8 of the MAD (polynomial 0x1D, preset 0xC7), over info byte + AIDs."""
    crc = 0xC7
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1D) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
    return crc


def kind_for_size(size: int) -> str:
    for kind, n in SIZES.items():
        if n == size:
            return kind
    raise ClassicError(f"a MIFARE Classic image has 320, 1024 or 4096 bytes, got {size}")


def sector_count(kind: str) -> int:
    return {"classicmini": 5, "classic1k": 16, "classic4k": 40}[kind]


def first_block(sector: int) -> int:
    return sector * 4 if sector < 32 else 128 + (sector - 32) * 16


def blocks_in(sector: int) -> int:
    return 4 if sector < 32 else 16


def sector_of(block: int) -> int:
    return block // 4 if block < 128 else 32 + (block - 128) // 16


def trailer_block(sector: int) -> int:
    return first_block(sector) + blocks_in(sector) - 1


def data_blocks(sector: int) -> range:
    start = first_block(sector)
    return range(start, start + blocks_in(sector) - 1)


# (C1, C2, C3) of a data block that some key may write: 000 (key A|B), 100, 110, 011 (key B)
WRITABLE_DATA = frozenset({(0, 0, 0), (1, 0, 0), (1, 1, 0), (0, 1, 1)})


# (C1, C2, C3) of a data block that key A may read (MF1S50 datasheet, "access conditions for data blocks")
READABLE_WITH_KEY_A = frozenset({(0, 0, 0), (0, 1, 0), (1, 0, 0), (1, 1, 0), (0, 0, 1)})


def kind_from_sak(sak: int) -> str | None:
    """The MIFARE Classic kind a reader infers from SAK (None: not a Classic, read it as Type 2)."""
    if sak & 0x18 == 0:
        return None
    return "classic4k" if sak & 0x10 else ("classicmini" if sak == 0x09 else "classic1k")


def reader_keys(extra: list[bytes] | tuple[bytes, ...] = ()) -> list[bytes]:
    """The keys A every tagd reader tries: the well-known ones, then the configured ``extra`` ones."""
    return list(dict.fromkeys([KEY_NDEF, KEY_MAD, KEY_DEFAULT, *WELL_KNOWN_KEYS, *extra]))


def blocks_key_a_reads(access: bytes, sector: int) -> list[int]:
    """The data blocks of ``sector`` that key A may read under these access bytes (none when the bytes
    are inconsistent: the card then blocks the sector). The trailer itself always reads with key A."""
    groups = access_conditions(access[:3])
    if groups is None:
        return []
    first = first_block(sector)

    def group(b: int) -> int:
        return b - first if blocks_in(sector) == 4 else min((b - first) // 5, 2)

    return [b for b in data_blocks(sector) if groups[group(b)] in READABLE_WITH_KEY_A]


def unreadable(memory: bytes, unknown: frozenset[int] = frozenset(),
               keys: list[bytes] | tuple[bytes, ...] = ()) -> frozenset[int]:
    """``unknown`` plus the bytes a reader cannot read from this card with key A from :func:`reader_keys`:
    every block of a sector whose key A is none of them (or was unknown to the dump), and the data blocks
    whose access conditions keep key A out. What a dump holds beyond that, a tap never sees."""
    known = set(reader_keys(keys))
    out = set(unknown)
    for s in range(sector_count(kind_for_size(len(memory)))):
        t = trailer_block(s) * BLOCK
        if any(a in unknown for a in range(t, t + 6)) or memory[t:t + 6] not in known:
            out.update(range(first_block(s) * BLOCK, t + BLOCK))
            continue
        readable = blocks_key_a_reads(memory[t + 6:t + 9], s)
        for b in data_blocks(s):
            if b not in readable:
                out.update(range(b * BLOCK, (b + 1) * BLOCK))
    return frozenset(out)


def without_keys(memory: bytes) -> bytes:
    """The card with every trailer's Key A and Key B as zeros: Key A always reads back so, Key B does
    unless the access bits expose it, and neither belongs in a token (keys are secrets)."""
    mem = bytearray(memory)
    for s in range(sector_count(kind_for_size(len(memory)))):
        t = trailer_block(s) * BLOCK
        mem[t:t + 6] = bytes(6)
        mem[t + 10:t + 16] = bytes(6)
    return bytes(mem)


def access_conditions(access: bytes) -> list[tuple[int, int, int]] | None:
    """(C1, C2, C3) for the 4 block groups of a sector, or None when the inverted copies disagree."""
    b6, b7, b8 = access[0], access[1], access[2]
    c1, c2, c3 = b7 >> 4, b8 & 0x0F, b8 >> 4
    if (~b6 & 0x0F) != c1 or ((~b6 >> 4) & 0x0F) != c2 or (~b7 & 0x0F) != c3:
        return None
    return [((c1 >> i) & 1, (c2 >> i) & 1, (c3 >> i) & 1) for i in range(4)]


def encode_access(conditions: list[tuple[int, int, int]], gpb: int = 0) -> bytes:
    c1 = sum(c[0] << i for i, c in enumerate(conditions))
    c2 = sum(c[1] << i for i, c in enumerate(conditions))
    c3 = sum(c[2] << i for i, c in enumerate(conditions))
    return bytes([((~c2 & 0xF) << 4) | (~c1 & 0xF), (c1 << 4) | (~c3 & 0xF), (c3 << 4) | c2, gpb])


def trailer_bytes(key_a: bytes, access: bytes, gpb: int, key_b: bytes) -> bytes:
    return key_a + access + bytes([gpb]) + key_b


def _mad_bytes(kind: str) -> tuple[bytes, bytes | None]:
    """MAD v1 (sector 0, 32 bytes) and, for 4K, MAD v2 (sector 16, 48 bytes), every sector marked NDEF."""
    n = sector_count(kind)
    aids1 = [NDEF_AID if s < n else 0 for s in range(1, 16)]
    body1 = bytes([0x01]) + b"".join(a.to_bytes(2, "little") for a in aids1)
    mad1 = bytes([mad_crc(body1)]) + body1
    if kind != "classic4k":
        return mad1, None
    aids2 = [NDEF_AID for _ in range(17, 40)]
    body2 = bytes([0x01]) + b"".join(a.to_bytes(2, "little") for a in aids2)
    return mad1, bytes([mad_crc(body2)]) + body2


class ClassicMemory:
    """A read-only view of a MIFARE Classic image."""

    # the block layout, also reachable from an instance
    first_block = staticmethod(first_block)
    blocks_in = staticmethod(blocks_in)
    sector_of = staticmethod(sector_of)
    trailer_block = staticmethod(trailer_block)
    data_blocks = staticmethod(data_blocks)

    def __init__(self, memory: bytes, unknown: frozenset[int] = frozenset()) -> None:
        self.kind = kind_for_size(len(memory))
        self.memory = bytes(memory)
        self.unknown = frozenset(unknown)
        self.sectors = sector_count(self.kind)

    @property
    def uid(self) -> bytes:
        return self.memory[0:4]

    def block(self, n: int) -> bytes:
        return self.memory[n * BLOCK:(n + 1) * BLOCK]

    def trailer(self, sector: int) -> Trailer:
        t = self.block(trailer_block(sector))
        return Trailer(t[0:6], t[6:10], t[10:16])

    def sector_known(self, sector: int) -> bool:
        """Whether the data blocks of the sector were read (a dump marks unread bytes as unknown)."""
        start = first_block(sector) * BLOCK
        end = (trailer_block(sector)) * BLOCK
        return not any(a in self.unknown for a in range(start, end))

    @property
    def unknown_sectors(self) -> list[int]:
        return [s for s in range(self.sectors) if not self.sector_known(s)]

    def sector_writable(self, sector: int) -> bool:
        """Some key may write the data blocks (access bits), and the NFC Forum GPB does not say read-only."""
        trailer = self.trailer(sector)
        conditions = access_conditions(trailer.access[:3])
        if conditions is None or (trailer.access[3] & 0x03) == 0x03:
            return False
        return all(conditions[i if blocks_in(sector) == 4 else min(i // 5, 2)] in WRITABLE_DATA
                   for i in range(blocks_in(sector) - 1))

    @property
    def read_only(self) -> bool:
        """An NDEF card none of whose NDEF sectors can be written."""
        sectors = self.ndef_sectors
        return bool(sectors) and not any(self.sector_writable(s) for s in sectors)

    def _mad_aids(self, blocks: list[int], count: int) -> list[int] | None:
        if any(not self.sector_known(sector_of(b)) for b in blocks):
            return None
        raw = b"".join(self.block(b) for b in blocks)
        body = raw[1:2 + count * 2]
        if raw[0] != mad_crc(body):
            return None
        return [int.from_bytes(body[1 + 2 * i:3 + 2 * i], "little") for i in range(count)]

    @property
    def mad_aids(self) -> list[int] | None:
        """AID per sector (index = sector; sector 0 and 16 hold the MAD itself), or None without a valid MAD."""
        gpb = self.block(3)[9]
        if not gpb & 0x80:
            return None
        v1 = self._mad_aids([1, 2], 15)
        if v1 is None:
            return None
        aids = [0] + v1
        if self.kind == "classic4k":
            v2 = self._mad_aids([64, 65, 66], 23) if (gpb & 0x03) == 0x02 else None
            aids += [0] + (v2 if v2 is not None else [0] * 23)
        return aids[:self.sectors]

    @property
    def ndef_sectors(self) -> list[int]:
        aids = self.mad_aids
        if aids is None:
            return []
        return [s for s, aid in enumerate(aids) if aid == NDEF_AID and s not in (0, 16)]

    def stream_blocks(self) -> list[int]:
        """Data blocks of the NDEF sectors, in order, up to the first sector whose content is unknown."""
        out: list[int] = []
        for s in self.ndef_sectors:
            if not self.sector_known(s):
                break
            out.extend(data_blocks(s))
        return out

    @property
    def ndef_message(self) -> bytes | None:
        """The NDEF message, or None without MAD/NDEF TLV. Raises TlvError when malformed or cut short
        (also when it runs into a sector whose keys were unknown)."""
        blocks = self.stream_blocks()
        if not blocks:
            return None
        return tlvmod.find_ndef(b"".join(self.block(b) for b in blocks))

    @property
    def is_ndef(self) -> bool:
        return bool(self.ndef_sectors)

    @property
    def capacity(self) -> int:
        return sum(len(data_blocks(s)) for s in self.ndef_sectors) * BLOCK

    @property
    def text(self) -> str:
        msg = self.ndef_message
        return message_to_text(msg) if msg else ""


def blank_image(kind: str, uid: bytes) -> bytes:
    """A card in transport state: keys FF, access FF 07 80 69, block 0 with UID, BCC, SAK and ATQA."""
    if len(uid) not in (4, 7):
        raise ClassicError(f"a MIFARE Classic UID has 4 or 7 bytes, got {len(uid)}")
    size = SIZES[kind]
    mem = bytearray(size)
    atqa, sak = ATQA_SAK[kind]
    if len(uid) == 4:  # UID BCC SAK ATQA (as stored: little-endian) + manufacturer data
        head = uid + bytes([uid[0] ^ uid[1] ^ uid[2] ^ uid[3], sak]) + atqa.to_bytes(2, "little")
    else:  # 7-byte UID cards have no BCC in block 0
        head = uid + bytes([sak]) + (atqa | 0x40).to_bytes(2, "little")
    mem[0:16] = head + b"tagd\x00\x00\x00\x00"[:16 - len(head)]
    for s in range(sector_count(kind)):
        t = trailer_block(s) * BLOCK
        mem[t:t + 16] = trailer_bytes(KEY_DEFAULT, TRANSPORT_ACCESS, 0x69, KEY_DEFAULT)
    return bytes(mem)


def apply_writes(memory: bytes, writes: list[BlockWrite]) -> bytes:
    mem = bytearray(memory)
    for w in writes:
        mem[w.block * BLOCK:(w.block + 1) * BLOCK] = w.data
    return bytes(mem)


def format_plan(kind_or_memory: str | bytes, key_b: bytes = KEY_DEFAULT) -> list[BlockWrite]:
    """Writes that turn a blank card into an empty NFC Forum NDEF card (MAD + NFC Forum keys).

    Within each sector the data blocks come before the trailer, since writing the trailer changes the keys."""
    kind = kind_or_memory if isinstance(kind_or_memory, str) else kind_for_size(len(kind_or_memory))
    mad1, mad2 = _mad_bytes(kind)
    gpb = 0xC2 if mad2 else 0xC1
    writes = [BlockWrite(1, mad1[:16]), BlockWrite(2, mad1[16:32]),
              BlockWrite(3, trailer_bytes(KEY_MAD, MAD_ACCESS, gpb, key_b))]
    first_ndef = True
    for s in range(1, sector_count(kind)):
        if s == 16 and mad2:
            writes += [BlockWrite(64, mad2[:16]), BlockWrite(65, mad2[16:32]), BlockWrite(66, mad2[32:48]),
                       BlockWrite(67, trailer_bytes(KEY_MAD, MAD_ACCESS, gpb, key_b))]
            continue
        for b in data_blocks(s):
            data = bytes(BLOCK)
            if first_ndef:
                data = bytes([tlvmod.NDEF, 0x00, tlvmod.TERMINATOR]) + bytes(13)
                first_ndef = False
            writes.append(BlockWrite(b, data))
        writes.append(BlockWrite(trailer_block(s), trailer_bytes(KEY_NDEF, NDEF_ACCESS, 0x40, key_b)))
    return writes


def plan_write(memory: bytes, message: bytes, format_blank: bool = True) -> list[BlockWrite]:
    """Block writes that put ``message`` on the card in torn-write-safe order.

    A card without a MAD is formatted first when ``format_blank`` (the format writes come first)."""
    card = ClassicMemory(memory)
    writes: list[BlockWrite] = []
    if not card.is_ndef:
        if not format_blank:
            raise NotFormattedError("the card has no NDEF MAD; format it first")
        if card.mad_aids is not None:
            raise NotFormattedError("the card's MAD lists other applications and no NDEF sector; refusing to format it")
        used = [s for s in range(card.sectors) if any(any(card.block(b)) for b in data_blocks(s) if b != 0)]
        if used:
            raise NotFormattedError(f"the card holds data (sector {used[0]}) but no NDEF MAD; refusing to format it")
        writes = format_plan(card.kind, card.trailer(0).key_b)
        card = ClassicMemory(apply_writes(memory, writes))
    blocks = card.stream_blocks()
    room = len(blocks) * BLOCK
    needed = tlvmod.header_size(len(message)) + len(message)  # sized before encoding: a TLV holds at most 65534
    if needed > room:
        raise CapacityError(f"the message needs {needed} bytes but the {LABELS[card.kind]} holds {room} "
                            f"({len(message)}-byte NDEF message + {needed - len(message)}-byte TLV header)")
    body = tlvmod.ndef_tlv(message)
    stuck = [s for s in dict.fromkeys(sector_of(b) for b in blocks[:-(-len(body) // BLOCK)])
             if not card.sector_writable(s)]
    if stuck:
        raise ReadOnlyError(f"sector {stuck[0]} of the card is read-only (access bits {card.trailer(stuck[0]).access.hex().upper()})")
    if len(body) < room:
        body += bytes([tlvmod.TERMINATOR])
    header_len = tlvmod.header_size(len(message))
    zero = bytes([tlvmod.NDEF]) + (b"\x00" if header_len == 2 else b"\xff\x00\x00")
    staged = zero + body[header_len:]
    cur = b"".join(card.block(b) for b in blocks)

    def block_data(content: bytes, i: int) -> bytes:
        piece = content[i * BLOCK:(i + 1) * BLOCK]
        old = cur[i * BLOCK:(i + 1) * BLOCK]
        return piece + old[len(piece):]

    head = block_data(staged, 0)
    writes.append(BlockWrite(blocks[0], head))
    for i in range(1, -(-len(body) // BLOCK)):
        new = block_data(body, i)
        if new != cur[i * BLOCK:(i + 1) * BLOCK]:
            writes.append(BlockWrite(blocks[i], new))
    final_head = block_data(body, 0)
    if final_head != head:
        writes.append(BlockWrite(blocks[0], final_head))
    return writes
