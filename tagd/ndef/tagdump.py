"""The dump model every dump file format reads into and writes from: :class:`TagDump`, :class:`DumpError`
and the builders that fill in what a file leaves out (kind, UID, ATQA/SAK).

It lives apart from the format modules (``flipper_nfc``, ``proxmark``, ``raw_image``) and from
``dumps`` (detection and the format table), so that each format imports the model and ``dumps``
imports the formats — one direction, no circle.

``TagDump.atqa`` is the 16-bit value (NTAG: 0x0044); each format pins its own byte order.

Dumps contradict themselves (a UID line that is not the UID in pages 0–1, a SAK that makes a reader
take a Classic card for a Type 2 tag): the builders resolve each contradiction the way the tag itself
would answer and say so in ``TagDump.notes`` — never silently, and never by refusing a usable dump.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tagd.ndef import classic, type2

TYPE2_ATQA_SAK = (0x0044, 0x00)


class DumpError(ValueError):
    """A dump file that cannot be read: ``PATH: WHERE: REASON``."""

    def __init__(self, path: str, where: str, reason: str) -> None:
        super().__init__(f"{path}: {where}: {reason}")
        self.path, self.where, self.reason = path, where, reason


def hex_field(value: Any, name: str, where: str, count: int | None = None) -> bytes:
    """A JSON dump's hex string as bytes (``count`` of them when given); DumpError naming ``where`` otherwise."""
    if not isinstance(value, str):
        raise DumpError(name, where, f"expected a hex string, got {type(value).__name__}")
    try:
        raw = bytes.fromhex(value)
    except ValueError:
        raise DumpError(name, where, f"{value[:40]!r} is not hex") from None
    if count is not None and len(raw) != count:
        raise DumpError(name, where, f"has {len(raw)} bytes, expected {count}")
    return raw


def flipper_bytes(b: bytes, unknown: frozenset[int] = frozenset(), base: int = 0) -> str:
    """Bytes as a Flipper file writes them: ``04 A1 …``, ``??`` for an unknown one (offset ``base`` + i)."""
    return " ".join("??" if base + i in unknown else f"{x:02X}" for i, x in enumerate(b))


@dataclass
class TagDump:
    """A whole tag: kind, UID, ATQA/SAK, every page (Type 2) or block (Classic, keys in the trailers), and
    the byte offsets that were unknown (Flipper's ``??``). A FeliCa card (kind ``felica``, tagd.ndef.felica)
    keeps its IDm as ``uid``, its PMm as ``version``, its system codes and the blocks readable without keys."""

    kind: str
    uid: bytes
    atqa: int
    sak: int
    memory: bytes
    version: bytes | None = None
    signature: bytes | None = None
    unknown: frozenset[int] = field(default_factory=frozenset)
    notes: tuple[str, ...] = field(default=(), compare=False)  # contradictions the loader resolved
    systems: tuple[int, ...] = ()  # FeliCa: the card's system codes, the one a Polling for FFFF answers first

    @property
    def is_felica(self) -> bool:
        return self.kind == "felica"

    @property
    def is_classic(self) -> bool:
        return self.kind in classic.SIZES

    @property
    def is_type2(self) -> bool:
        return not self.is_classic and not self.is_felica


def type2_kind(memory: bytes, version: bytes | None = None, named: str | None = None) -> str:
    """GET_VERSION when the dump has it, else the tool's own type name, else the image size, else the CC."""
    kind = type2.kind_from_version(version) or named
    if kind:
        return kind
    for k in type2.TYPE2_KINDS.values():
        if k.pages * 4 == len(memory):
            return k.name
    if len(memory) >= 16 and memory[12] == 0xE1:
        for k in type2.TYPE2_KINDS.values():
            if k.cc_size == memory[14]:
                return k.name
    return "type2"


