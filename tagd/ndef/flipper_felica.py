"""Flipper Zero ``.nfc`` files of FeliCa cards (``Device type: FeliCa``) ↔ a FeliCa TagDump (tagd.ndef.felica).

After the common header (``UID``: the IDm) come ``Data format version`` (1 or 2), ``Manufacture id`` (the IDm
again) and ``Manufacture parameter`` (the PMm); version 2 adds ``IC Type``. Then, for a FeliCa Lite or
Lite-S: ``Blocks total`` (28), ``Blocks read`` and ``Block 0`` … ``Block 27``, 18 bytes each — the two status
flags of the read (``00 00``: read) then the 16 data bytes — in the order of the Lite-S memory map: user
blocks 00–0D, REG (0E), then the system blocks RC … CRC_CHECK (80–A0). For a FeliCa Standard card: area and
service lists and ``Public blocks read``, each public block as ``Block 0000: | Service code 000B | Block index
00 | Data: … |`` (these block keys count in hex). The oldest version 1 files hold only the IDm and PMm.

``memory`` is blocks 00, 01, … of the card's data read without keys, up to the first one the file lacks:
a Lite's user blocks and REG (``Block 0``–``Block 14`` read), or a Standard card's public blocks of
service 000B by index. The system code is not in the file (the Flipper polls for any). Written back, a
Lite's blocks the dump lacks (the system blocks, read with a MAC or not at all) carry status flags ``01 A8``
(illegal block number), as a refused read answers.
"""

from __future__ import annotations

import re
from typing import Protocol

from tagd.ndef import felica
from tagd.ndef.tagdump import DumpError, TagDump, flipper_bytes


class _FlipperFile(Protocol):
    """The parsed key/value lines tagd.ndef.flipper_nfc hands over (it imports this module, not the reverse)."""

    name: str
    fields: dict[str, tuple[int, str]]
    numbered: dict[str, dict[int, tuple[int, str]]]

    def need(self, key: str) -> tuple[int, str]: ...

    def hex(self, lineno: int, value: str, what: str, count: int | None = None) -> bytes: ...

    def int_field(self, key: str) -> int | None: ...

DEVICE_TYPE = "FeliCa"
STANDARD_MARK = re.compile(rb"^\s*Public blocks read\s*:", re.MULTILINE)  # a Standard card: hex block keys
LITE_MAP_BLOCKS = 28  # the Lite-S memory map as the file orders it
LITE_DATA_BLOCKS = 15  # of which blocks 00–0E (user blocks, REG) are the card's blocks 00–0E
NOT_READ = bytes([0x01, 0xA8])
_PUBLIC = re.compile(r"^\|\s*Service code\s+([0-9A-Fa-f]{4})\s*\|\s*Block index\s+([0-9A-Fa-f]{2})\s*\|\s*Data:(.*?)\|?$")


def load(f: _FlipperFile) -> TagDump:
    line, version = f.need("Data format version")
    if version not in ("1", "2"):
        raise DumpError(f.name, f"line {line}", f"FeliCa data format version {version[:10]!r} is not supported (1 or 2)")
    idm = _need_hex(f, "Manufacture id", 8)
    pmm = _need_hex(f, "Manufacture parameter", 8)
    uid_line, uid_text = f.need("UID")
    if f.hex(uid_line, uid_text, "UID") != idm:
        raise DumpError(f.name, f"line {uid_line}", f"UID {uid_text[:30]!r} is not the IDm ('Manufacture id')")
    if "Public blocks read" in f.fields:
        memory = _standard_memory(f)
    elif "Blocks total" in f.fields:
        memory = _lite_memory(f)
    else:
        memory = b""
    problem = felica.cut_short(memory)
    if problem is not None:
        raise DumpError(f.name, "end of file", f"{problem}: truncated file?")
    return TagDump(kind=felica.KIND, uid=idm, atqa=0, sak=0, memory=memory, version=pmm)


def _need_hex(f: _FlipperFile, key: str, count: int) -> bytes:
    line, value = f.need(key)
    return f.hex(line, value, key, count)


def _lite_memory(f: _FlipperFile) -> bytes:
    total = f.int_field("Blocks total")
    if total != LITE_MAP_BLOCKS:
        raise DumpError(f.name, f"line {f.fields['Blocks total'][0]}",
                        f"Blocks total {total}: a FeliCa Lite map has {LITE_MAP_BLOCKS}")
    memory = bytearray()
    table = f.numbered["Block"]
    for n in range(LITE_DATA_BLOCKS):
        if n not in table:
            break
        line, value = table[n]
        raw = f.hex(line, value, f"block {n}", 2 + felica.BLOCK)
        if raw[0] != 0x00:  # status flag 1: the read failed (a block behind a MAC)
            break
        memory += raw[2:]
    return bytes(memory)


def _standard_memory(f: _FlipperFile) -> bytes:
    blocks: dict[int, bytes] = {}
    for line, value in f.numbered["Block"].values():
        m = _PUBLIC.match(value)
        if m is None:
            raise DumpError(f.name, f"line {line}", "expected '| Service code XXXX | Block index XX | Data: … |'")
        data = f.hex(line, m.group(3), "public block data", felica.BLOCK)
        if int(m.group(1), 16) == felica.SERVICE_NDEF_READ:
            blocks.setdefault(int(m.group(2), 16), data)
    return felica.blocks_from_zero(blocks)


def dump_lines(d: TagDump) -> list[str]:
    """The FeliCa part of a Flipper file (after ``UID``): Lite blocks for a Lite/Lite-S PMm, else public blocks."""
    pmm = d.version or bytes(8)
    lite = pmm[1] in (0xF0, 0xF1)
    lines = ["# FeliCa specific data", "Data format version: 2", f"Manufacture id: {flipper_bytes(d.uid)}",
             f"Manufacture parameter: {flipper_bytes(pmm)}",
             "IC Type: " + ("FeliCa Lite-S" if pmm[1] == 0xF1 else "FeliCa Lite" if lite else "FeliCa Standard"), ""]
    blocks = [d.memory[b * felica.BLOCK:(b + 1) * felica.BLOCK] for b in range(len(d.memory) // felica.BLOCK)]
    if lite:
        if len(blocks) > LITE_DATA_BLOCKS:
            raise ValueError(f"a FeliCa Lite holds {LITE_DATA_BLOCKS} data blocks, the dump has {len(blocks)}")
        lines += ["# Felica Lite specific data", f"Blocks total: {LITE_MAP_BLOCKS}", f"Blocks read: {len(blocks)}"]
        lines += [f"Block {n}: " + flipper_bytes(bytes(2) + blocks[n] if n < len(blocks) else NOT_READ + bytes(16))
                  for n in range(LITE_MAP_BLOCKS)]
    else:
        lines += ["# Felica Standard specific data", "Area found: 0", "Service found: 0",
                  f"Public blocks read: {len(blocks)}"]
        lines += [f"Block {n:04X}: | Service code {felica.SERVICE_NDEF_READ:04X} | Block index {n:02X} | Data: "
                  f"{flipper_bytes(block)} |" for n, block in enumerate(blocks)]
    return lines
