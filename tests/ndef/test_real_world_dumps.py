"""Issue 14, "Dump loading": what public dump files taught the loaders, one test per finding.

The shapes of those files are rebuilt in fixtures/ by tests/make_fixtures.py; the public files themselves
are read in place from ../shared/dumps-public (never copied into the repository)."""

import json
import os
import pathlib
import subprocess
import sys

import pytest

from conftest import FIXTURES, ROOT, need
from tagd.cli import main
from tagd.cli.tags import make_dump
from tagd.ndef import dumps, records, type2
from tagd.ndef.decode import decode_dump

PUBLIC = pathlib.Path(os.environ.get("TAGD_PUBLIC_DUMPS", ROOT.parent / "shared" / "dumps-public"))
PUBLIC_FILES = sorted(p.name for p in PUBLIC.iterdir() if p.suffix not in (".md", ".tsv")) if PUBLIC.is_dir() else []
EXPECTED = json.loads((FIXTURES / "expected.json").read_text())


def ntag(kind="ntag215", text="**launch.system:pce", uid="04666666666666"):
    return make_dump(kind, records.text_message(text), bytes.fromhex(uid))


def flipper(d, uid_line=None):
    text = dumps.dumps(d, "nfc").decode()
    return text.replace(f"UID: {' '.join(f'{b:02X}' for b in d.uid)}", f"UID: {uid_line}") if uid_line else text


# 1. Proxmark3 MFU .bin -------------------------------------------------------------------------------------

def test_proxmark3_mfu_bin_header_is_skipped_not_read_as_pages():
    d = dumps.load(FIXTURES / "proxmark-ntag215.bin")
    assert (FIXTURES / "proxmark-ntag215.bin").stat().st_size == 596
    assert (d.uid.hex(), d.kind, len(d.memory)) == ("04666666666666", "ntag215", 540)
    assert d.version == type2.TYPE2_KINDS["ntag215"].version and d.signature == bytes(range(32))
    assert decode_dump(d).text == "**launch.system:pce"


def test_proxmark3_old_48_byte_mfu_prefix_is_skipped_too():
    d = ntag()
    old = d.version + bytes(2) + bytes(3) + bytes(2) + bytes(1) + bytes(range(32))  # version tbo tearing pack tbo1 sig
    back = dumps.loads(old + d.memory, "old.bin")
    assert back.uid == d.uid and back.memory == d.memory and back.signature == bytes(range(32))


def test_proxmark3_mfu_json_raw_form_loads_like_the_bin():
    data = (FIXTURES / "proxmark-ntag215.bin").read_bytes()
    doc = {"Created": "proxmark3", "FileType": "mfu", "raw": data.hex().upper()}
    assert dumps.loads(json.dumps(doc).encode(), "raw.json") == dumps.load(FIXTURES / "proxmark-ntag215.bin")


def test_a_raw_image_that_merely_fits_the_prefix_arithmetic_stays_a_raw_image():
    d = ntag("ntag213")
    mem = bytearray(d.memory)
    mem[11] = (len(mem) - 56) // 4 - 1  # the byte where a prefix keeps its last page index
    assert dumps.loads(bytes(mem), "raw.bin").uid == d.uid


# 2. Images that are not Type 2 ------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["bad/iso15693.bin", "bad/iclass.bin", "bad/iso15693.json"])
def test_non_type2_images_are_refused_with_the_reason(name):
    with pytest.raises(dumps.DumpError) as err:
        dumps.load(FIXTURES / name)
    assert EXPECTED[name]["error"] in str(err.value) and "tagd reads" in str(err.value)


def test_a_named_type2_dump_with_wrong_check_bytes_still_loads_but_says_so():
    d = ntag()
    mem = bytearray(d.memory)
    mem[3] ^= 0xFF
    back = dumps.loads(flipper(dumps.type2_dump(bytes(mem), d.version)).encode(), "x.nfc")
    assert back.uid == d.uid and any("BCC0" in n for n in back.notes)


# 3. SAK/ATQA that contradict the memory --------------------------------------------------------------------