def _atqa_sak(kind: str, atqa: int | None, sak: int | None, uid_len: int, notes: list[str]) -> tuple[int, int]:
    """The file's ATQA/SAK unless they contradict the kind (a reader would take the tag for something else,
    or the ATQA has no anticollision bit); then the kind's usual values, with a note."""
    if kind in classic.SIZES:
        default_atqa, default_sak = classic.ATQA_SAK[kind]
        default_atqa |= 0x0040 if uid_len == 7 else 0  # ATQA bits 7–6: UID size (double)
        sak_ok = sak is None or classic.kind_from_sak(sak) == kind
    else:
        default_atqa, default_sak = TYPE2_ATQA_SAK
        sak_ok = sak is None or classic.kind_from_sak(sak) is None
    if not sak_ok:
        notes.append(f"SAK {sak:02X} says {classic.kind_from_sak(sak) or 'Type 2'}, the memory is {kind}: "
                     f"using SAK {default_sak:02X}")
        sak = default_sak
    if atqa is not None and not atqa & 0x1F:
        notes.append(f"ATQA {atqa:04X} has no anticollision bit: using {default_atqa:04X}")
        atqa = default_atqa
    return default_atqa if atqa is None else atqa, default_sak if sak is None else sak


def type2_dump(memory: bytes, version: bytes | None = None, signature: bytes | None = None, *,
               named: str | None = None, unknown: frozenset[int] = frozenset(),
               atqa: int | None = None, sak: int | None = None, uid: bytes | None = None) -> TagDump:
    """A Type 2 dump; UID from pages 0–1 and the usual ATQA/SAK unless the file says otherwise.

    A tag's UID *is* pages 0–1 (anticollision answers from them), so when the file's UID line disagrees
    and the pages' check bytes hold, the pages win (a popular amiibo converter writes BCC0 into the UID
    line); when the check bytes do not hold either, the file's UID stays. Both cases are noted."""
    version = version if version and any(version) else None  # tools write zeros for "not read"
    signature = signature if signature and any(signature) else None
    notes: list[str] = []
    pages_uid = memory[0:3] + memory[4:8]
    problem = type2.uid_check_problem(memory) if not any(a in unknown for a in range(9)) else "pages 0–2 unknown"
    if uid is not None and uid != pages_uid:
        if problem is None:
            notes.append(f"UID line {uid.hex()} disagrees with pages 0–1 ({pages_uid.hex()}): using pages 0–1, "
                         f"the UID the tag answers with")
            uid = pages_uid
        else:
            notes.append(f"UID line {uid.hex()} disagrees with pages 0–1 ({pages_uid.hex()}), whose {problem}: "
                         f"using the UID line")
    elif problem is not None:
        notes.append(f"pages 0–2 are not a valid UID: {problem}")
    kind = type2_kind(memory, version, named)
    atqa, sak = _atqa_sak(kind, atqa, sak, 7, notes)
    return TagDump(kind=kind, uid=uid or pages_uid, atqa=atqa, sak=sak, memory=memory, version=version,
                   signature=signature, unknown=unknown, notes=tuple(notes))


def classic_dump(memory: bytes, unknown: frozenset[int] = frozenset(), *, atqa: int | None = None,
                 sak: int | None = None, uid: bytes | None = None) -> TagDump:
    """A Classic dump; UID from block 0 (4 bytes) unless the file names a 7-byte one."""
    kind = classic.kind_for_size(len(memory))
    notes: list[str] = []
    if uid is not None and len(uid) == 4 and uid != memory[0:4] and not any(a in unknown for a in range(4)):
        notes.append(f"UID line {uid.hex()} disagrees with block 0 ({memory[0:4].hex()}): using the UID line")
    uid = uid or memory[0:4]
    atqa, sak = _atqa_sak(kind, atqa, sak, len(uid), notes)
    return TagDump(kind=kind, uid=uid, atqa=atqa, sak=sak, memory=memory, unknown=unknown, notes=tuple(notes))
