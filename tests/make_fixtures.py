"""Regenerate fixtures/ with tagd's own tools: `python tests/make_fixtures.py [DIR]` (default: fixtures/).

Most fixtures come from `tagd fixture make`; the edge cases are built here from the same write plans
a reader uses, then saved in each dump format. fixtures/expected.json says what each must decode to
(``{text, uid, type, kind}``, optionally ``data`` / ``errors_contain``) or which error it must give
(``{error: substring}``). Bad files live in fixtures/bad/ so that `tagd decode fixtures/*.nfc` stays clean.
tests/ndef/test_dumps_fixtures.py rebuilds everything into a temporary directory and compares it byte for
byte, so a fixture can never drift from what the tools make.
"""

from __future__ import annotations

import json
import pathlib
import sys
from typing import Any

import ndef

from tagd.cli import main as tagd_main
from tagd.cli.tags import make_dump
from tagd.ndef import dumps, records, type2

FIXTURES = pathlib.Path(__file__).resolve().parent.parent / "fixtures"


NOTES = {
    "snes-ntag215.nfc": "demo tag (Flipper v4, `tagd fixture make`)",
    "smw-ntag213.nfc": "demo tag (Flipper v4)",
    "genesis-classic1k.nfc": "demo card: Classic 1K with MAD + NFC Forum keys + NDEF",
    "ultralight.nfc": "MIFARE Ultralight (no GET_VERSION; 48-byte data area)",
    "ultralight.bin": "raw 64-byte Ultralight image",
    "ntag213.bin": "raw 180-byte NTAG213 image",
    "ntag216.bin": "raw 924-byte NTAG216 image",
    "classic4k.json": "Proxmark3 `mfcard` JSON, Classic 4K",
    "classic1k.mfd": "libnfc .mfd, Classic 1K",
    "uri-ntag213.json": "Proxmark3 `mfu` JSON holding a URI record",
    "factory-ntag213.nfc": "factory-fresh NTAG213 (Lock Control TLV + empty NDEF TLV)",
    "long-zapscript-ntag215.nfc": "300-byte ZapScript: NDEF TLV with a 3-byte length",
    "wrong-cc-ntag216.nfc": "NTAG216 whose CC says NTAG215; GET_VERSION wins",
    "utf16-ntag215.json": "UTF-16 Text record (lang ja), encoded by ndeflib",
    "amiibo-style.bin": "540-byte amiibo-style image (bytes 9-15 48 0F E0 F1 10 FF EE): data = pages 21-22, as Core",
    "toy-ntag215.bin": "540-byte non-NDEF, non-amiibo image: data = pages 0 to the last user page",
    "flipper-v2-ntag215.nfc": "Flipper version 2 (chip in 'Device type', ATQA LSB first)",
    "classic1k-unknown-keys.nfc": "Classic 1K, sector 1 '??' (keys not found): empty text + error",
    "classic1k-7byte-uid.nfc": "Classic 1K with a 7-byte UID named by the Flipper file",
    "proxmark-ntag215.bin": "Proxmark3 MFU binary: 56-byte mfu_dump_t prefix, then 135 pages",
    "ntag203.nfc": "NTAG203 (42 pages, no GET_VERSION), Flipper version 2",
    "amiibo-uid-line.nfc": "amiibo whose UID line holds BCC0 (a converter's slip): pages 0-1 win, with a note",
    "uri-nul-padded-ntag213.nfc": "URI record padded with 6 NUL bytes: stripped, with a note",
    "wifi-ntag215.nfc": "Wi-Fi credential: auth/encryption by name, no network key in the text",
    "classic4k-sak00.json": "Classic 4K JSON whose Card says SAK 00 / ATQA 0000: filled from the kind, noted",
    "felica-lite-s.json": "FeliCa Lite-S with NDEF (Proxmark3 FeliCa JSON): uid = IDm",
    "felica-access-card.json": "FeliCa Standard card, memory behind keys (an arcade access card): its IDm alone",
    "felica-lite-s.nfc": "FeliCa Lite-S in a Flipper file: 28 map blocks with status flags, system blocks unread",
}


