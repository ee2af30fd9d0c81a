"""Flipper Zero ``.nfc`` files, versions 2 to 4 (NTAG/Ultralight and MIFARE Classic; FeliCa is read by
tagd.ndef.flipper_felica).

Line-oriented ``Key: value`` text. Version 2 and 3 name the Type 2 chip in ``Device type`` (``NTAG215``);
version 4 says ``Device type: NTAG/Ultralight`` and names it in ``NTAG/Ultralight type``. Version 2 stores
ATQA LSB first. Classic blocks may hold ``??`` for bytes whose sector keys were not found (data format 2)
or list the found keys as bit masks (data format 1). Errors name the line, because people fix these
files by hand.
"""

from __future__ import annotations

import re

from tagd.ndef import classic, flipper_felica
from tagd.ndef.tagdump import DumpError, TagDump, classic_dump, flipper_bytes, type2_dump

FLIPPER_TYPE2_NAMES = {"ntag203": "NTAG203", "ntag213": "NTAG213", "ntag215": "NTAG215", "ntag216": "NTAG216",
                       "ultralight": "Mifare Ultralight", "ultralight_ev1": "Mifare Ultralight 11"}
FLIPPER_CLASSIC_NAMES = {"classic1k": "1K", "classic4k": "4K", "classicmini": "MINI"}
FLIPPER_UID_ONLY = ("UID", "ISO14443-3A", "ISO14443-3B", "ISO14443-4A")

_LINE = re.compile(r"^([^:]+):(.*)$")


def _flipper_hex(value: str, name: str, lineno: int, what: str, count: int | None = None,
                 unknown_ok: bool = False) -> tuple[bytes, list[int]]:
    """Space-separated hex bytes; ``??`` (where allowed) reads as 00 and its index is returned."""
    parts = value.split()
    if count is not None and len(parts) != count:
        raise DumpError(name, f"line {lineno}", f"{what} has {len(parts)} bytes, expected {count}")
    out = bytearray()
    unknown: list[int] = []
    for i, part in enumerate(parts):
        if part == "??" and unknown_ok:
            unknown.append(i)
            out.append(0)
        elif len(part) == 2 and all(c in "0123456789abcdefABCDEF" for c in part):
            out.append(int(part, 16))
        else:
            raise DumpError(name, f"line {lineno}", f"{what}: {part[:12]!r} is not a hex byte")
    return bytes(out), unknown


