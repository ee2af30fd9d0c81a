"""Tag dump files: Flipper ``.nfc`` (versions 2–4), Proxmark3 JSON (``mfu``, ``mfcard``, and FeliCa from
``hf felica dump``) and ``.eml``, raw ``.bin`` images (Proxmark3's MFU prefix included) and libnfc ``.mfd``.
A FeliCa card is read from and written to Proxmark3 JSON and Flipper ``.nfc`` (the formats that hold one).

Everything becomes a :class:`TagDump` (tagd.ndef.tagdump) — kind, UID, ATQA/SAK, the whole memory (Type 2:
every page; Classic: every block, keys in the trailers) and which bytes were unknown (Flipper's ``??``).
This module detects the format from the content, not the file name, because people rename dumps freely,
and picks the format's reader and writer from :data:`FORMATS`; each format lives in its own module.
A corrupt or truncated file raises :class:`DumpError` naming the file, the line (or offset) and the
reason — never anything else, whatever the bytes: dumps come from strangers' SD cards and gists.

Byte order of ATQA differs by tool and version and is pinned in each format, not guessed: Flipper
version 2 stores it LSB first (``44 00``), versions 3 and 4 MSB first (``00 44``); Proxmark3 JSON stores
the bytes as received, LSB first (``4400``). ``TagDump.atqa`` is the 16-bit value (NTAG: 0x0044).
"""

from __future__ import annotations

import os
from typing import Callable

from tagd.ndef import classic, flipper_nfc, proxmark, raw_image
from tagd.ndef.tagdump import TYPE2_ATQA_SAK, DumpError, TagDump, classic_dump, type2_dump, type2_kind

__all__ = ["FELICA_FORMATS", "FORMATS", "MAX_FILE", "TYPE2_ATQA_SAK", "DumpError", "TagDump", "classic_dump", "type2_dump", "type2_kind",
           "detect_format", "loads", "load", "dumps", "format_for_path", "save"]

Loader = Callable[[bytes, str], TagDump]
Dumper = Callable[[TagDump], bytes]

# format name → (read the file's bytes, write a dump's bytes); detect_format() picks the name
FORMATS: dict[str, tuple[Loader, Dumper]] = {
    "nfc": (flipper_nfc.load, flipper_nfc.dump),
    "json": (proxmark.load, proxmark.dump),
    "bin": (raw_image.load, raw_image.dump_bin),
    "mfd": (raw_image.load, raw_image.dump_mfd),
    "eml": (raw_image.load_eml, raw_image.dump_eml),
}
FELICA_FORMATS = ("json", "nfc")  # the formats that hold a FeliCa card (IDm, PMm, blocks; JSON: system codes too)
MAX_FILE = 1 << 20  # far above any tag (a 4K card is 4096 bytes; its Flipper file ~12 KiB)


# --- detection and loading ------------------------------------------------------

_TEXT_BYTES = bytes(range(32, 127)) + b"\t\r\n"


def _mostly_text(data: bytes) -> bool:
    """At least 95% printable ASCII: dump files are ASCII, raw tag images are mostly zeros and high bytes.
    (Not 100%: a text dump with one bad byte should get a precise error, not be taken for an image.)"""
    return bool(data) and len(data.translate(None, _TEXT_BYTES)) <= len(data) // 20


def detect_format(data: bytes) -> str:
    """``json`` (an object), ``nfc`` (a Flipper header), ``eml`` (hex lines), ``mfd`` (a Classic-sized image),
    ``bin`` (other raw images) or ``text`` (readable text that is none of these: not a dump). Text-ness comes first, so a raw
    image whose first byte happens to be ``{`` is still an image."""
    text = data[3:] if data.startswith(b"\xef\xbb\xbf") else data
    if not _mostly_text(text[:65536]):
        return "mfd" if len(data) in classic.SIZES.values() else "bin"
    if text.lstrip().startswith(b"{"):
        return "json"
    if raw_image.is_eml(text):
        return "eml"
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
        if fmt == "text":
            raise DumpError(name, "offset 0x0", "not a tag dump: text that is neither a Flipper .nfc file "
                                                "(no 'Filetype:' header) nor Proxmark3 JSON")
        return FORMATS[fmt][0](data, name)
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


# --- saving ---------------------------------------------------------------------

def dumps(dump: TagDump, fmt: str) -> bytes:
    """The file content of ``dump`` in ``fmt`` (nfc, json, bin, mfd, eml). Only ``nfc`` keeps unknown bytes."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown dump format {fmt!r} (one of {', '.join(FORMATS)})")
    if dump.is_felica and fmt not in FELICA_FORMATS:
        raise ValueError(f"a FeliCa card is written as Proxmark3 JSON (json) or a Flipper file (nfc), not {fmt}")
    return FORMATS[fmt][1](dump)


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