def _readme(expected: dict[str, dict[str, Any]]) -> str:
    rows = ["# Fixtures", "",
            "Made by `python tests/make_fixtures.py` (mostly through `tagd fixture make`); do not edit by hand.",
            "`expected.json` is the machine-readable form of this table; the tests read it.",
            "`tagd decode fixtures/*.nfc` decodes the good Flipper files; `tagd decode fixtures/bad` explains the bad ones",
            "(exit status 2).", "",
            "| file | kind | type | uid | decodes to / error | what it is |", "|---|---|---|---|---|---|"]
    for name, exp in expected.items():
        if "error" in exp:
            rows.append(f"| {name} | | | | error: `{exp['error']}` | broken on purpose |")
        else:
            text = exp["text"] if len(exp["text"]) <= 48 else exp["text"][:45] + "..."
            shown = f"`{text}`" if text else "(empty)"
            rows.append(f"| {name} | {exp['kind']} | {exp['type']} | {exp['uid']} | {shown} | {NOTES.get(name, '')} |")
    return "\n".join(rows) + "\n"


def make_dump_from(memory: bytes) -> dumps.TagDump:
    return dumps.type2_dump(bytes(memory), type2.TYPE2_KINDS["ntag215"].version)


def _hex(b: bytes) -> str:
    return " ".join(f"{x:02X}" for x in b)


def _flipper_v2(d: dumps.TagDump, device: str, version: bytes, uid_line: bytes | None = None) -> str:
    """A Flipper version 2 file: chip named in 'Device type', ATQA stored LSB first."""
    pages = len(d.memory) // 4
    lines = ["Filetype: Flipper NFC device", "Version: 2",
             "# Nfc device type can be UID, Mifare Ultralight, Mifare Classic, Bank card",
             f"Device type: {device}", "# UID, ATQA and SAK are common for all formats",
             f"UID: {_hex(uid_line or d.uid)}", "ATQA: 44 00", "SAK: 00", "# Mifare Ultralight specific data",
             "Data format version: 1", f"Signature: {_hex(bytes(32))}", f"Mifare version: {_hex(version)}",
             "Counter 0: 0", "Tearing 0: 00", "Counter 1: 0", "Tearing 1: 00", "Counter 2: 0", "Tearing 2: 00",
             f"Pages total: {pages}"]
    lines += [f"Page {p}: {_hex(d.memory[p * 4:p * 4 + 4])}" for p in range(pages)]
    return "\n".join(lines) + "\n"


