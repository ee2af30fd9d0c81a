"""Proxmark3 FeliCa JSON dumps — what ``hf felica dump`` writes and ``hf felica sim -f`` reads back — as a
FeliCa :class:`~tagd.ndef.tagdump.TagDump` (kind ``felica``, tagd.ndef.felica).

The file has no ``FileType``; its root holds ``systems``, one object per system on the card, each with
its system code (``code``: the number in 4 hex digits, ``88B4``), the ``idm`` and ``pmm`` a Polling for
that system answered (8 bytes each), an ``encryption_identifier`` (or null) and its ``nodes``. A node is
an ``area``, a ``service`` or the ``system`` node; a service's ``code`` is its two bytes in the order they
go over the air, low byte first — service 000B, a Lite-S's data read without encryption, is ``"0B00"`` —
and its ``data`` maps block numbers (4 hex digits) to 16 bytes of hex: the blocks the tool could read
without keys. The root also has ``specification_version``, ``product_information`` and
``container_issue_information`` (hex, or null when the card did not answer), which tagd writes as null.

tagd takes the IDm and PMm of the first system (the one a Polling for FFFF answers, as a PN532's
InListPassiveTarget sends it), every system code, and as ``memory`` blocks 0, 1, 2… of service 000B (else
0009) of the NFC Forum system 12FC or the Lite-S system 88B4: a Lite-S's user blocks, the NDEF attribute
block first. Other services and the Lite-S's system blocks (80 and up: ID, key versions, MAC) are not
kept — no token depends on them, and no reader could read them back the same way.
"""

from __future__ import annotations

import json
from typing import Any

from tagd.ndef import felica
from tagd.ndef.tagdump import DumpError, TagDump
from tagd.ndef.tagdump import hex_field as _hex

# a service code as the file writes it (low byte first) → the service; 000B first: it is the one readers use
MEMORY_SERVICES = {"0B00": 0x000B, "0900": 0x0009}
MEMORY_SYSTEMS = (felica.SYSTEM_NDEF, felica.SYSTEM_LITE_S)
MAX_SYSTEMS = 16  # the system number is 4 bits of the IDm


def is_felica_json(doc: Any) -> bool:
    """A Proxmark3 FeliCa dump: a ``systems`` list and no ``FileType`` (which every other Proxmark3 JSON has)."""
    return isinstance(doc, dict) and "systems" in doc and "FileType" not in doc


def _field(obj: dict[str, Any], key: str, kind: type, name: str, where: str) -> Any:
    value = obj.get(key)
    if not isinstance(value, kind):
        got = "missing" if key not in obj else f"a {type(value).__name__}"
        raise DumpError(name, f"{where}.{key}", f"expected a {kind.__name__}, {got}: truncated or not a FeliCa dump?")
    return value


def _blocks(node: dict[str, Any], name: str, where: str) -> dict[int, bytes]:
    data = _field(node, "data", dict, name, where)
    blocks: dict[int, bytes] = {}
    for key, value in data.items():
        try:
            number = int(key, 16) if len(key) == 4 else -1
        except ValueError:
            number = -1
        if number < 0:
            raise DumpError(name, f"{where}.data", f"block number {key[:12]!r} is not 4 hex digits")
        blocks[number] = _hex(value, name, f"{where}.data.{key}", felica.BLOCK)
    return blocks


def _memory(blocks: dict[int, bytes], name: str, where: str) -> bytes:
    if 0 not in blocks:
        raise DumpError(name, where, "block 0000 (the attribute block) missing: truncated dump?")
    memory = felica.blocks_from_zero(blocks)
    problem = felica.cut_short(memory)
    if problem is not None:
        raise DumpError(name, f"{where}.{len(memory) // felica.BLOCK:04X}", problem)
    return memory


def from_doc(doc: dict[str, Any], name: str) -> TagDump:
    systems = _field(doc, "systems", list, name, "top level")
    if not systems:
        raise DumpError(name, "systems", "no systems: a FeliCa dump names at least the card's first system")
    if len(systems) > MAX_SYSTEMS:
        raise DumpError(name, "systems", f"{len(systems)} systems: a FeliCa card has at most {MAX_SYSTEMS} (the "
                                         "system number is the upper half of the IDm's first byte)")
    codes: list[int] = []
    idm = pmm = b""
    found: dict[int, tuple[str, dict[int, bytes]]] = {}  # service → (where, blocks): the first of each
    for i, system in enumerate(systems):
        where = f"systems[{i}]"
        if not isinstance(system, dict):
            raise DumpError(name, where, f"expected an object, got {type(system).__name__}")
        code = int.from_bytes(_hex(_field(system, "code", str, name, where), name, f"{where}.code", 2), "big")
        if i == 0:
            idm = _hex(_field(system, "idm", str, name, where), name, f"{where}.idm", 8)
            pmm = _hex(_field(system, "pmm", str, name, where), name, f"{where}.pmm", 8)
        codes.append(code)
        for j, node in enumerate(_field(system, "nodes", list, name, where)):
            at = f"{where}.nodes[{j}]"
            if not isinstance(node, dict):
                raise DumpError(name, at, f"expected an object, got {type(node).__name__}")
            service = MEMORY_SERVICES.get(str(node.get("code", "")).upper())
            blocks = _blocks(node, name, at) if node.get("type") == "service" else {}
            if service is not None and code in MEMORY_SYSTEMS and blocks:
                found.setdefault(service, (f"{at}.data", blocks))
    where, blocks = next((found[s] for s in MEMORY_SERVICES.values() if s in found), ("", {}))
    memory = _memory(blocks, name, where) if blocks else b""
    return TagDump(kind=felica.KIND, uid=idm, atqa=0, sak=0, memory=memory, version=pmm, systems=tuple(codes))


def _system_idm(idm: bytes, number: int) -> bytes:
    """A multi-system card's IDm for system ``number``: the upper half of byte 0 is the system number."""
    return bytes([(idm[0] & 0x0F) | (number << 4)]) + idm[1:] if number else idm


def dump(d: TagDump) -> bytes:
    default = felica.SYSTEM_NDEF if felica.message_length(d.memory[:felica.BLOCK]) is not None else felica.SYSTEM_LITE_S
    codes = d.systems or (default,)
    home = next((i for i, c in enumerate(codes) if c in MEMORY_SYSTEMS), 0)
    systems = []
    for i, code in enumerate(codes):
        nodes = []
        if i == home and d.memory:
            data = {f"{b:04X}": d.memory[b * felica.BLOCK:(b + 1) * felica.BLOCK].hex().upper()
                    for b in range(len(d.memory) // felica.BLOCK)}
            nodes.append({"type": "service", "code": "0B00", "des_key_version": None, "aes_key_version": None,
                          "data": data})
        systems.append({"code": f"{code:04X}", "idm": _system_idm(d.uid, i).hex().upper(),
                        "pmm": (d.version or bytes(8)).hex().upper(), "encryption_identifier": None, "nodes": nodes})
    doc = {"specification_version": None, "product_information": None, "container_issue_information": None,
           "systems": systems}
    return (json.dumps(doc, indent=2) + "\n").encode()