def test_classic_json_with_sak_00_atqa_0000_takes_sak_and_atqa_from_its_kind():
    d = dumps.load(FIXTURES / "classic4k-sak00.json")
    assert (d.kind, d.sak, d.atqa) == ("classic4k", 0x18, 0x0002)
    assert d.notes == ("SAK 00 says Type 2, the memory is classic4k: using SAK 18",
                       "ATQA 0000 has no anticollision bit: using 0002")


def test_a_sak_saying_4k_on_a_1k_image_gives_the_1k_sak_with_a_note():
    d = make_dump("classic1k", records.text_message("x"), bytes.fromhex("a1b2c3d4"))
    d.sak = 0x98
    back = dumps.loads(dumps.dumps(d, "nfc"), "x.nfc")
    assert back.sak == 0x08 and back.notes == ("SAK 98 says classic4k, the memory is classic1k: using SAK 08",)


def test_a_type2_dump_whose_sak_says_classic_gets_sak_00():
    d = ntag()
    d.sak = 0x08
    assert dumps.loads(dumps.dumps(d, "json"), "x.json").sak == 0x00


# 5. Smaller ------------------------------------------------------------------------------------------------

def test_ntag203_is_reported_as_ntag203_not_ntag213():
    d = dumps.load(FIXTURES / "ntag203.nfc")
    assert d.kind == "ntag203" and len(d.memory) == 42 * 4 and d.version is None
    assert dumps.loads(d.memory, "ntag203.bin").kind == "ntag203"
    assert decode_dump(d).kind == "ntag203" and decode_dump(d).capacity == 144


def test_ntag203_dynamic_lock_bits_lock_groups_of_four_pages_on_the_tag_and_in_the_emulator():
    from tagd.sim.tags import EmulatedTag, Nak

    d = dumps.load(FIXTURES / "ntag203.nfc")
    mem = bytearray(d.memory)
    mem[40 * 4] = 0x10 | 0x0F  # bit 4 locks pages 16-19; bits 0-3 lock the lock bits, not pages
    assert type2.Type2Memory(bytes(mem), None, "ntag203").locked_pages == frozenset(range(16, 20))
    tag = EmulatedTag(dumps.type2_dump(bytes(mem), named="ntag203"))
    assert isinstance(tag.transceive(b"\xa2\x13abcd"), Nak)
    tag.select()
    assert tag.transceive(b"\xa2\x14abcd") == b"\x0a"


def test_uid_line_that_disagrees_with_pages_0_1_warns_and_the_pages_win():
    d = dumps.load(FIXTURES / "amiibo-uid-line.nfc")
    assert d.uid.hex() == "04333333333333"
    assert d.notes == ("UID line 0433338c333333 disagrees with pages 0–1 (04333333333333): using pages 0–1, "
                       "the UID the tag answers with",)


def test_uid_line_that_disagrees_with_pages_whose_check_bytes_are_wrong_keeps_the_line():
    d = ntag()
    mem = bytearray(d.memory)
    mem[0] ^= 0x01  # the pages no longer carry a valid UID
    back = dumps.loads(flipper(dumps.type2_dump(bytes(mem), d.version, uid=d.uid)).encode(), "x.nfc")
    assert back.uid == d.uid and "using the UID line" in back.notes[0]


def test_uri_record_padded_with_trailing_nuls_is_stripped_and_noted():
    decoded = decode_dump(dumps.load(FIXTURES / "uri-nul-padded-ntag213.nfc"))
    assert decoded.text == "https://www.guidoz.com" and decoded.errors == []
    assert decoded.notes == ["record 1: URI padded with 6 NUL bytes (stripped)"]


def test_wifi_records_use_the_type_names_not_python_tuple_text():
    decoded = decode_dump(dumps.load(FIXTURES / "wifi-ntag215.nfc"))
    assert json.loads(decoded.text) == {"type": "wifi", "ssid": "arcade", "auth": "WPA2-Personal", "encryption": "AES"}
    assert "not-in-the-token" not in decoded.text  # the network key is a secret


def test_wifi_mixed_mode_names_both_types():
    from tagd.ndef.records import _wifi_name

    assert _wifi_name((0x22, "WPA-Personal", "WPA2-Personal")) == "WPA-Personal+WPA2-Personal"
    assert _wifi_name((0x4000,)) == "0x4000"