def build(out: pathlib.Path) -> dict[str, dict[str, Any]]:
    """Write every fixture under ``out`` and return the expectations (also written as expected.json)."""
    (out / "bad").mkdir(parents=True, exist_ok=True)
    expected: dict[str, dict[str, Any]] = {}

    def good(name: str, dump: dumps.TagDump | None, text: str, kind: str, token_type: str, **extra: Any) -> None:
        if dump is not None:
            dumps.save(dump, out / name)
        uid = dumps.load(out / name).uid.hex()
        expected[name] = {"text": text, "uid": uid, "type": token_type, "kind": kind, **extra}

    def make(kind: str, name: str, text: str | None = None, uri: str | None = None, uid: str | None = None) -> None:
        argv = ["fixture", "make", "--kind", kind, "-o", str(out / name)]
        argv += ["--text", text] if text is not None else ["--uri", str(uri)]
        argv += ["--uid", uid] if uid else []
        if tagd_main(argv) != 0:
            raise SystemExit(f"tagd fixture make failed for {name}")
        token_type = "MIFARE" if kind.startswith("classic") else "FeliCa" if kind == "felica" else "NTAG"
        good(name, None, text if text is not None else str(uri), kind, token_type)

    # made with the CLI: the demo's tags, and one per kind and format
    make("ntag215", "snes-ntag215.nfc", "**launch.system:snes", uid="04a1b2c3d4e5f6")
    make("ntag213", "smw-ntag213.nfc", "@SNES/Super Mario World", uid="0416c6c2d73881")
    make("classic1k", "genesis-classic1k.nfc", "**launch.random:genesis", uid="a1b2c3d4")
    make("ultralight", "ultralight.nfc", "**launch.system:nes")
    make("ultralight", "ultralight.bin", "**launch.system:gameboy")
    make("ntag213", "ntag213.bin", "**launch.system:mastersystem")
    make("ntag216", "ntag216.bin", "**launch.system:n64")
    make("classic4k", "classic4k.json", "**launch.system:psx")
    make("classic1k", "classic1k.mfd", "**launch.system:gba")
    make("ntag213", "uri-ntag213.json", uri="https://zaparoo.org/docs/")
    make("felica", "felica-lite-s.json", "**launch.system:pcengine", uid="012e4cd19a6b3f20")
    make("felica", "felica-lite-s.nfc", "**launch.system:wonderswan", uid="012e4cd19a6b3f21")
    if tagd_main(["fixture", "make", "--kind", "felica", "--no-ndef", "--uid", "012e00aa55cc3399",
                  "-o", str(out / "felica-access-card.json")]) != 0:
        raise SystemExit("tagd fixture make failed for felica-access-card.json")
    good("felica-access-card.json", None, "", "felica", "FeliCa", errors_contain="not readable without keys")

    # a factory-fresh NTAG213: Lock Control TLV then an empty NDEF TLV
    fresh = dumps.type2_dump(type2.blank_image("ntag213", bytes.fromhex("04010203040506")),
                             type2.TYPE2_KINDS["ntag213"].version)
    good("factory-ntag213.nfc", fresh, "", "ntag213", "NTAG")

    # an NTAG215 with a 300-byte ZapScript: the TLV needs the 3-byte length form
    long_text = ("**launch.search:" + "Legend of Zelda, The - A Link to the Past (USA)||" * 7)[:300]
    d = make_dump("ntag215", records.text_message(long_text), bytes.fromhex("04aabbccddeeff"))
    good("long-zapscript-ntag215.nfc", d, long_text, "ntag215", "NTAG")

    # an NTAG216 whose CC claims NTAG215 (0x3E): GET_VERSION must win
    d = make_dump("ntag216", records.text_message("**launch.system:saturn"), bytes.fromhex("04111111111111"))
    d.memory = d.memory[:14] + b"\x3e" + d.memory[15:]
    good("wrong-cc-ntag216.nfc", d, "**launch.system:saturn", "ntag216", "NTAG")

    # a UTF-16 Text record (ndeflib's own encoder, an independent check of the record parser)
    msg = b"".join(ndef.message_encoder([ndef.TextRecord("**launch.system:ドリームキャスト", "ja", "UTF-16")]))
    d = make_dump("ntag215", msg, bytes.fromhex("04222222222222"))
    good("utf16-ntag215.json", d, "**launch.system:ドリームキャスト", "ntag215", "NTAG")

    # an amiibo-style image: 540 bytes, not NDEF, with the header Zaparoo Core tests (bytes 9-15
    # 48 0F E0 F1 10 FF EE): an Amiibo token whose data is the character ID in pages 21-22
    amiibo = bytearray(type2.blank_image("ntag215", bytes.fromhex("04333333333333")))
    amiibo[9:20] = bytes.fromhex("480FE0 F110FFEE A5000000")
    amiibo[20:520] = bytes((i * 7 + 3) & 0xFF for i in range(20, 520))
    (out / "amiibo-style.bin").write_bytes(bytes(amiibo))
    good("amiibo-style.bin", None, "", "ntag215", "Amiibo", data=bytes(amiibo[84:92]).hex())

    # a toy that is not NDEF and not an amiibo (lock bytes 00 00): data = pages 0 to the last user page
    toy = bytearray(amiibo)
    toy[0:12] = type2.head_pages(bytes.fromhex("04555555555555"))
    (out / "toy-ntag215.bin").write_bytes(bytes(toy))
    good("toy-ntag215.bin", None, "", "ntag215", "NTAG", data=bytes(toy[:130 * 4]).hex())

    # the shape of a Proxmark3 `hf mfu dump` binary: a 56-byte mfu_dump_t prefix (GET_VERSION, TBO, TBO1, last page
    # index, signature, 3 counters with tearing flags), then the pages (596 bytes for an NTAG215)
    d = make_dump("ntag215", records.text_message("**launch.system:pce"), bytes.fromhex("04666666666666"))
    prefix = d.version + bytes([0, 0, 0, len(d.memory) // 4 - 1]) + bytes(range(32)) + bytes(12)
    (out / "proxmark-ntag215.bin").write_bytes(prefix + d.memory)
    good("proxmark-ntag215.bin", None, "**launch.system:pce", "ntag215", "NTAG")

    # an NTAG203 (42 pages, no GET_VERSION) in a Flipper version 2 file, as Flipper wrote them
    d = make_dump("ntag203", records.text_message("**launch.system:sg1000"), bytes.fromhex("04777777777777"))
    (out / "ntag203.nfc").write_text(_flipper_v2(d, "NTAG203", bytes(8)))
    good("ntag203.nfc", None, "**launch.system:sg1000", "ntag203", "NTAG")


    d = make_dump("ntag215", records.text_message("**launch.system:genesis"), bytes.fromhex("04444444444444"))
    (out / "flipper-v2-ntag215.nfc").write_text(_flipper_v2(d, "NTAG215", d.version))
    good("flipper-v2-ntag215.nfc", None, "**launch.system:genesis", "ntag215", "NTAG")

    # a Classic 1K whose first NDEF sector's keys were unknown when it was dumped ('??' in the file)
    d = make_dump("classic1k", records.text_message("**launch.system:amiga"), bytes.fromhex("b1b2b3b4"))
    d.unknown = frozenset(range(4 * 16, 8 * 16))
    good("classic1k-unknown-keys.nfc", d, "", "classic1k", "MIFARE", errors_contain="sector 1: keys unknown")

    # a Classic 1K with a 7-byte UID (the Flipper file names it; block 0 cannot)
    d = make_dump("classic1k", records.text_message("**launch.system:atari2600"), bytes.fromhex("c1c2c3c4"))
    d.uid, d.atqa = bytes.fromhex("04c1c2c3c4c5c6"), 0x0044
    good("classic1k-7byte-uid.nfc", d, "**launch.system:atari2600", "classic1k", "MIFARE")

    # an amiibo as a popular converter writes it: the UID line holds BCC0 (pages 0-1 are right): a warning, pages win
    (out / "amiibo-uid-line.nfc").write_text(_flipper_v2(make_dump_from(amiibo), "NTAG215", type2.TYPE2_KINDS["ntag215"].version,
                                                         uid_line=bytes(amiibo[0:4] + amiibo[4:7])))
    good("amiibo-uid-line.nfc", None, "", "ntag215", "Amiibo", data=bytes(amiibo[84:92]).hex(),
         notes_contain="disagrees with pages 0–1")

    # a URI record padded with NUL bytes by the app that wrote it: stripped, with a note
    msg = bytes.fromhex("D1 01 15 55 04") + b"www.guidoz.com" + bytes(6)
    good("uri-nul-padded-ntag213.nfc", make_dump("ntag213", msg, bytes.fromhex("04888888888888")),
         "https://www.guidoz.com", "ntag213", "NTAG", notes_contain="URI padded with 6 NUL bytes")

    # a Wi-Fi credential: its description names the authentication and encryption types
    wifi = ndef.WifiSimpleConfigRecord()
    cred = ndef.wifi.Credential()
    cred.set_attribute("network-index", 1)
    cred.set_attribute("ssid", b"arcade")
    cred.set_attribute("authentication-type", "WPA2-Personal")
    cred.set_attribute("encryption-type", "AES")
    cred.set_attribute("network-key", b"not-in-the-token")
    cred.set_attribute("mac-address", b"\xff" * 6)
    wifi.set_attribute("credential", cred)
    msg = b"".join(ndef.message_encoder([wifi]))
    good("wifi-ntag215.nfc", make_dump("ntag215", msg, bytes.fromhex("04999999999999")),
         '{"auth":"WPA2-Personal","encryption":"AES","ssid":"arcade","type":"wifi"}', "ntag215", "NTAG")

    # a Proxmark3 Classic JSON whose Card section says SAK 00 / ATQA 0000: SAK/ATQA come from the kind, noted
    doc = json.loads((out / "classic4k.json").read_text())
    doc["Card"].update(SAK="00", ATQA="0000")
    (out / "classic4k-sak00.json").write_text(json.dumps(doc, indent=2) + "\n")
    good("classic4k-sak00.json", None, "**launch.system:psx", "classic4k", "MIFARE", notes_contain="SAK 00")

    # broken files: each must say which file, where and why
    snes = (out / "snes-ntag215.nfc").read_text().splitlines()

    def bad(name: str, content: str | bytes, error: str) -> None:
        path = out / "bad" / name
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
        expected[f"bad/{name}"] = {"error": error}

    kept = sum(ln.startswith("Page ") for ln in snes[:40])
    bad("truncated.nfc", "\n".join(snes[:40]) + "\n", f"end of file: page {kept} missing")
    page5 = next(i for i, ln in enumerate(snes) if ln.startswith("Page 5:"))
    bad("corrupt-page.nfc", "\n".join(snes[:page5] + [snes[page5][:-3]] + snes[page5 + 1:]) + "\n",
        f"line {page5 + 1}: page 5 has 3 bytes, expected 4")
    bad("not-hex.nfc", "\n".join(snes[:page5] + ["Page 5: 03 ZZ D1 01"] + snes[page5 + 1:]) + "\n",
        f"line {page5 + 1}: page 5: 'ZZ' is not a hex byte")
    bad("version9.nfc", "Filetype: Flipper NFC device\nVersion: 9\nDevice type: NTAG/Ultralight\nUID: 04 01 02 03 04 05 06\n",
        "line 2: Flipper NFC version '9' is not supported")
    bad("uid-only.nfc", "Filetype: Flipper NFC device\nVersion: 4\nDevice type: ISO14443-3A\nUID: 04 01 02 03 04 05 06\n"
        "ATQA: 00 44\nSAK: 00\n", "line 3: device type 'ISO14443-3A' holds only a UID")
    bad("truncated.json", (out / "classic4k.json").read_text()[:700], "invalid JSON")
    doc = json.loads((out / "uri-ntag213.json").read_text())
    del doc["blocks"]["7"]
    bad("missing-page.json", json.dumps(doc, indent=2) + "\n", "blocks.7: block 7 missing")
    bad("odd-size.bin", bytes(range(37)), "offset 0x25: 37 bytes is not a tag image")
    bad("not-a-dump.txt", "Shopping list:\n- cartridges\n- tags\n", "not a tag dump")
    # the shapes of dumps that are not Type 2 or Classic at all (ISO 15693, iCLASS): refused, not made-up UIDs
    bad("iso15693.bin", bytes(128), "not a Type 2 tag image: BCC0 (page 0, byte 3) is 00")
    bad("iclass.bin", bytes.fromhex("000B0FFFF7FF12E0") + bytes(8) + bytes(range(240)),
        "not a Type 2 tag image: BCC0 (page 0, byte 3) is FF")
    bad("iso15693.json", json.dumps({"Created": "proxmark3", "FileType": "15693", "raw": "00" * 32}, indent=2) + "\n",
        "FileType: '15693': a dump of an ISO 15693 (vicinity) tag")

    # FeliCa dumps cut short: the attribute block promises more blocks than the file has; an IDm of 4 bytes
    doc = json.loads((out / "felica-lite-s.json").read_text())
    del doc["systems"][0]["nodes"][0]["data"]["0002"]
    bad("felica-missing-block.json", json.dumps(doc, indent=2) + "\n",
        "systems[0].nodes[0].data.0002: block 0002 missing: the attribute block says the NDEF message is")
    doc = json.loads((out / "felica-lite-s.json").read_text())
    doc["systems"][0]["idm"] = "012E4CD1"
    bad("felica-short-idm.json", json.dumps(doc, indent=2) + "\n", "systems[0].idm: has 4 bytes, expected 8")
    lite = (out / "felica-lite-s.nfc").read_text().replace("Block 2: 00 00", "Block 2: 01 A8")
    bad("felica-unread-block.nfc", lite, "end of file: block 0002 missing: the attribute block says the NDEF message is")

    (out / "expected.json").write_text(json.dumps(expected, indent=2, ensure_ascii=False) + "\n")
    (out / "README.md").write_text(_readme(expected))
    return expected


if __name__ == "__main__":
    target = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else FIXTURES
    print(f"{len(build(target))} fixtures in {target}")
