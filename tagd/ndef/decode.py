"""A tag's memory → what tagd knows about it, and its Token.

This is the one place where readers, dump files and emulators turn bytes into a token. It never
raises for bad tag content: a malformed TLV or record gives text "" and a line in ``errors``, so a
bad tag can never take a reader or the daemon down.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tagd.ndef import classic, type2
from tagd.ndef.records import NdefError, describe, message_to_text
from tagd.ndef.tlv import TlvError
from tagd.token import TYPE_AMIIBO, TYPE_MIFARE, TYPE_NTAG, Token

if TYPE_CHECKING:
    from tagd.ndef.dumps import TagDump

CLASSIC_KINDS = frozenset(classic.SIZES)


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


def _fill_from_message(out: DecodedTag, read_message: Any) -> None:
    try:
        message = read_message()
    except TlvError as exc:
        out.errors.append(f"bad TLV: {exc}")
        return
    if message is None:
        if out.is_ndef:
            out.errors.append("no NDEF message")
        return
    out.data = message.hex()
    try:
        out.records = describe(message)
        out.text = message_to_text(message)
    except NdefError as exc:
        out.errors.append(str(exc))


def decode_tag(kind: str, uid: bytes, memory: bytes, version: bytes | None = None,
               unknown: frozenset[int] = frozenset()) -> DecodedTag:
    if kind in CLASSIC_KINDS or (kind == "classic" and len(memory) in classic.SIZES.values()):
        return _decode_classic(uid, memory, unknown)
    return _decode_type2(kind, uid, memory, version)


def _decode_type2(kind: str, uid: bytes, memory: bytes, version: bytes | None) -> DecodedTag:
    try:
        tag = type2.Type2Memory(memory, version)
    except type2.Type2Error as exc:
        return DecodedTag(kind=kind, uid=uid.hex(), token_type=TYPE_NTAG, data=memory.hex(), errors=[str(exc)])
    real_kind = tag.kind if tag.kind != "type2" else kind
    out = DecodedTag(kind=real_kind, uid=(uid or tag.uid).hex(), token_type=TYPE_NTAG, capacity=tag.capacity,
                     read_only=tag.read_only, is_ndef=tag.is_ndef)
    if not tag.is_ndef:
        out.data = memory.hex()
        if len(memory) == 540:
            out.token_type = TYPE_AMIIBO
        return out
    _fill_from_message(out, lambda: tag.ndef_message)
    return out


def _decode_classic(uid: bytes, memory: bytes, unknown: frozenset[int]) -> DecodedTag:
    try:
        card = classic.ClassicMemory(memory, unknown)
    except classic.ClassicError as exc:
        return DecodedTag(kind="classic", uid=uid.hex(), token_type=TYPE_MIFARE, data=memory.hex(), errors=[str(exc)])
    out = DecodedTag(kind=card.kind, uid=(uid or card.uid).hex(), token_type=TYPE_MIFARE, is_ndef=card.is_ndef)
    if not card.sector_known(0):
        out.errors.append("sector 0: keys unknown (no MAD)")
    if not card.is_ndef:
        out.data = "" if unknown else memory.hex()
        return out
    out.capacity = card.capacity
    _fill_from_message(out, lambda: card.ndef_message)
    out.errors.extend(card.errors)
    return out


def decode_dump(dump: "TagDump") -> DecodedTag:
    return decode_tag(dump.kind, dump.uid, dump.memory, dump.version, dump.unknown)
