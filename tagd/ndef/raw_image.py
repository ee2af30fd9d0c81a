"""Raw memory images: ``.bin`` (a Type 2 tag's pages, or any card's bytes) and libnfc ``.mfd`` (a MIFARE
Classic card's blocks, keys in the trailers), and Proxmark3 ``.eml`` (the same bytes as hex, one block or
page per line). There is no header: the size says what the image is — except Proxmark3's MFU binaries,
whose prefix (tagd.ndef.proxmark) is recognised and skipped.

A Type 2 image must hold a valid UID in pages 0–2 (BCC0/BCC1): a raw file offers no other evidence, and
ISO 15693 or iCLASS dumps of a Type 2-like size would otherwise become tags with made-up UIDs."""

from __future__ import annotations

from tagd.ndef import classic, proxmark, type2
from tagd.ndef.tagdump import DumpError, TagDump, classic_dump, type2_dump


def load(data: bytes, name: str) -> TagDump:
    if len(data) in classic.SIZES.values():
        return classic_dump(data)
    prefix = proxmark.mfu_prefix_length(data)
    if prefix is not None:
        return proxmark.load_mfu_image(data, prefix)
    if len(data) < 16 or len(data) % 4:
        raise DumpError(name, f"offset 0x{len(data):x}",
                        f"{len(data)} bytes is not a tag image (Type 2: whole 4-byte pages, at least 16 bytes; "
                        f"Classic: 320, 1024 or 4096 bytes)")
    if len(data) > 4096:
        raise DumpError(name, f"offset 0x{len(data):x}", f"{len(data)} bytes is too large for a Type 2 image")
    problem = type2.uid_check_problem(data)
    if problem is not None:
        raise DumpError(name, "offset 0x0", f"not a Type 2 tag image: {problem} (an ISO 15693, iCLASS or other "
                                            f"card's dump?); {proxmark.TAGD_READS}")
    return type2_dump(data)


def is_eml(text: bytes) -> bool:
    """Every non-blank line is 4 or 16 bytes of hex: a Proxmark3 .eml."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return bool(lines) and all(len(ln) in (8, 32) and all(c in b"0123456789abcdefABCDEF" for c in ln) for ln in lines)


def load_eml(data: bytes, name: str) -> TagDump:
    image = bytearray()
    for lineno, line in enumerate(data.decode("ascii").splitlines(), 1):
        if line.strip():
            try:
                image += bytes.fromhex(line.strip())
            except ValueError:
                raise DumpError(name, f"line {lineno}", f"{line.strip()[:40]!r} is not hex") from None
    return load(bytes(image), name)


def dump_eml(d: TagDump) -> bytes:
    unit = 16 if d.is_classic else 4
    return b"".join(d.memory[i:i + unit].hex().upper().encode() + b"\n" for i in range(0, len(d.memory), unit))


def dump_bin(d: TagDump) -> bytes:
    return bytes(d.memory)


def dump_mfd(d: TagDump) -> bytes:
    if not d.is_classic:
        raise ValueError("the .mfd format holds MIFARE Classic cards only; use .bin for Type 2 tags")
    return bytes(d.memory)
