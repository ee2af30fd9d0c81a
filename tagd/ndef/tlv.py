"""NFC Forum TLV blocks in a tag's data area (Type 2 and MIFARE Classic NDEF).

A data area is a run of TLVs: ``00`` NULL (no length), ``01`` Lock Control and ``02`` Memory Control
(3-byte values that declare reserved/lock bytes elsewhere in memory), ``03`` NDEF message, ``FD``
proprietary, ``FE`` terminator (no length). A length is one byte ``00``–``FE``, or ``FF`` followed by
two bytes big-endian.

Sans-I/O: bytes in, values out. Malformed input raises :class:`TlvError`, nothing else.
"""

from __future__ import annotations

from typing import Iterator, NamedTuple

NULL = 0x00
LOCK_CONTROL = 0x01
MEMORY_CONTROL = 0x02
NDEF = 0x03
PROPRIETARY = 0xFD
TERMINATOR = 0xFE

MAX_LENGTH = 0xFFFE  # the 3-byte form carries up to 65534 (FFFF is reserved)


class TlvError(ValueError):
    """A TLV that runs past the area, or a message too long for a TLV."""


class Tlv(NamedTuple):
    tag: int
    offset: int  # where the T byte sits in the area
    value: bytes

    @property
    def value_offset(self) -> int:
        return self.offset + header_size(len(self.value))


def header_size(length: int) -> int:
    """Bytes taken by T and L for a value of this length."""
    return 2 if length < 0xFF else 4


def encode_length(length: int) -> bytes:
    if length < 0:
        raise TlvError(f"negative TLV length {length}")
    if length < 0xFF:
        return bytes([length])
    if length <= MAX_LENGTH:
        return bytes([0xFF, length >> 8, length & 0xFF])
    raise TlvError(f"an NDEF message of {length} bytes does not fit a TLV (at most {MAX_LENGTH})")


def _read_length(area: bytes, pos: int) -> tuple[int, int]:
    """Length at ``pos`` → (length, position of the value)."""
    if pos >= len(area):
        raise TlvError(f"TLV at offset {pos - 1} has no length byte")
    first = area[pos]
    if first != 0xFF:
        return first, pos + 1
    if pos + 3 > len(area):
        raise TlvError(f"TLV at offset {pos - 1}: 3-byte length cut off")
    return (area[pos + 1] << 8) | area[pos + 2], pos + 3


def iter_tlvs(area: bytes) -> Iterator[Tlv]:
    """Yield TLVs one by one up to and including the terminator (NULL TLVs are padding, not yielded).

    A generator so that a caller looking for one TLV stops there and is not upset by whatever
    follows it (old message bytes after a shorter rewrite, say)."""
    pos = 0
    while pos < len(area):
        tag = area[pos]
        if tag == NULL:
            pos += 1
            continue
        if tag == TERMINATOR:
            yield Tlv(tag, pos, b"")
            return
        length, start = _read_length(area, pos + 1)
        end = start + length
        if end > len(area):
            raise TlvError(f"TLV {tag:02X} at offset {pos} declares {length} bytes but only {len(area) - start} follow")
        yield Tlv(tag, pos, bytes(area[start:end]))
        pos = end


def parse_tlvs(area: bytes) -> list[Tlv]:
    """Every TLV up to the terminator (or the end of the area). TlvError when a length runs past the area.

    Reserved and lock bytes that Lock/Memory Control TLVs declare are not part of the data stream:
    callers (Type2Memory) pass the area with those bytes already taken out."""
    return list(iter_tlvs(area))


def find_ndef(area: bytes) -> bytes | None:
    """The value of the first NDEF TLV, or None when the area has none before its terminator."""
    for tlv in iter_tlvs(area):
        if tlv.tag == NDEF:
            return tlv.value
    return None


def ndef_tlv(message: bytes) -> bytes:
    """An NDEF TLV holding ``message`` (no terminator)."""
    return bytes([NDEF]) + encode_length(len(message)) + message


def needed_length(prefix: bytes) -> int | None:
    """How many bytes of the data area hold everything up to the end of the first NDEF TLV.

    ``prefix`` is the start of the area as read so far. None means the prefix is too short to tell
    (read more); a result ≤ len(prefix) means the prefix already holds it. An area with no NDEF TLV
    before a terminator needs only what was read.
    """
    pos = 0
    while pos < len(prefix):
        tag = prefix[pos]
        if tag == NULL:
            pos += 1
            continue
        if tag == TERMINATOR:
            return pos + 1
        if pos + 1 >= len(prefix):
            return None
        if prefix[pos + 1] == 0xFF:
            if pos + 4 > len(prefix):
                return None
            length, start = (prefix[pos + 2] << 8) | prefix[pos + 3], pos + 4
        else:
            length, start = prefix[pos + 1], pos + 2
        end = start + length
        if tag == NDEF:
            return end
        if end > len(prefix):
            return None
        pos = end
    return None


class ControlTlv(NamedTuple):
    """A decoded Lock Control or Memory Control TLV: where its bytes sit, in absolute memory bytes."""

    tag: int
    address: int  # absolute byte address in tag memory
    size: int  # bytes reserved (Memory Control) or lock bytes (Lock Control: bits → bytes, rounded up)
    lock_bits: int = 0  # Lock Control: number of dynamic lock bits
    bytes_per_lock_bit: int = 0  # Lock Control: data bytes each of those bits locks


def decode_control(tlv: Tlv) -> ControlTlv | None:
    """Position of the area a Lock/Memory Control TLV declares (NFC Forum Type 2 rules), None if malformed.

    Value: ``PageAddr(4 bits)|ByteOffset(4 bits)``, size (bits for lock control, bytes for memory
    control; 0 means 256), ``BytesLockedPerLockBit(4 bits)|BytesPerPage exponent (4 bits)``.
    """
    if tlv.tag not in (LOCK_CONTROL, MEMORY_CONTROL) or len(tlv.value) != 3:
        return None
    pos, size, page_ctrl = tlv.value
    page_addr, byte_offset = pos >> 4, pos & 0x0F
    bytes_per_page = 1 << (page_ctrl & 0x0F)
    address = page_addr * bytes_per_page + byte_offset
    size = size or 256
    if tlv.tag == MEMORY_CONTROL:
        return ControlTlv(tlv.tag, address, size)
    return ControlTlv(tlv.tag, address, (size + 7) // 8, size, 1 << (page_ctrl >> 4))
