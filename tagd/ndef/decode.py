"""A tag's memory → what tagd knows about it, and its Token.

This is the one place where readers, dump files and emulators turn bytes into a token. It never
raises for bad tag content: a malformed TLV or record gives text "" and a line in ``errors``, so a
bad tag can never take a reader or the daemon down.

Token ``data`` (DESIGN.md): the hex of the NDEF message for NDEF tags, of the whole memory for the
others — so amiibo-style toys, which carry no NDEF, can still be mapped by their content.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from tagd.ndef import classic, type2
from tagd.ndef.records import NdefError, describe, message_to_text
from tagd.ndef.tlv import TlvError, needed_length
from tagd.token import TYPE_AMIIBO, TYPE_MIFARE, TYPE_NTAG, Token

if TYPE_CHECKING:
    from tagd.ndef.tagdump import TagDump

CLASSIC_KINDS = frozenset(classic.SIZES)
AMIIBO_SIZE = 540  # 135 NTAG215 pages


@dataclass
class DecodedTag:
    kind: str
    uid: str  # lower-case hex, no separators
    token_type: str
    text: str = ""
    data: str = ""
    capacity: int = 0
    read_only: bool = False
    is_ndef: bool = False
    records: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def to_token(self, reader_id: str | None = None, source: str = "") -> Token:
        return Token(type=self.token_type, uid=self.uid, text=self.text, data=self.data,
                     readerId=reader_id, source=source)

    def summary(self) -> dict[str, Any]:
        return {"kind": self.kind, "capacity": self.capacity, "read_only": self.read_only, "ndef": self.is_ndef,
                "records": self.records, "errors": self.errors}


def _fill_from_message(out: DecodedTag, read_message: Callable[[], bytes | None], cut_short: str = "") -> None:
    """Text, data and records from the NDEF message; problems become ``errors``, never exceptions."""
    try:
        message = read_message()
    except TlvError as exc:
        out.errors.append(cut_short or f"bad TLV: {exc}")
        return
    if message is None:
        out.errors.append(cut_short or "no NDEF message")
        return
    out.data = message.hex()
    try:
        out.records = describe(message)
        out.text = message_to_text(message)
    except NdefError as exc:
        out.errors.append(str(exc))


def decode_tag(kind: str, uid: bytes, memory: bytes, version: bytes | None = None,
               unknown: frozenset[int] = frozenset()) -> DecodedTag:
    """Decode a memory image. ``kind`` is a hint (a dump's device type); GET_VERSION ``version`` beats it.
    ``unknown`` holds byte offsets that could not be read."""
    if kind in CLASSIC_KINDS or (kind == "classic" and len(memory) in classic.SIZES.values()):
        return _decode_classic(uid, memory, unknown)
    return _decode_type2(kind, uid, memory, version, unknown)


def _decode_type2(kind: str, uid: bytes, memory: bytes, version: bytes | None, unknown: frozenset[int]) -> DecodedTag:
    try:
        tag = type2.Type2Memory(memory, version, kind)
    except type2.Type2Error as exc:
        return DecodedTag(kind=kind, uid=uid.hex(), token_type=TYPE_NTAG, data=memory.hex(), errors=[str(exc)])
    out = DecodedTag(kind=tag.kind if tag.kind != "type2" else kind, uid=(uid or tag.uid).hex(), token_type=TYPE_NTAG,
                     capacity=tag.capacity, read_only=tag.read_only, is_ndef=tag.is_ndef)
    if any(a in unknown for a in range(12, 16)):
        out.errors.append("page 3 (capability container) unknown")
        return out
    if not tag.is_ndef:
        out.data = memory.hex()
        if len(memory) == AMIIBO_SIZE:
            out.token_type = TYPE_AMIIBO
        if unknown:
            out.errors.append(f"{len(unknown)} bytes unknown (read as 00)")
        return out
    addrs = tag.stream_addresses()
    need = needed_length(tag.stream()) or len(addrs)
    missing = sorted({a // type2.PAGE for a in addrs[:need] if a in unknown})
    if missing:
        out.errors.append(f"page {missing[0]} unknown: the NDEF message cannot be read")
        return out
    _fill_from_message(out, lambda: tag.ndef_message)
    return out


def _decode_classic(uid: bytes, memory: bytes, unknown: frozenset[int]) -> DecodedTag:
    try:
        card = classic.ClassicMemory(memory, unknown)
    except classic.ClassicError as exc:
        return DecodedTag(kind="classic", uid=uid.hex(), token_type=TYPE_MIFARE, data=memory.hex(), errors=[str(exc)])
    out = DecodedTag(kind=card.kind, uid=(uid or card.uid).hex(), token_type=TYPE_MIFARE, is_ndef=card.is_ndef,
                     read_only=card.read_only)
    hidden = card.unknown_sectors
    if 0 in hidden:
        out.errors.append("sector 0: keys unknown (no MAD)")
    out.errors.extend(f"sector {s}: keys unknown" for s in hidden if s != 0)
    if not card.is_ndef:
        out.data = "" if hidden else memory.hex()  # a partial dump is no stable identity
        return out
    out.capacity = card.capacity
    blocked = next((s for s in card.ndef_sectors if s in hidden), None)
    cut_short = f"the NDEF message runs into sector {blocked}, whose keys are unknown" if blocked is not None else ""
    _fill_from_message(out, lambda: card.ndef_message, cut_short)
    return out


def decode_dump(dump: "TagDump") -> DecodedTag:
    """Decode a dump file's tag (tagd.ndef.tagdump.TagDump: kind, uid, memory, version, unknown)."""
    return decode_tag(dump.kind, dump.uid, dump.memory, dump.version, dump.unknown)
