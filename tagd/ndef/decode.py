"""A tag's memory → what tagd knows about it, and its Token.

This is the one place where readers, dump files and emulators turn bytes into a token. It never
raises for bad tag content: a malformed TLV or record gives text "" and a line in ``errors``, so a
bad tag can never take a reader or the daemon down.

Token ``data`` is defined here and nowhere else, so that a dump decoded by ``tagd decode``, the same
dump replayed, and a tap of it through any reader give the same string:

- an NDEF tag: the hex of the NDEF message;
- an amiibo (Zaparoo Core's test: bytes 9–15 are ``48 0F E0 F1 10 FF EE``): token type ``Amiibo`` and
  the 8-byte character ID of pages 21–22, as Core reports it, so a Core user's amiibo mappings work;
- another Type 2 tag: pages 0 to the last user page as the tag answers READ (UID, BCC, the real lock
  bytes and CC included; not the config/PWD pages, which read back differently from tag to tool);
- another MIFARE Classic card: every block as a reader with key A reads it, trailer keys as zeros;
- "" when part of that could not be read (unknown bytes, keys no reader has): no stable identity.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from tagd.ndef import classic, type2
from tagd.ndef.records import NdefError, describe_with_notes, records_to_text
from tagd.ndef.tlv import TlvError, needed_length
from tagd.token import TYPE_AMIIBO, TYPE_MIFARE, TYPE_NTAG, Token

if TYPE_CHECKING:
    from tagd.ndef.tagdump import TagDump

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
    errors: list[str] = field(default_factory=list)  # what kept text/data from being read
    notes: list[str] = field(default_factory=list)  # what was odd but read anyway (a repaired record, a dump's contradiction)

    def to_token(self, reader_id: str | None = None, source: str = "") -> Token:
        return Token(type=self.token_type, uid=self.uid, text=self.text, data=self.data,
                     readerId=reader_id, source=source)

    def summary(self) -> dict[str, Any]:
        return {"kind": self.kind, "capacity": self.capacity, "read_only": self.read_only, "ndef": self.is_ndef,
                "records": self.records, "errors": self.errors, "notes": self.notes}


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
        out.records, notes = describe_with_notes(message)
        out.text = records_to_text(out.records)
        out.notes.extend(notes)
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
        return DecodedTag(kind=kind, uid=uid.hex(), token_type=TYPE_NTAG, errors=[str(exc)])
    out = DecodedTag(kind=tag.kind if tag.kind != "type2" else kind, uid=(uid or tag.uid).hex(), token_type=TYPE_NTAG,
                     capacity=tag.capacity, read_only=tag.read_only, is_ndef=tag.is_ndef)
    if any(a in unknown for a in range(12, 16)):
        out.errors.append("page 3 (capability container) unknown")
        return out
    if not tag.is_ndef:
        if type2.is_amiibo(memory):
            out.token_type, span = TYPE_AMIIBO, type2.AMIIBO_ID
        else:
            span = slice(0, tag.area_end)
        missing = [a for a in range(span.start, span.stop) if a in unknown or a >= len(memory)]
        if missing:
            out.errors.append(f"{len(missing)} bytes unknown from page {missing[0] // type2.PAGE}: no data")
        else:
            out.data = memory[span].hex()
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
        return DecodedTag(kind="classic", uid=uid.hex(), token_type=TYPE_MIFARE, errors=[str(exc)])
    out = DecodedTag(kind=card.kind, uid=(uid or card.uid).hex(), token_type=TYPE_MIFARE, is_ndef=card.is_ndef,
                     read_only=card.read_only)
    hidden = card.unknown_sectors
    if hidden:
        no_mad = " (no MAD)" if 0 in hidden else ""
        out.errors.append(f"{'sector' if len(hidden) == 1 else 'sectors'} {_ranges(hidden)}: keys unknown{no_mad}")
    if not card.is_ndef:
        out.data = "" if unknown else classic.without_keys(memory).hex()  # a partial read is no stable identity
        return out
    out.capacity = card.capacity
    blocked = next((s for s in card.ndef_sectors if s in hidden), None)
    cut_short = f"the NDEF message runs into sector {blocked}, whose keys are unknown" if blocked is not None else ""
    _fill_from_message(out, lambda: card.ndef_message, cut_short)
    return out


def _ranges(numbers: list[int]) -> str:
    """``[0, 1, 4, 5, 6]`` → ``"0, 1, 4–6"`` (runs of three or more as a range)."""
    runs: list[list[int]] = []
    for n in numbers:
        if runs and n == runs[-1][-1] + 1:
            runs[-1].append(n)
        else:
            runs.append([n])
    parts = [f"{r[0]}–{r[-1]}" if len(r) >= 3 else ", ".join(map(str, r)) for r in runs]
    return ", ".join(parts)


def decode_dump(dump: "TagDump", keys: list[bytes] | tuple[bytes, ...] = ()) -> DecodedTag:
    """Decode a dump file's tag (tagd.ndef.tagdump.TagDump) as a reader with these extra MIFARE ``keys``
    would read it: a Classic sector no reader key opens is unknown here too, so data and text match a tap.
    The dump's own notes (contradictions the loader resolved) come first in ``notes``."""
    unknown = dump.unknown
    if dump.is_felica:
        from tagd.ndef.felica import decode_felica  # tagd.ndef.felica builds on this module: imported here

        out = decode_felica(dump.uid, dump.memory)
    else:
        if dump.is_classic:
            unknown = classic.unreadable(dump.memory, unknown, keys)
        out = decode_tag(dump.kind, dump.uid, dump.memory, dump.version, unknown)
    out.notes[:0] = dump.notes
    return out
