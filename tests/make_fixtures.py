"""Regenerate fixtures/ with tagd's own tools: `python tests/make_fixtures.py`.

Most come from `tagd fixture make`; the edge cases are built here from the same write plans a reader
uses, then saved in each dump format. tests/fixture_expectations.json says what each must decode to (or which error).
"""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys

import ndef

from tagd.cli.tags import make_dump
from tagd.ndef import dumps, records, type2

HERE = pathlib.Path(__file__).resolve().parent.parent / "fixtures"
EXPECTED = pathlib.Path(__file__).resolve().parent / "fixture_expectations.json"
expected: dict[str, dict] = {}


def make(kind: str, name: str, text: str | None = None, uri: str | None = None, uid: str | None = None) -> None:
    argv = [sys.executable, "-m", "tagd", "fixture", "make", "--kind", kind, "-o", str(HERE / name)]
    argv += ["--text", text] if text is not None else ["--uri", uri]
    if uid:
        argv += ["--uid", uid]
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
    expected[name] = {"text": text if text is not None else uri, "kind": kind,
                      "type": "MIFARE" if kind.startswith("classic") else "NTAG"}


# made with the CLI: the demo's tags and one per kind and format
make("ntag215", "snes-ntag215.nfc", "**launch.system:snes", uid="04a1b2c3d4e5f6")
make("ntag213", "smw-ntag213.nfc", "@SNES/Super Mario World", uid="0416c6c2d73881")
make("classic1k", "genesis-classic1k.nfc", "**launch.random:genesis", uid="a1b2c3d4")
make("ultralight", "ultralight.nfc", "**launch.system:nes")
make("classic4k", "classic4k.json", "**launch.system:psx")
make("ntag216", "ntag216.bin", "**launch.system:n64")
make("classic1k", "classic1k.mfd", "**launch.system:gba")
make("ntag213", "uri-ntag213.json", uri="https://zaparoo.org/docs/")

# a factory-fresh NTAG213: Lock Control TLV then an empty NDEF TLV
fresh = dumps.loads(type2.blank_image("ntag213", bytes.fromhex("04010203040506")), "fresh")
fresh.version = type2.TYPE2_KINDS["ntag213"].version
dumps.save(fresh, HERE / "factory-ntag213.nfc")
expected["factory-ntag213.nfc"] = {"text": "", "kind": "ntag213", "type": "NTAG", "uid": "04010203040506"}

# an NTAG215 with a 300-byte ZapScript: the TLV needs the 3-byte length form
long_text = "**launch.search:" + ("Legend of Zelda, The - A Link to the Past (USA)||" * 7)
long_text = (long_text + "x" * 300)[:300]
d = make_dump("ntag215", records.text_message(long_text), bytes.fromhex("04aabbccddeeff"))
dumps.save(d, HERE / "long-zapscript-ntag215.nfc")
expected["long-zapscript-ntag215.nfc"] = {"text": long_text, "kind": "ntag215", "type": "NTAG"}

# an NTAG216 whose CC claims NTAG215 (0x3E): GET_VERSION must win
d = make_dump("ntag216", records.text_message("**launch.system:saturn"), bytes.fromhex("04111111111111"))
mem = bytearray(d.memory)
mem[14] = 0x3E
d.memory = bytes(mem)
dumps.save(d, HERE / "wrong-cc-ntag216.nfc")
expected["wrong-cc-ntag216.nfc"] = {"text": "**launch.system:saturn", "kind": "ntag216", "type": "NTAG"}

# a UTF-16 Text record
msg = b"".join(ndef.message_encoder([ndef.TextRecord("**launch.system:ドリームキャスト", "ja", "UTF-16")]))
d = make_dump("ntag215", msg, bytes.fromhex("04222222222222"))
dumps.save(d, HERE / "utf16-ntag215.json")
expected["utf16-ntag215.json"] = {"text": "**launch.system:ドリームキャスト", "kind": "ntag215", "type": "NTAG"}

# an amiibo-style image: 540 bytes, not NDEF (CC F1 10 FF EE); data is the whole memory
amiibo = bytearray(type2.blank_image("ntag215", bytes.fromhex("04333333333333")))
amiibo[12:16] = bytes.fromhex("F110FFEE")
amiibo[16:20] = bytes.fromhex("A5000000")
for i in range(20, 520):
    amiibo[i] = (i * 7 + 3) & 0xFF
(HERE / "amiibo-style.bin").write_bytes(bytes(amiibo))
expected["amiibo-style.bin"] = {"text": "", "kind": "ntag215", "type": "Amiibo", "data": bytes(amiibo).hex()}

# a Flipper version 2 file (older field names), written by hand from a made tag
d = make_dump("ntag215", records.text_message("**launch.system:genesis"), bytes.fromhex("04444444444444"))
lines = ["Filetype: Flipper NFC device", "Version: 2",
         "# Nfc device type can be UID, Mifare Ultralight, Mifare Classic, Bank card",
         "Device type: NTAG215", "# UID, ATQA and SAK are common for all formats",
         "UID: " + " ".join(f"{b:02X}" for b in d.uid), "ATQA: 44 00", "SAK: 00",
         "# Mifare Ultralight specific data", "Signature: " + " ".join(["00"] * 32),
         "Mifare version: 00 04 04 02 01 00 11 03", "Counter 0: 0", "Tearing 0: 00",
         f"Pages total: {len(d.memory) // 4}"]
lines += [f"Page {p}: " + " ".join(f"{b:02X}" for b in d.memory[p * 4:p * 4 + 4]) for p in range(len(d.memory) // 4)]
(HERE / "flipper-v2-ntag215.nfc").write_text("\n".join(lines) + "\n")
expected["flipper-v2-ntag215.nfc"] = {"text": "**launch.system:genesis", "kind": "ntag215", "type": "NTAG"}

# a Classic 1K whose first NDEF sector's keys were unknown when it was dumped
d = make_dump("classic1k", records.text_message("**launch.system:amiga"), bytes.fromhex("b1b2b3b4"))
d.unknown = frozenset(range(4 * 16, 8 * 16))
dumps.save(d, HERE / "classic1k-unknown-keys.nfc")
expected["classic1k-unknown-keys.nfc"] = {"text": "", "kind": "classic1k", "type": "MIFARE",
                                          "errors_contain": "sector 1: keys unknown"}

# broken files
good = (HERE / "snes-ntag215.nfc").read_text().splitlines()
(HERE / "bad-truncated.nfc").write_text("\n".join(good[:40]) + "\n")
expected["bad-truncated.nfc"] = {"error": "page 24 missing"}
corrupt = [ln.replace("Page 5: ", "Page 5: ZZ ") if ln.startswith("Page 5:") else ln for ln in good]
(HERE / "bad-corrupt-page.nfc").write_text("\n".join(corrupt) + "\n")
expected["bad-corrupt-page.nfc"] = {"error": "line"}
(HERE / "bad-truncated.json").write_text((HERE / "classic4k.json").read_text()[:700])
expected["bad-truncated.json"] = {"error": "invalid JSON"}
(HERE / "bad-odd-size.bin").write_bytes(bytes(range(37)))
expected["bad-odd-size.bin"] = {"error": "37 bytes is not a tag image"}
(HERE / "bad-version9.nfc").write_text("Filetype: Flipper NFC device\nVersion: 9\nDevice type: NTAG/Ultralight\nUID: 04 01 02 03 04 05 06\n")
expected["bad-version9.nfc"] = {"error": "version '9' is not supported"}

EXPECTED.write_text(json.dumps(expected, indent=2, ensure_ascii=False) + "\n")
print(f"{len(expected)} fixtures")