# tagd decode on any file -----------------------------------------------------------------------------------

def test_decode_every_public_dump_exits_0_or_2_and_never_prints_a_traceback():
    need(bool(PUBLIC_FILES), f"public dumps in {PUBLIC}")
    r = subprocess.run([sys.executable, "-m", "tagd", "decode", "--all", *PUBLIC_FILES], cwd=PUBLIC,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    decoded = {json.loads(line)["file"] for line in r.stdout.splitlines()}
    refused = {line.split(": ")[1] for line in r.stderr.splitlines() if ": warning: " not in line}
    assert decoded | refused == set(PUBLIC_FILES) and not decoded & refused


@pytest.mark.parametrize("name", PUBLIC_FILES or ["(none)"])
def test_decode_of_a_public_dump_gives_a_token_or_a_reason_naming_the_file(name, capsys):
    need(bool(PUBLIC_FILES), f"public dumps in {PUBLIC}")
    status = main(["decode", str(PUBLIC / name)])
    out, err = capsys.readouterr()
    if status == 0:
        token = json.loads(out)
        assert token["uid"] and token["type"] in ("NTAG", "MIFARE", "Amiibo")
    else:
        assert status == 2 and out == "" and err.startswith(f"tagd decode: {PUBLIC / name}: ")


PUBLIC_TOKENS = {  # (uid, type, text or None, data prefix) for files whose right answer is known
    "librfidx__tests_assets_ntag215.bin": ("0448b8262879bf", "Amiibo", "", "0100000000040002"),
    "librfidx__tests_assets_ntag215.nfc": ("0448b8262879bf", "Amiibo", "", "0100000000040002"),
    "amiibo__Box_boy_Amiibo_Qbby.nfc": ("04386e42724c80", "Amiibo", "", "1f400000035e1002"),
    "uber__NFC_Fun_Files_Empty_NTAG203.nfc": ("049056c2833680", "NTAG", "", ""),
    "uber__NFC_Fun_Files_GuidoZ.nfc": ("043991c2fc6780", "NTAG", "https://www.guidoz.com", "d101155504"),
    "trolls__NFC_Files_PrankOwl.nfc": ("043991c2fc6780", "NTAG", "https://prankowl.com", "d1010d5504"),
    "hfdumps__dumps_hf-mf-362E8EB3-dump.json": ("00000000", "MIFARE", "", ""),
}


@pytest.mark.parametrize("name", sorted(PUBLIC_TOKENS))
def test_public_dumps_whose_answer_is_known_decode_to_it(name):
    need((PUBLIC / name).is_file(), f"public dump {PUBLIC / name}")
    token = decode_dump(dumps.load(PUBLIC / name)).to_token()
    uid, token_type, text, data = PUBLIC_TOKENS[name]
    assert (token.uid, token.type, token.text) == (uid, token_type, text) and token.data.startswith(data)


@pytest.mark.parametrize("a,b", [
    ("hfdumps__defcon_hf-mf-4D0233C0-dump.bin", "hfdumps__defcon_hf-mf-4D0233C0-dump.json"),
    ("hfdumps__dumps_hf-mf-93B4C7D1-dump.bin", "hfdumps__dumps_hf-mf-93B4C7D1-dump.json"),
    ("librfidx__tests_assets_mifare-classic-1k-v2.json", "librfidx__tests_assets_mifare-classic-1k-v2.nfc"),
    ("librfidx__tests_assets_ntag215.bin", "librfidx__tests_assets_ntag215.nfc"),
    ("classicconv__assets_example.bin", "classicconv__assets_example.nfc"),
])
def test_two_formats_of_the_same_public_tag_give_the_same_token(a, b):
    need((PUBLIC / a).is_file() and (PUBLIC / b).is_file(), f"public dumps {a}, {b}")
    ta, tb = (decode_dump(dumps.load(PUBLIC / n)).to_token() for n in (a, b))
    assert (ta.uid, ta.type, ta.text, ta.data) == (tb.uid, tb.type, tb.text, tb.data)
