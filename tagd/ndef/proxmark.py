"""Proxmark3 JSON dumps: ``FileType`` ``mfu`` (Type 2 pages) and ``mfcard`` (MIFARE Classic blocks), and
FeliCa dumps (no ``FileType``, a ``systems`` list: tagd.ndef.proxmark_felica).

Also the Proxmark3 MFU binary (``hf mfu dump`` .bin, and a JSON's ``raw`` form): a 56-byte
``mfu_dump_t`` prefix — GET_VERSION (8), TBO (2), TBO1 (1), last page index (1), signature (32), three
counters with their tearing flags (3 × 4) — then the pages. Older clients wrote a 48-byte prefix
(version, TBO, tearing (3), PACK (2), TBO1, signature) with no page count.

The ``Card`` section holds UID, ATQA (bytes as received, LSB first: ``4400`` is 0x0044), SAK and, for
``mfu``, GET_VERSION and the signature; ``blocks`` maps block numbers to hex. Classic dumps may leave Key A
as zeros in the trailers (it reads back so) and list the keys in ``SectorKeys``.
"""

from __future__ import annotations

import json
from typing import Any

from tagd.ndef import classic, proxmark_felica, type2
from tagd.ndef.tagdump import DumpError, TagDump, classic_dump, type2_dump
from tagd.ndef.tagdump import hex_field

PROXMARK_CLASSIC_TYPES = ("mfcard", "mfc", "mfc v2", "mfc v3")
MFU_PREFIX = 56
OLD_MFU_PREFIX = 48
OTHER_FILE_TYPES = {"15693": "an ISO 15693 (vicinity) tag", "iclass": "an iCLASS card", "legic": "a LEGIC card",
                    "mfdes": "a MIFARE DESFire card", "14b": "an ISO 14443-B tag", "em4x05": "an EM4x05 tag"}
TAGD_READS = "tagd reads NFC Forum Type 2 tags (NTAG, Ultralight) and MIFARE Classic"


def mfu_prefix_length(data: bytes) -> int | None:
    """The length of the Proxmark3 MFU prefix at the start of ``data``, or None when it has none.

    The new prefix announces its last page, which must match the pages that follow; the old one has no
    count, so its GET_VERSION must name a chip whose size matches. Either way the pages must then hold a
    valid Type 2 UID — a raw image that happens to fit is still taken as raw (the caller checks it)."""
    for prefix in (MFU_PREFIX, OLD_MFU_PREFIX):
        rest = len(data) - prefix
        if rest < 16 or rest % 4:
            continue
        if prefix == MFU_PREFIX:
            fits = data[11] + 1 == rest // 4
        else:
            kind = type2.kind_from_version(data[:8])
            fits = kind is not None and type2.TYPE2_KINDS[kind].pages * 4 == rest
        if fits and type2.uid_check_problem(data[prefix:]) is None:
            return prefix
    return None


def load_mfu_image(data: bytes, prefix: int) -> TagDump:
    """A Proxmark3 MFU binary whose prefix (:func:`mfu_prefix_length`) is ``prefix`` bytes."""
    signature = data[12:44] if prefix == MFU_PREFIX else data[16:48]
    return type2_dump(data[prefix:], data[:8], signature)


def load(data: bytes, name: str) -> TagDump:
    try:
        doc = json.loads(data.decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise DumpError(name, f"offset 0x{exc.start:x}", "not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise DumpError(name, f"line {exc.lineno}", f"invalid JSON ({exc.msg}): truncated file?") from None
    if not isinstance(doc, dict):
        raise DumpError(name, "top level", "expected a JSON object")
    if proxmark_felica.is_felica_json(doc):
        return proxmark_felica.from_doc(doc, name)
    ftype, card, blocks = doc.get("FileType"), doc.get("Card", {}), doc.get("blocks")
    if isinstance(ftype, str) and ftype.lower() in OTHER_FILE_TYPES:
        raise DumpError(name, "FileType", f"{ftype!r}: a dump of {OTHER_FILE_TYPES[ftype.lower()]}; {TAGD_READS}")
    if ftype == "mfu" and blocks is None and isinstance(doc.get("raw"), str):
        raw = hex_field(doc["raw"], name, "raw")
        prefix = mfu_prefix_length(raw)
        if prefix is None:
            raise DumpError(name, "raw", "not a Proxmark3 MFU dump (no valid prefix and pages)")
        return load_mfu_image(raw, prefix)
    if not isinstance(card, dict) or not isinstance(blocks, dict):
        raise DumpError(name, "top level", "missing 'Card' object or 'blocks' map (not a Proxmark3 dump?)")
    if ftype == "mfu":
        unit = 4
    elif ftype in PROXMARK_CLASSIC_TYPES:
        unit = 16
    else:
        raise DumpError(name, "FileType", f"{str(ftype)[:20]!r} is not supported (mfu or mfcard)")
    atqa = int.from_bytes(hex_field(card["ATQA"], name, "Card.ATQA", 2), "little") if "ATQA" in card else None
    sak = hex_field(card["SAK"], name, "Card.SAK", 1)[0] if "SAK" in card else None
    uid = hex_field(card["UID"], name, "Card.UID") if card.get("UID") else None
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
    memory = b"".join(hex_field(table[i], name, f"blocks.{i}", unit) for i in numbers)
    if unit == 16:
        if len(memory) not in classic.SIZES.values():
            raise DumpError(name, "blocks", f"{len(numbers)} blocks is not a Classic Mini/1K/4K card (20, 64 or 256)")
        return classic_dump(_with_sector_keys(memory, doc.get("SectorKeys"), name), atqa=atqa, sak=sak, uid=uid)
    if len(numbers) < 4:
        raise DumpError(name, "blocks", f"{len(numbers)} pages is too few for a Type 2 tag")
    version = hex_field(card["Version"], name, "Card.Version", 8) if card.get("Version") else None
    signature = hex_field(card["Signature"], name, "Card.Signature", 32) if card.get("Signature") else None
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
                mem[t + offset:t + offset + 6] = hex_field(entry[field_name], name, f"SectorKeys.{s}.{field_name}", 6)
    return bytes(mem)


def dump(d: TagDump) -> bytes:
    if d.is_felica:
        return proxmark_felica.dump(d)
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