class _FlipperFile:
    """The key/value lines of a Flipper file, with the line number of each for error messages."""

    def __init__(self, data: bytes, name: str, base: int = 10) -> None:
        """``base``: how numbered keys (``Block N``) are written — 16 in a FeliCa Standard file."""
        self.name = name
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise DumpError(name, f"offset 0x{exc.start:x}", "not UTF-8 text") from None
        self.fields: dict[str, tuple[int, str]] = {}
        self.numbered: dict[str, dict[int, tuple[int, str]]] = {"Page": {}, "Block": {}}
        digits = "0123456789" if base == 10 else "0123456789abcdefABCDEF"
        for lineno, raw in enumerate(text.splitlines(), 1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            m = _LINE.match(line)
            if not m:
                raise DumpError(name, f"line {lineno}", f"expected 'Key: value', got {line[:40]!r}")
            key, value = m.group(1).strip(), m.group(2).strip()
            prefix, _, number = key.partition(" ")
            table = self.numbered.get(prefix)
            if table is not None and number:
                if not all(c in digits for c in number) or len(number) > 6:
                    raise DumpError(name, f"line {lineno}", f"bad {prefix.lower()} number {number[:12]!r}")
                n = int(number, base)
                if n in table:
                    raise DumpError(name, f"line {lineno}", f"{prefix.lower()} {n} appears twice (also line {table[n][0]})")
                table[n] = (lineno, value)
            elif key in self.fields:
                raise DumpError(name, f"line {lineno}", f"'{key}' appears twice (also line {self.fields[key][0]})")
            else:
                self.fields[key] = (lineno, value)

    def need(self, key: str) -> tuple[int, str]:
        if key not in self.fields:
            raise DumpError(self.name, "header", f"missing '{key}': truncated or not a Flipper NFC file?")
        return self.fields[key]

    def hex(self, lineno: int, value: str, what: str, count: int | None = None) -> bytes:
        return _flipper_hex(value, self.name, lineno, what, count)[0]

    def hex_field(self, key: str, count: int) -> bytes | None:
        if key not in self.fields:
            return None
        lineno, value = self.fields[key]
        return _flipper_hex(value, self.name, lineno, key, count)[0]

    def int_field(self, key: str) -> int | None:
        if key not in self.fields:
            return None
        lineno, value = self.fields[key]
        if not value.isdigit() or len(value) > 6:
            raise DumpError(self.name, f"line {lineno}", f"{key} is not a number: {value[:20]!r}")
        return int(value)

    def memory(self, prefix: str, unit: int, count: int, read: int, what: str) -> tuple[bytes, frozenset[int]]:
        """``count`` numbered lines of ``unit`` bytes; those past ``read`` may be absent (then unknown)."""
        table = self.numbered[prefix]
        past = [n for n in table if n >= count]
        if past:
            raise DumpError(self.name, f"line {table[min(past)][0]}",
                            f"{prefix.lower()} {min(past)} is past the end: {what}")
        mem = bytearray(count * unit)
        unknown: set[int] = set()
        for n in range(count):
            if n not in table:
                if n < read:
                    raise DumpError(self.name, "end of file",
                                    f"{prefix.lower()} {n} missing ({what}): truncated file?")
                unknown.update(range(n * unit, (n + 1) * unit))
                continue
            lineno, value = table[n]
            raw, unk = _flipper_hex(value, self.name, lineno, f"{prefix.lower()} {n}", unit, unknown_ok=True)
            mem[n * unit:(n + 1) * unit] = raw
            unknown.update(n * unit + i for i in unk)
        return bytes(mem), frozenset(unknown)


def load(data: bytes, name: str) -> TagDump:
    f = _FlipperFile(data, name, 16 if flipper_felica.STANDARD_MARK.search(data) else 10)
    line, filetype = f.need("Filetype")
    if filetype != "Flipper NFC device":
        raise DumpError(name, f"line {line}", f"not a Flipper NFC device file ({filetype[:40]!r})")
    line, version = f.need("Version")
    if version not in ("2", "3", "4"):
        raise DumpError(name, f"line {line}", f"Flipper NFC version {version[:10]!r} is not supported (2 to 4)")
    dev_line, device = f.need("Device type")
    if device == flipper_felica.DEVICE_TYPE:
        return flipper_felica.load(f)
    uid_line, uid_text = f.need("UID")
    uid = _flipper_hex(uid_text, name, uid_line, "UID")[0]
    if len(uid) not in (4, 7, 10):
        raise DumpError(name, f"line {uid_line}", f"UID has {len(uid)} bytes, expected 4, 7 or 10")
    atqa_raw = f.hex_field("ATQA", 2)
    atqa = None if atqa_raw is None else int.from_bytes(atqa_raw, "little" if version == "2" else "big")
    sak_raw = f.hex_field("SAK", 1)
    sak = None if sak_raw is None else sak_raw[0]

    if device == "Mifare Classic":
        line, ctype = f.need("Mifare Classic type")
        kind = {v: k for k, v in FLIPPER_CLASSIC_NAMES.items()}.get(ctype)
        if kind is None:
            raise DumpError(name, f"line {line}", f"Mifare Classic type {ctype[:20]!r} is not supported (MINI, 1K or 4K)")
        count = classic.SIZES[kind] // 16
        memory, unknown = f.memory("Block", 16, count, count, f"a Mifare Classic {ctype} has {count} blocks")
        return classic_dump(memory, unknown | _flipper_v1_unknown_sectors(f, kind), atqa=atqa, sak=sak, uid=uid)

    if device in FLIPPER_UID_ONLY:
        raise DumpError(name, f"line {dev_line}", f"device type {device!r} holds only a UID, no tag memory")
    if device == "NTAG/Ultralight":  # version 4
        named_as = f.need("NTAG/Ultralight type")[1]
    elif device.startswith(("NTAG", "Mifare Ultralight")):  # versions 2 and 3 name the chip here
        named_as = device
    else:
        raise DumpError(name, f"line {dev_line}", f"device type {device[:40]!r} is not a tag tagd reads")
    named = {v.lower(): k for k, v in FLIPPER_TYPE2_NAMES.items()}.get(named_as.lower())
    pages = f.numbered["Page"]
    if not pages:
        raise DumpError(name, "end of file", "no 'Page N:' lines: truncated file?")
    total = f.int_field("Pages total")
    total = max(pages) + 1 if total is None else total
    read = f.int_field("Pages read")
    if not 4 <= total <= 1024:
        where = f"line {f.fields['Pages total'][0]}" if "Pages total" in f.fields else "end of file"
        raise DumpError(name, where, f"{total} pages is not a Type 2 tag (4 to 1024 pages)")
    memory, unknown = f.memory("Page", 4, total, total if read is None else read, f"the file announces {total} pages")
    return type2_dump(memory, f.hex_field("Mifare version", 8), f.hex_field("Signature", 32),
                      named=named, unknown=unknown, atqa=atqa, sak=sak, uid=uid)


def _flipper_v1_unknown_sectors(f: _FlipperFile, kind: str) -> frozenset[int]:
    """Classic data format 1 has no ``??``: it lists found keys as bit masks; a sector with neither key is unknown."""
    maps = []
    for key in ("Key A map", "Key B map"):
        if key in f.fields:
            line, value = f.fields[key]
            try:
                maps.append(int(value, 16))
            except ValueError:
                raise DumpError(f.name, f"line {line}", f"{key} is not hex: {value[:20]!r}") from None
    if not maps:
        return frozenset()
    found = 0
    for m in maps:
        found |= m
    out: set[int] = set()
    for s in range(classic.sector_count(kind)):
        if not found >> s & 1:
            out.update(range(classic.first_block(s) * 16, (classic.trailer_block(s) + 1) * 16))
    return frozenset(out)



def dump(d: TagDump) -> bytes:
    device = flipper_felica.DEVICE_TYPE if d.is_felica else "Mifare Classic" if d.is_classic else "NTAG/Ultralight"
    lines = ["Filetype: Flipper NFC device", "Version: 4",
             "# Device type can be ISO14443-3A, ISO14443-3B, ISO14443-4A, NTAG/Ultralight, Mifare Classic, Mifare DESFire",
             f"Device type: {device}", "# UID is common for all formats", f"UID: {flipper_bytes(d.uid)}"]
    if d.is_felica:
        return ("\n".join(lines + flipper_felica.dump_lines(d)) + "\n").encode()
    lines += ["# ISO14443-3A specific data", f"ATQA: {flipper_bytes(d.atqa.to_bytes(2, 'big'))}", f"SAK: {d.sak:02X}"]
    if d.is_classic:
        lines += ["# Mifare Classic specific data", f"Mifare Classic type: {FLIPPER_CLASSIC_NAMES[d.kind]}",
                  "Data format version: 2", "# Mifare Classic blocks, '??' means unknown data"]
        lines += [f"Block {b}: {flipper_bytes(d.memory[b * 16:(b + 1) * 16], d.unknown, b * 16)}"
                  for b in range(len(d.memory) // 16)]
    else:
        pages = len(d.memory) // 4
        lines += ["# NTAG/Ultralight specific data", "Data format version: 2",
                  f"NTAG/Ultralight type: {FLIPPER_TYPE2_NAMES.get(d.kind, 'NTAG/Ultralight')}",
                  f"Signature: {flipper_bytes(d.signature or bytes(32))}",
                  f"Mifare version: {flipper_bytes(d.version or bytes(8))}"]
        if d.kind.startswith("ntag21") or d.kind == "ultralight_ev1":  # Flipper expects counters for these chips
            for i in range(3):
                lines += [f"Counter {i}: 0", f"Tearing {i}: 00"]
        lines += [f"Pages total: {pages}", f"Pages read: {pages}"]
        lines += [f"Page {p}: {flipper_bytes(d.memory[p * 4:(p + 1) * 4], d.unknown, p * 4)}" for p in range(pages)]
        lines.append("Failed authentication attempts: 0")
    return ("\n".join(lines) + "\n").encode()
