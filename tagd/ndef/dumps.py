"""Tag dump files: Flipper ``.nfc`` (versions 2–4), Proxmark3 JSON (``mfu``, ``mfcard``), raw ``.bin``
images and libnfc ``.mfd``.

Everything becomes a :class:`TagDump` — kind, UID, ATQA/SAK, the whole memory (Type 2: every page;
Classic: every block, keys in the trailers) and which bytes were unknown (Flipper's ``??``). The
format is detected from the content, not the file name. A corrupt or truncated file raises
:class:`DumpError` naming the file, the line (or offset) and the reason; never anything else.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from typing import Any

from tagd.ndef import classic, type2

FORMATS = ("nfc", "json", "bin", "mfd")
TYPE2_DEFAULT = (0x0044, 0x00)
FLIPPER_TYPE2_NAMES = {"ntag213": "NTAG213", "ntag215": "NTAG215", "ntag216": "NTAG216",
                       "ultralight": "Mifare Ultralight", "ultralight_ev1": "Mifare Ultralight 11", "type2": "NTAG/Ultralight"}
FLIPPER_CLASSIC_NAMES = {"classic1k": "1K", "classic4k": "4K", "classicmini": "MINI"}


class DumpError(ValueError):
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


def _type2_kind(memory: bytes, version: bytes | None, named: str | None = None) -> str:
    by_version = type2.kind_from_version(version)
    if by_version:
        return by_version
    if named:
        return named
    pages = len(memory) // 4
    for k in type2.TYPE2_KINDS.values():
        if k.pages == pages and k.name != "ultralight_ev1":
            return k.name
    return "type2"


def _atqa(raw: bytes) -> int:
    """ATQA as a 16-bit value, MSB first; accepts the LSB-first order some tools store (``44 00``)."""
    if raw[1] == 0 and raw[0] != 0:
        return raw[0]
    return (raw[0] << 8) | raw[1]


def _type2_dump(memory: bytes, version: bytes | None = None, signature: bytes | None = None,
                named: str | None = None, unknown: frozenset[int] = frozenset(),
                atqa: int | None = None, sak: int | None = None, uid: bytes | None = None) -> TagDump:
    version = version if version and any(version) else None  # all-zero = "not read"
    signature = signature if signature and any(signature) else None
    return TagDump(kind=_type2_kind(memory, version, named), uid=uid or (memory[0:3] + memory[4:8]),
                   atqa=TYPE2_DEFAULT[0] if atqa is None else atqa, sak=TYPE2_DEFAULT[1] if sak is None else sak,
                   memory=memory, version=version, signature=signature, unknown=unknown)


def _classic_dump(memory: bytes, unknown: frozenset[int] = frozenset(), atqa: int | None = None,
                  sak: int | None = None, uid: bytes | None = None) -> TagDump:
    kind = classic.kind_for_size(len(memory))
    d_atqa, d_sak = classic.ATQA_SAK[kind]
    return TagDump(kind=kind, uid=uid or memory[0:4], atqa=d_atqa if atqa is None else atqa,
                   sak=d_sak if sak is None else sak, memory=memory, unknown=unknown)


# --- detection ------------------------------------------------------------

def detect_format(data: bytes) -> str:
    head = data.lstrip()[:64]
    if head.startswith(b"{"):
        return "json"
    if head.lower().startswith(b"filetype:"):
        return "nfc"
    if len(data) in (1024, 4096, 320) and not head.startswith(b"#"):
        return "mfd"
    return "bin"


def loads(data: bytes, name: str = "<bytes>") -> TagDump:
    fmt = detect_format(data)
    try:
        if fmt == "json":
            return _load_json(data, name)
        if fmt == "nfc":
            return _load_flipper(data, name)
        return _load_raw(data, name)
    except DumpError:
        raise
    except Exception as exc:  # a parser bug must still name the file
        raise DumpError(name, "content", f"unreadable dump ({exc.__class__.__name__}: {exc})") from None


def load(path: str | os.PathLike[str]) -> TagDump:
    name = os.fspath(path)
    try:
        with open(name, "rb") as f:
            data = f.read(1 << 20)
    except OSError as exc:
        raise DumpError(name, "file", exc.strerror or str(exc)) from None
    return loads(data, name)


# --- raw ------------------------------------------------------------------

def _load_raw(data: bytes, name: str) -> TagDump:
    if len(data) in classic.SIZES.values():
        return _classic_dump(bytes(data))
    if len(data) < 16 or len(data) % 4:
        raise DumpError(name, f"offset 0x{len(data):x}",
                        f"{len(data)} bytes is not a tag image (Type 2: whole 4-byte pages, at least 16 bytes; "
                        f"Classic: 320, 1024 or 4096 bytes)")
    if len(data) > 1024:
        raise DumpError(name, f"offset 0x{len(data):x}", f"{len(data)} bytes is too large for a Type 2 image")
    return _type2_dump(bytes(data))


# --- Flipper --------------------------------------------------------------

_LINE = re.compile(r"^([^:]+):\s*(.*)$")


def _hex_bytes(value: str, name: str, lineno: int, what: str, count: int | None = None,
               unknown_ok: bool = False) -> tuple[bytes, list[int]]:
    parts = value.split()
    if count is not None and len(parts) != count:
        raise DumpError(name, f"line {lineno}", f"{what} has {len(parts)} bytes, expected {count}")
    out = bytearray()
    unknown: list[int] = []
    for i, p in enumerate(parts):
        if p == "??" and unknown_ok:
            unknown.append(i)
            out.append(0)
            continue
        if len(p) != 2:
            raise DumpError(name, f"line {lineno}", f"{what}: {p!r} is not a hex byte")
        try:
            out.append(int(p, 16))
        except ValueError:
            raise DumpError(name, f"line {lineno}", f"{what}: {p!r} is not a hex byte") from None
    return bytes(out), unknown


def _load_flipper(data: bytes, name: str) -> TagDump:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DumpError(name, f"offset 0x{exc.start:x}", "not UTF-8 text") from None
    fields: dict[str, tuple[int, str]] = {}
    pages: dict[int, tuple[int, str]] = {}
    blocks: dict[int, tuple[int, str]] = {}
    for lineno, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        m = _LINE.match(line)
        if not m:
            raise DumpError(name, f"line {lineno}", f"expected 'Key: value', got {line[:40]!r}")
        key, value = m.group(1).strip(), m.group(2).strip()
        for prefix, table in (("Page ", pages), ("Block ", blocks)):
            if key.startswith(prefix):
                try:
                    table[int(key[len(prefix):])] = (lineno, value)
                except ValueError:
                    raise DumpError(name, f"line {lineno}", f"bad {prefix.strip().lower()} number {key!r}") from None
                break
        else:
            fields[key] = (lineno, value)

    def need(key: str) -> tuple[int, str]:
        if key not in fields:
            raise DumpError(name, "header", f"missing '{key}'")
        return fields[key]

    if need("Filetype")[1] != "Flipper NFC device":
        raise DumpError(name, f"line {fields['Filetype'][0]}", f"not a Flipper NFC file ({fields['Filetype'][1]!r})")
    ver_line, ver = need("Version")
    if ver not in ("2", "3", "4"):
        raise DumpError(name, f"line {ver_line}", f"Flipper NFC version {ver!r} is not supported (2 to 4)")
    dev_line, device = need("Device type")
    uid_line, uid_s = need("UID")
    uid, _ = _hex_bytes(uid_s, name, uid_line, "UID")
    if len(uid) not in (4, 7, 10):
        raise DumpError(name, f"line {uid_line}", f"UID has {len(uid)} bytes, expected 4, 7 or 10")
    atqa = sak = None
    if "ATQA" in fields:
        atqa = _atqa(_hex_bytes(fields["ATQA"][1], name, fields["ATQA"][0], "ATQA", 2)[0])
    if "SAK" in fields:
        sak = _hex_bytes(fields["SAK"][1], name, fields["SAK"][0], "SAK", 1)[0][0]

    if device == "Mifare Classic":
        ctype_line, ctype = need("Mifare Classic type")
        kinds = {v: k for k, v in FLIPPER_CLASSIC_NAMES.items()}
        if ctype not in kinds:
            raise DumpError(name, f"line {ctype_line}", f"unknown Mifare Classic type {ctype!r}")
        kind = kinds[ctype]
        count = classic.SIZES[kind] // 16
        mem = bytearray(classic.SIZES[kind])
        unknown: set[int] = set()
        for b in range(count):
            if b not in blocks:
                raise DumpError(name, "end of file", f"block {b} missing (a {ctype} card has {count} blocks): truncated file?")
            lineno, value = blocks[b]
            raw, unk = _hex_bytes(value, name, lineno, f"block {b}", 16, unknown_ok=True)
            mem[b * 16:(b + 1) * 16] = raw
            unknown.update(b * 16 + i for i in unk)
        extra = [b for b in blocks if b >= count]
        if extra:
            raise DumpError(name, f"line {blocks[extra[0]][0]}", f"block {extra[0]} is past the end of a {ctype} card")
        return _classic_dump(bytes(mem), frozenset(unknown), atqa, sak, uid)

    named: str | None = None
    if device in ("NTAG/Ultralight", "Mifare Ultralight", "NTAG213", "NTAG215", "NTAG216", "NTAG203") or \
            device.startswith(("Mifare Ultralight", "NTAG")):
        tname = fields.get("NTAG/Ultralight type", (0, device))[1]
        named = {v.lower(): k for k, v in FLIPPER_TYPE2_NAMES.items()}.get(tname.lower())
    else:
        raise DumpError(name, f"line {dev_line}", f"device type {device!r} is not a tag tagd reads")
    if not pages:
        raise DumpError(name, "end of file", "no 'Page N:' lines: truncated file?")
    total = len(pages)
    if "Pages total" in fields:
        try:
            total = int(fields["Pages total"][1])
        except ValueError:
            raise DumpError(name, f"line {fields['Pages total'][0]}", "Pages total is not a number") from None
    mem = bytearray(total * 4)
    unknown = set()
    for p in range(total):
        if p not in pages:
            raise DumpError(name, "end of file", f"page {p} missing ({total} pages announced): truncated file?")
        lineno, value = pages[p]
        raw, unk = _hex_bytes(value, name, lineno, f"page {p}", 4, unknown_ok=True)
        mem[p * 4:(p + 1) * 4] = raw
        unknown.update(p * 4 + i for i in unk)
    extra = [p for p in pages if p >= total]
    if extra:
        raise DumpError(name, f"line {pages[extra[0]][0]}", f"page {extra[0]} is past 'Pages total: {total}'")
    if total < 4:
        raise DumpError(name, "end of file", f"{total} pages is too few for a Type 2 tag")
    version = signature = None
    if "Mifare version" in fields:
        version = _hex_bytes(fields["Mifare version"][1], name, fields["Mifare version"][0], "Mifare version", 8)[0]
    if "Signature" in fields:
        signature = _hex_bytes(fields["Signature"][1], name, fields["Signature"][0], "Signature", 32)[0]
    return _type2_dump(bytes(mem), version, signature, named, frozenset(unknown), atqa, sak, uid)


def _hx(b: bytes, unknown: frozenset[int] = frozenset(), base: int = 0) -> str:
    return " ".join("??" if base + i in unknown else f"{x:02X}" for i, x in enumerate(b))


def _dump_flipper(d: TagDump) -> bytes:
    lines = ["Filetype: Flipper NFC device", "Version: 4",
             "# Device type can be ISO14443-3A, ISO14443-3B, ISO14443-4A, NTAG/Ultralight, Mifare Classic, Mifare DESFire",
             "Device type: " + ("Mifare Classic" if d.is_classic else "NTAG/Ultralight"),
             "# UID is common for all formats", f"UID: {_hx(d.uid)}",
             "# ISO14443-3A specific data", f"ATQA: {d.atqa >> 8:02X} {d.atqa & 0xFF:02X}", f"SAK: {d.sak:02X}"]
    if d.is_classic:
        lines += ["# Mifare Classic specific data", f"Mifare Classic type: {FLIPPER_CLASSIC_NAMES[d.kind]}",
                  "Data format version: 2", "# Mifare Classic blocks, '??' means unknown data"]
        lines += [f"Block {b}: {_hx(d.memory[b * 16:(b + 1) * 16], d.unknown, b * 16)}" for b in range(len(d.memory) // 16)]
    else:
        pages = len(d.memory) // 4
        lines += ["# NTAG/Ultralight specific data", "Data format version: 2",
                  f"NTAG/Ultralight type: {FLIPPER_TYPE2_NAMES.get(d.kind, 'NTAG/Ultralight')}",
                  f"Signature: {_hx(d.signature or bytes(32))}", f"Mifare version: {_hx(d.version or bytes(8))}",
                  f"Pages total: {pages}", f"Pages read: {pages}"]
        lines += [f"Page {p}: {_hx(d.memory[p * 4:(p + 1) * 4], d.unknown, p * 4)}" for p in range(pages)]
        lines.append("Failed authentication attempts: 0")
    return ("\n".join(lines) + "\n").encode()


# --- Proxmark3 JSON -------------------------------------------------------

def _jhex(value: Any, name: str, where: str, count: int | None = None) -> bytes:
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
        doc = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        where = f"line {exc.lineno}" if isinstance(exc, json.JSONDecodeError) else f"offset 0x{exc.start:x}"
        raise DumpError(name, where, f"invalid JSON ({exc.msg if isinstance(exc, json.JSONDecodeError) else exc.reason})") from None
    if not isinstance(doc, dict):
        raise DumpError(name, "top level", "expected a JSON object")
    ftype = doc.get("FileType")
    card = doc.get("Card", {})
    blocks = doc.get("blocks")
    if not isinstance(card, dict) or not isinstance(blocks, dict):
        raise DumpError(name, "top level", "missing 'Card' object or 'blocks' map (not a Proxmark3 dump?)")
    atqa = _atqa(_jhex(card["ATQA"], name, "Card.ATQA", 2)) if "ATQA" in card else None
    sak = _jhex(card["SAK"], name, "Card.SAK", 1)[0] if "SAK" in card else None
    uid = _jhex(card["UID"], name, "Card.UID") if "UID" in card else None
    if ftype == "mfu":
        size = 4
    elif ftype == "mfcard":
        size = 16
    else:
        raise DumpError(name, "FileType", f"{ftype!r} is not supported (mfu or mfcard)")
    try:
        numbers = sorted(int(k) for k in blocks)
    except ValueError:
        raise DumpError(name, "blocks", "block numbers must be integers") from None
    if not numbers or numbers != list(range(len(numbers))):
        missing = next((i for i in range(len(numbers) + 1) if i not in set(numbers)), 0)
        raise DumpError(name, f"blocks.{missing}", "block missing: truncated dump?")
    mem = b"".join(_jhex(blocks[str(i)], name, f"blocks.{i}", size) for i in numbers)
    if ftype == "mfcard":
        if len(mem) not in classic.SIZES.values():
            raise DumpError(name, "blocks", f"{len(numbers)} blocks is not a Classic Mini/1K/4K card")
        return _classic_dump(mem, atqa=atqa, sak=sak, uid=uid)
    version = _jhex(card["Version"], name, "Card.Version", 8) if card.get("Version") else None
    signature = _jhex(card["Signature"], name, "Card.Signature", 32) if card.get("Signature") else None
    if len(mem) < 16:
        raise DumpError(name, "blocks", f"{len(numbers)} pages is too few for a Type 2 tag")
    return _type2_dump(mem, version, signature, atqa=atqa, sak=sak, uid=uid)


def _dump_json(d: TagDump) -> bytes:
    size = 16 if d.is_classic else 4
    card: dict[str, str] = {"UID": d.uid.hex().upper(), "ATQA": f"{d.atqa & 0xFF:02X}{d.atqa >> 8:02X}",
                            "SAK": f"{d.sak:02X}"}
    if d.is_type2:
        card["Version"] = (d.version or bytes(8)).hex().upper()
        card["Signature"] = (d.signature or bytes(32)).hex().upper()
    doc: dict[str, Any] = {"Created": "tagd", "FileType": "mfcard" if d.is_classic else "mfu", "Card": card,
                           "blocks": {str(i): d.memory[i * size:(i + 1) * size].hex().upper()
                                      for i in range(len(d.memory) // size)}}
    if d.is_classic:
        doc["SectorKeys"] = {}
        for s in range(classic.sector_count(d.kind)):
            t = d.memory[classic.trailer_block(s) * 16:][:16]
            doc["SectorKeys"][str(s)] = {"KeyA": t[0:6].hex().upper(), "KeyB": t[10:16].hex().upper(),
                                         "AccessConditions": t[6:10].hex().upper()}
    return (json.dumps(doc, indent=2) + "\n").encode()


# --- saving ---------------------------------------------------------------

def dumps(dump: TagDump, fmt: str) -> bytes:
    if fmt == "nfc":
        return _dump_flipper(dump)
    if fmt == "json":
        return _dump_json(dump)
    if fmt in ("bin", "mfd"):
        if fmt == "mfd" and not dump.is_classic:
            raise ValueError("the .mfd format holds MIFARE Classic cards only")
        return dump.memory
    raise ValueError(f"unknown dump format {fmt!r} (one of {', '.join(FORMATS)})")


def format_for_path(path: str) -> str:
    ext = os.path.splitext(path)[1].lower().lstrip(".")
    return ext if ext in FORMATS else "nfc"


def save(dump: TagDump, path: str | os.PathLike[str], fmt: str | None = None) -> None:
    name = os.fspath(path)
    data = dumps(dump, fmt or format_for_path(name))
    tmp = f"{name}.tmp{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, name)
