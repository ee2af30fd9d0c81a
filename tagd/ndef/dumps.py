"""Tag dump files: Flipper ``.nfc`` (versions 2–4), Proxmark3 JSON (``mfu``, ``mfcard``), raw ``.bin``
images and libnfc ``.mfd``.

Everything becomes a :class:`TagDump` — kind, UID, ATQA/SAK, the whole memory (Type 2: every page;
Classic: every block, keys in the trailers) and which bytes were unknown (Flipper's ``??``). The
format is detected from the content, not the file name, because people rename dumps freely.
A corrupt or truncated file raises :class:`DumpError` naming the file, the line (or offset) and the
reason — never anything else, whatever the bytes: dumps come from strangers' SD cards and gists.

Byte order of ATQA differs by tool and version and is pinned here, not guessed: Flipper version 2
stores it LSB first (``44 00``), versions 3 and 4 MSB first (``00 44``); Proxmark3 JSON stores the
bytes as received, LSB first (``4400``). ``TagDump.atqa`` is the 16-bit value (NTAG: 0x0044).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any

from tagd.ndef import classic, type2

FORMATS = ("nfc", "json", "bin", "mfd")
MAX_FILE = 1 << 20  # far above any tag (a 4K card is 4096 bytes; its Flipper file ~12 KiB)
TYPE2_ATQA_SAK = (0x0044, 0x00)
PROXMARK_CLASSIC_TYPES = ("mfcard", "mfc", "mfc v2", "mfc v3")


class DumpError(ValueError):
    """A dump file that cannot be read: ``PATH: WHERE: REASON``."""

    def __init__(self, path: str, where: str, reason: str) -> None:
        super().__init__(f"{path}: {where}: {reason}")
        self.path, self.where, self.reason = path, where, reason


@dataclass
class TagDump:
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


# --- detection and loading ------------------------------------------------------

_TEXT_BYTES = bytes(range(32, 127)) + b"\t\r\n"


def _mostly_text(data: bytes) -> bool:
    """At least 95% printable ASCII: dump files are ASCII, raw tag images are mostly zeros and high bytes.
    (Not 100%: a text dump with one bad byte should get a precise error, not be taken for an image.)"""
    return bool(data) and len(data.translate(None, _TEXT_BYTES)) <= len(data) // 20


def detect_format(data: bytes) -> str:
    """``json`` (an object), ``nfc`` (a Flipper header), ``mfd`` (a Classic-sized image), ``bin`` (other raw
    images) or ``text`` (readable text that is none of these: not a dump). Text-ness comes first, so a raw
    image whose first byte happens to be ``{`` is still an image."""
    text = data[3:] if data.startswith(b"\xef\xbb\xbf") else data
    if not _mostly_text(text[:65536]):
        return "mfd" if len(data) in classic.SIZES.values() else "bin"
    if text.lstrip().startswith(b"{"):
        return "json"
    for line in text[:4096].splitlines():
        line = line.strip()
        if line and not line.startswith(b"#"):
            if line.lower().startswith(b"filetype:"):
                return "nfc"
            break
    return "text"


def loads(data: bytes, name: str = "<bytes>") -> TagDump:
    """The dump held in ``data``; ``name`` is what errors call it."""
    data = bytes(data)
    fmt = detect_format(data)
    try:
        if fmt == "json":
            return _load_json(data, name)
        if fmt == "nfc":
            from tagd.ndef import flipper_nfc  # imports this module: the shared types live here

            return flipper_nfc.load(data, name)
        if fmt == "text":
            raise DumpError(name, "offset 0x0", "not a tag dump: text that is neither a Flipper .nfc file "
                                                "(no 'Filetype:' header) nor Proxmark3 JSON")
        return _load_raw(data, name)
    except DumpError:
        raise
    except Exception as exc:  # a parser gap must still name the file and never take a caller down
        raise DumpError(name, "content", f"unreadable dump ({exc.__class__.__name__}: {exc})") from None


def load(path: str | os.PathLike[str]) -> TagDump:
    name = os.fspath(path)
    try:
        with open(name, "rb") as f:
            data = f.read(MAX_FILE + 1)
    except OSError as exc:
        raise DumpError(name, "file", exc.strerror or str(exc)) from None
    if len(data) > MAX_FILE:
        raise DumpError(name, f"offset 0x{MAX_FILE:x}", f"larger than {MAX_FILE} bytes: not a tag dump")
    return loads(data, name)


# --- raw images -----------------------------------------------------------------

def _load_raw(data: bytes, name: str) -> TagDump:
    if len(data) in classic.SIZES.values():
        return classic_dump(data)
    if len(data) < 16 or len(data) % 4:
        raise DumpError(name, f"offset 0x{len(data):x}",
                        f"{len(data)} bytes is not a tag image (Type 2: whole 4-byte pages, at least 16 bytes; "
                        f"Classic: 320, 1024 or 4096 bytes)")
    if len(data) > 4096:
        raise DumpError(name, f"offset 0x{len(data):x}", f"{len(data)} bytes is too large for a Type 2 image")
    return type2_dump(data)


# --- Proxmark3 JSON -------------------------------------------------------------

def _json_hex(value: Any, name: str, where: str, count: int | None = None) -> bytes:
    if not isinstance(value, str):
        raise DumpError(name, where, f"expected a hex string, got {type(value).__name__}")
    try:
        raw = bytes.fromhex(value)
    except ValueError:
        raise DumpError(name, where, f"{value[:40]!r} is not hex") from None
    if count is not None and len(raw) != count:
        raise DumpError(name, where, f"has {len(raw)} bytes, expected {count}")
    return raw


def _load_json(data: bytes, name: str) -> TagDump:
    try:
        doc = json.loads(data.decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise DumpError(name, f"offset 0x{exc.start:x}", "not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise DumpError(name, f"line {exc.lineno}", f"invalid JSON ({exc.msg}): truncated file?") from None
    if not isinstance(doc, dict):
        raise DumpError(name, "top level", "expected a JSON object")
    ftype, card, blocks = doc.get("FileType"), doc.get("Card", {}), doc.get("blocks")
    if not isinstance(card, dict) or not isinstance(blocks, dict):
        raise DumpError(name, "top level", "missing 'Card' object or 'blocks' map (not a Proxmark3 dump?)")
    if ftype == "mfu":
        unit = 4
    elif ftype in PROXMARK_CLASSIC_TYPES:
        unit = 16
    else:
        raise DumpError(name, "FileType", f"{str(ftype)[:20]!r} is not supported (mfu or mfcard)")
    atqa = int.from_bytes(_json_hex(card["ATQA"], name, "Card.ATQA", 2), "little") if "ATQA" in card else None
    sak = _json_hex(card["SAK"], name, "Card.SAK", 1)[0] if "SAK" in card else None
    uid = _json_hex(card["UID"], name, "Card.UID") if card.get("UID") else None
    if uid is not None and len(uid) not in (4, 7, 10):
        raise DumpError(name, "Card.UID", f"has {len(uid)} bytes, expected 4, 7 or 10")
    table: dict[int, Any] = {}
    for key, value in blocks.items():
        if not (key.isdigit() and len(key) < 6):
            raise DumpError(name, "blocks", f"block number {key[:12]!r} is not a number")
        if int(key) in table:
            raise DumpError(name, f"blocks.{key}", f"block {int(key)} appears twice")
        table[int(key)] = value
    if not table:
        raise DumpError(name, "blocks", "no blocks: truncated dump?")
    missing = next((i for i in range(len(table)) if i not in table), None)
    if missing is not None:
        raise DumpError(name, f"blocks.{missing}", f"block {missing} missing (blocks up to {max(table)}): truncated dump?")
    numbers = range(len(table))
    memory = b"".join(_json_hex(table[i], name, f"blocks.{i}", unit) for i in numbers)
    if unit == 16:
        if len(memory) not in classic.SIZES.values():
            raise DumpError(name, "blocks", f"{len(numbers)} blocks is not a Classic Mini/1K/4K card (20, 64 or 256)")
        return classic_dump(_with_sector_keys(memory, doc.get("SectorKeys"), name), atqa=atqa, sak=sak, uid=uid)
    if len(numbers) < 4:
        raise DumpError(name, "blocks", f"{len(numbers)} pages is too few for a Type 2 tag")
    version = _json_hex(card["Version"], name, "Card.Version", 8) if card.get("Version") else None
    signature = _json_hex(card["Signature"], name, "Card.Signature", 32) if card.get("Signature") else None
    return type2_dump(memory, version, signature, atqa=atqa, sak=sak, uid=uid)


def _with_sector_keys(memory: bytes, keys: Any, name: str) -> bytes:
    """Fill trailers' Key A/B from SectorKeys where the blocks hold zeros (Key A reads back as zeros)."""
    if not isinstance(keys, dict):
        return memory
    mem = bytearray(memory)
    kind = classic.kind_for_size(len(memory))
    for s in range(classic.sector_count(kind)):
        entry = keys.get(str(s))
        if not isinstance(entry, dict):
            continue
        t = classic.trailer_block(s) * 16
        for field_name, offset in (("KeyA", 0), ("KeyB", 10)):
            if field_name in entry and not any(mem[t + offset:t + offset + 6]):
                mem[t + offset:t + offset + 6] = _json_hex(entry[field_name], name, f"SectorKeys.{s}.{field_name}", 6)
    return bytes(mem)


def _dump_json(d: TagDump) -> bytes:
    unit = 16 if d.is_classic else 4
    card: dict[str, str] = {"UID": d.uid.hex().upper(), "ATQA": d.atqa.to_bytes(2, "little").hex().upper(),
                            "SAK": f"{d.sak:02X}"}
    if d.is_type2:
        card.update(Version=(d.version or bytes(8)).hex().upper(), TBO_0="0000", TBO_1="00",
                    Signature=(d.signature or bytes(32)).hex().upper())
        for i in range(3):
            card.update({f"Counter{i}": "000000", f"Tearing{i}": "00"})
    doc: dict[str, Any] = {"Created": "tagd", "FileType": "mfcard" if d.is_classic else "mfu", "Card": card,
                           "blocks": {str(i): d.memory[i * unit:(i + 1) * unit].hex().upper()
                                      for i in range(len(d.memory) // unit)}}
    if d.is_classic:
        doc["SectorKeys"] = {}
        for s in range(classic.sector_count(d.kind)):
            t = d.memory[classic.trailer_block(s) * 16:][:16]
            doc["SectorKeys"][str(s)] = {"KeyA": t[0:6].hex().upper(), "KeyB": t[10:16].hex().upper(),
                                         "AccessConditions": t[6:10].hex().upper()}
    return (json.dumps(doc, indent=2) + "\n").encode()


# --- saving ---------------------------------------------------------------------

def dumps(dump: TagDump, fmt: str) -> bytes:
    """The file content of ``dump`` in ``fmt`` (nfc, json, bin, mfd). Only ``nfc`` keeps unknown bytes."""
    if fmt == "nfc":
        from tagd.ndef import flipper_nfc

        return flipper_nfc.dump(dump)
    if fmt == "json":
        return _dump_json(dump)
    if fmt in ("bin", "mfd"):
        if fmt == "mfd" and not dump.is_classic:
            raise ValueError("the .mfd format holds MIFARE Classic cards only; use .bin for Type 2 tags")
        return bytes(dump.memory)
    raise ValueError(f"unknown dump format {fmt!r} (one of {', '.join(FORMATS)})")


def format_for_path(path: str | os.PathLike[str]) -> str:
    """The format a file name asks for: its extension when it is one of FORMATS, else Flipper ``nfc``."""
    ext = os.path.splitext(os.fspath(path))[1].lower().lstrip(".")
    return ext if ext in FORMATS else "nfc"


def save(dump: TagDump, path: str | os.PathLike[str], fmt: str | None = None) -> None:
    """Write atomically, so a reader of the file (a replay timeline, the emulator) never sees half of it."""
    name = os.fspath(path)
    data = dumps(dump, fmt or format_for_path(name))
    tmp = f"{name}.tmp{os.getpid()}"
    try:
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, name)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
