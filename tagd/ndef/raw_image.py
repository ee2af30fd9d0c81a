"""Raw memory images: ``.bin`` (a Type 2 tag's pages, or any card's bytes) and libnfc ``.mfd`` (a MIFARE
Classic card's blocks, keys in the trailers). There is no header: the size says what the image is —
except Proxmark3's MFU binaries, whose prefix (tagd.ndef.proxmark) is recognised and skipped.

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


def dump_bin(d: TagDump) -> bytes:
    return bytes(d.memory)


def dump_mfd(d: TagDump) -> bytes:
    if not d.is_classic:
        raise ValueError("the .mfd format holds MIFARE Classic cards only; use .bin for Type 2 tags")
    return bytes(d.memory)
