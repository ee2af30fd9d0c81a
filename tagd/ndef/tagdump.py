"""The dump model every dump file format reads into and writes from: :class:`TagDump`, :class:`DumpError`
and the builders that fill in what a file leaves out (kind, UID, ATQA/SAK).

It lives apart from the format modules (``flipper_nfc``, ``proxmark``, ``raw_image``) and from
``dumps`` (detection and the format table), so that each format imports the model and ``dumps``
imports the formats — one direction, no circle.

``TagDump.atqa`` is the 16-bit value (NTAG: 0x0044); each format pins its own byte order.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tagd.ndef import classic, type2

TYPE2_ATQA_SAK = (0x0044, 0x00)


class DumpError(ValueError):
    """A dump file that cannot be read: ``PATH: WHERE: REASON``."""

    def __init__(self, path: str, where: str, reason: str) -> None:
        super().__init__(f"{path}: {where}: {reason}")
        self.path, self.where, self.reason = path, where, reason


@dataclass
class TagDump:
    """A whole tag: kind, UID, ATQA/SAK, every page (Type 2) or block (Classic, keys in the trailers), and
    the byte offsets that were unknown (Flipper's ``??``)."""

    kind: str
    uid: bytes
    atqa: int
    sak: int
    memory: bytes
    version: bytes | None = None
    signature: bytes | None = None
    unknown: frozenset[int] = field(default_factory=frozenset)

    @property
    def is_classic(self) -> bool:
        return self.kind in classic.SIZES

    @property
    def is_type2(self) -> bool:
        return not self.is_classic


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


def type2_dump(memory: bytes, version: bytes | None = None, signature: bytes | None = None, *,
               named: str | None = None, unknown: frozenset[int] = frozenset(),
               atqa: int | None = None, sak: int | None = None, uid: bytes | None = None) -> TagDump:
    """A Type 2 dump; UID from pages 0–1 and the usual ATQA/SAK unless the file says otherwise."""
    version = version if version and any(version) else None  # tools write zeros for "not read"
    signature = signature if signature and any(signature) else None
    return TagDump(kind=type2_kind(memory, version, named), uid=uid or memory[0:3] + memory[4:8],
                   atqa=TYPE2_ATQA_SAK[0] if atqa is None else atqa, sak=TYPE2_ATQA_SAK[1] if sak is None else sak,
                   memory=memory, version=version, signature=signature, unknown=unknown)


def classic_dump(memory: bytes, unknown: frozenset[int] = frozenset(), *, atqa: int | None = None,
                 sak: int | None = None, uid: bytes | None = None) -> TagDump:
    """A Classic dump; UID from block 0 (4 bytes) unless the file names a 7-byte one."""
    kind = classic.kind_for_size(len(memory))
    default_atqa, default_sak = classic.ATQA_SAK[kind]
    return TagDump(kind=kind, uid=uid or memory[0:4], atqa=default_atqa if atqa is None else atqa,
                   sak=default_sak if sak is None else sak, memory=memory, unknown=unknown)
