"""Dump files: each format loads and saves, formats are detected by content, and every error names file, place and reason."""

import json

import pytest

from tagd.ndef import classic, dumps, type2
from tagd.ndef.records import text_message

UID7 = bytes.fromhex("04a1b2c3d4e5f6")


def ntag(kind="ntag215", text="**launch.system:snes"):
    image = type2.blank_image(kind, UID7)
    image = type2.apply_writes(image, type2.plan_write(image, text_message(text)))
    return dumps.type2_dump(image, type2.TYPE2_KINDS[kind].version)


def flipper_lines(d):
    return dumps.dumps(d, "nfc").decode().splitlines()


def error_of(data, name="t.nfc"):
    with pytest.raises(dumps.DumpError) as err:
        dumps.loads(data if isinstance(data, bytes) else data.encode(), name)
    return err.value


# --- Flipper ---------------------------------------------------------------------

FLIPPER_V4_NTAG = """Filetype: Flipper NFC device
Version: 4
# Device type can be ISO14443-3A, ISO14443-3B, ISO14443-4A, NTAG/Ultralight, Mifare Classic, Mifare DESFire
Device type: NTAG/Ultralight
# UID is common for all formats
UID: 04 85 90 54 12 98 23
# ISO14443-3A specific data
ATQA: 00 44
SAK: 00
# NTAG/Ultralight specific data
Data format version: 2
NTAG/Ultralight type: NTAG213
Signature: 1B 84 EB 70 BD 4C BD 1B 1D E4 98 0B 18 58 BD 7C 72 85 B4 E4 7B 38 8E 96 CF 88 6B EE A3 43 AD 90
Mifare version: 00 04 04 02 01 00 0F 03
Counter 0: 0
Tearing 0: 00
Counter 1: 0
Tearing 1: 00
Counter 2: 0
Tearing 2: 00
Pages total: 45
Pages read: 45
""" + "".join(f"Page {p}: 00 00 00 00\n" for p in range(45)) + "Failed authentication attempts: 0\n"


def test_flipper_v4_ntag_fields_are_read():
    d = dumps.loads(FLIPPER_V4_NTAG.encode(), "x.nfc")
    assert d.kind == "ntag213" and d.uid == bytes.fromhex("04859054129823")
    assert d.atqa == 0x0044 and d.sak == 0 and len(d.memory) == 180
    assert d.version == bytes.fromhex("0004040201000F03") and d.signature[:2] == b"\x1b\x84"


def test_flipper_v2_and_v3_name_the_chip_in_device_type():
    v3 = FLIPPER_V4_NTAG.replace("Version: 4", "Version: 3").replace("Device type: NTAG/Ultralight", "Device type: NTAG213")
    v3 = v3.replace("NTAG/Ultralight type: NTAG213\n", "").replace("Mifare version: 00 04 04 02 01 00 0F 03", "Mifare version: " + "00 " * 7 + "00")
    assert dumps.loads(v3.encode()).kind == "ntag213"


def test_flipper_v2_atqa_is_lsb_first_and_v3_msb_first():
    v2 = FLIPPER_V4_NTAG.replace("Version: 4", "Version: 2").replace("ATQA: 00 44", "ATQA: 44 03")
    assert dumps.loads(v2.encode()).atqa == 0x0344
    assert dumps.loads(v2.replace("Version: 2", "Version: 3").encode()).atqa == 0x4403


def test_flipper_mifare_ultralight_type_name():
    d = ntag("ultralight")
    d.version = None
    text = dumps.dumps(d, "nfc").decode()
    assert "NTAG/Ultralight type: Mifare Ultralight\n" in text
    assert dumps.loads(text.encode()).kind == "ultralight"


def test_flipper_classic_blocks_and_unknown_bytes():
    image = classic.blank_image("classic1k", bytes.fromhex("4e213b16"))
    d = dumps.classic_dump(image, frozenset(range(16, 32)))
    text = dumps.dumps(d, "nfc").decode()
    assert "Mifare Classic type: 1K" in text and "Block 1: " + "?? " * 15 + "??" in text
    assert "ATQA: 00 04" in text and "SAK: 08" in text
    back = dumps.loads(text.encode())
    assert back == d and back.uid == bytes.fromhex("4e213b16")


def test_flipper_classic_4k_and_mini():
    for kind, name in (("classic4k", "4K"), ("classicmini", "MINI")):
        d = dumps.classic_dump(classic.blank_image(kind, b"\x01\x02\x03\x04"))
        text = dumps.dumps(d, "nfc").decode()
        assert f"Mifare Classic type: {name}" in text
        assert dumps.loads(text.encode()).kind == kind


def test_flipper_classic_data_format_1_key_maps_mark_unfound_sectors_unknown():
    d = dumps.classic_dump(classic.blank_image("classic1k", b"\x01\x02\x03\x04"))
    text = dumps.dumps(d, "nfc").decode().replace("Data format version: 2", "Data format version: 1\nKey A map: 000000000000FFFD\nKey B map: 0000000000000000")
    back = dumps.loads(text.encode())
    assert back.unknown == frozenset(range(64, 128))


def test_flipper_seven_byte_uid_classic_keeps_the_file_uid():
    d = dumps.classic_dump(classic.blank_image("classic1k", b"\x01\x02\x03\x04"), uid=UID7)
    assert dumps.loads(dumps.dumps(d, "nfc")).uid == UID7


def test_flipper_pages_past_pages_read_are_unknown():
    lines = [ln for ln in FLIPPER_V4_NTAG.splitlines() if not ln.startswith(("Page 44:", "Page 43:"))]
    text = "\n".join(lines).replace("Pages read: 45", "Pages read: 43")
    d = dumps.loads(text.encode())
    assert len(d.memory) == 180 and d.unknown == frozenset(range(172, 180))


def test_flipper_comments_blank_lines_bom_and_crlf_are_fine():
    text = "\ufeff# exported\r\n\r\n" + FLIPPER_V4_NTAG.replace("\n", "\r\n")
    assert dumps.loads(text.encode()).kind == "ntag213"


@pytest.mark.parametrize("edit,where,reason", [
    (lambda t: t.replace("Page 5: 00 00 00 00", "Page 5: 00 00 00"), "line 28", "page 5 has 3 bytes, expected 4"),
    (lambda t: t.replace("Page 5: 00 00 00 00", "Page 5: 00 G0 00 00"), "line 28", "page 5: 'G0' is not a hex byte"),
    (lambda t: t.replace("Page 5: 00 00 00 00", "Page 5: 00 ?? 00 00").replace("Page 6:", "Page 6: ??"), "line 29", "page 6 has 5 bytes"),
    (lambda t: t.replace("Page 5: 00 00 00 00\n", ""), "end of file", "page 5 missing"),
    (lambda t: t.replace("Page 5:", "Page 50:"), "line 28", "page 50 is past the end"),
    (lambda t: t.replace("Page 6:", "Page 5:"), "line 29", "page 5 appears twice (also line 28)"),
    (lambda t: t.replace("Page 5:", "Page five:"), "line 28", "bad page number 'five'"),
    (lambda t: t.replace("Version: 4", "Version: 9"), "line 2", "version '9' is not supported"),
    (lambda t: t.replace("Flipper NFC device", "Flipper SubGhz"), "line 1", "not a Flipper NFC device file"),
    (lambda t: t.replace("UID: 04 85 90 54 12 98 23", "UID: 04 85"), "line 6", "UID has 2 bytes, expected 4, 7 or 10"),
    (lambda t: t.replace("ATQA: 00 44", "ATQA: 00"), "line 8", "ATQA has 1 bytes, expected 2"),
    (lambda t: t.replace("Device type: NTAG/Ultralight", "Device type: Mifare DESFire"), "line 4", "not a tag tagd reads"),
    (lambda t: t.replace("Device type: NTAG/Ultralight", "Device type: ISO14443-3A"), "line 4", "holds only a UID"),
    (lambda t: t.replace("Pages total: 45", "Pages total: lots"), "line 21", "Pages total is not a number"),
    (lambda t: t.replace("Pages total: 45", "Pages total: 2"), "line 21", "2 pages is not a Type 2 tag"),
    (lambda t: t.replace("UID: ", "UID "), "line 6", "expected 'Key: value'"),
    (lambda t: t.replace("Version: 4\n", ""), "header", "missing 'Version'"),
    (lambda t: t.split("Page 0:")[0], "end of file", "no 'Page N:' lines"),
    (lambda t: t.replace("SAK: 00", "SAK: 00\nSAK: 00"), "line 10", "'SAK' appears twice"),
])
def test_flipper_errors_name_the_line_and_reason(edit, where, reason):
    err = error_of(edit(FLIPPER_V4_NTAG), "fixtures/x.nfc")
    assert err.path == "fixtures/x.nfc" and err.where == where and reason in err.reason
    assert str(err) == f"fixtures/x.nfc: {err.where}: {err.reason}"


def test_flipper_classic_errors():
    text = dumps.dumps(dumps.classic_dump(classic.blank_image("classic1k", b"\x01\x02\x03\x04")), "nfc").decode()
    assert "is not supported (MINI, 1K or 4K)" in error_of(text.replace("type: 1K", "type: 2K")).reason
    err = error_of("\n".join(ln for ln in text.splitlines() if not ln.startswith("Block 63:")))
    assert err.where == "end of file" and "block 63 missing (a Mifare Classic 1K has 64 blocks)" in err.reason


def test_flipper_not_utf8_names_the_offset():
    err = error_of(b"Filetype: Flipper NFC device\nVersion: 4\nUID: \xff\n")
    assert err.where == "offset 0x2d" and err.reason == "not UTF-8 text"


# --- Proxmark3 JSON -------------------------------------------------------------

def test_proxmark_mfu_fields_follow_the_proxmark_client():
    doc = json.loads(dumps.dumps(ntag("ntag215"), "json"))
    assert doc["FileType"] == "mfu" and doc["Card"]["UID"] == UID7.hex().upper()
    assert doc["Card"]["Version"] == "0004040201001103" and doc["Card"]["ATQA"] == "4400"
    assert {"TBO_0", "TBO_1", "Signature", "Counter0", "Tearing2"} <= set(doc["Card"])
    assert len(doc["blocks"]) == 135 and doc["blocks"]["0"] == UID7[:3].hex().upper() + "%02X" % (0x88 ^ 0x04 ^ 0xA1 ^ 0xB2)


def test_proxmark_mfu_without_atqa_uses_ntag_defaults():
    doc = {"Created": "proxmark3", "FileType": "mfu", "Card": {"UID": UID7.hex(), "Version": "0004040201000F03"},
           "blocks": {str(i): "00000000" for i in range(45)}}
    d = dumps.loads(json.dumps(doc).encode())
    assert (d.kind, d.atqa, d.sak, d.uid) == ("ntag213", 0x0044, 0x00, UID7)


def test_proxmark_mfcard_atqa_is_lsb_first_and_keys_are_exported():
    d = dumps.classic_dump(classic.blank_image("classic4k", b"\x01\x02\x03\x04"))
    doc = json.loads(dumps.dumps(d, "json"))
    assert doc["FileType"] == "mfcard" and doc["Card"]["ATQA"] == "0200" and doc["Card"]["SAK"] == "18"
    assert len(doc["blocks"]) == 256 and doc["SectorKeys"]["39"]["AccessConditions"] == "FF078069"


def test_proxmark_sector_keys_fill_zeroed_trailer_keys():
    d = dumps.classic_dump(classic.blank_image("classic1k", b"\x01\x02\x03\x04"))
    doc = json.loads(dumps.dumps(d, "json"))
    doc["blocks"]["3"] = "000000000000FF078069" + "000000000000"
    doc["FileType"] = "mfc v2"
    assert dumps.loads(json.dumps(doc).encode()).memory == d.memory


@pytest.mark.parametrize("edit,where,reason", [
    (lambda d: d["blocks"].pop("7"), "blocks.7", "block 7 missing"),
    (lambda d: d["blocks"].update({"7": "0000"}), "blocks.7", "has 2 bytes, expected 4"),
    (lambda d: d["blocks"].update({"7": "zz000000"}), "blocks.7", "is not hex"),
    (lambda d: d["blocks"].update({"7": 7}), "blocks.7", "expected a hex string, got int"),
    (lambda d: d["blocks"].update({"x": "00000000"}), "blocks", "block number 'x' is not a number"),
    (lambda d: d["blocks"].update({"07": "00000000"}), "blocks.07", "block 7 appears twice"),
    (lambda d: d.update(FileType="hf-14a"), "FileType", "'hf-14a' is not supported"),
    (lambda d: d.pop("blocks"), "top level", "missing 'Card' object or 'blocks' map"),
    (lambda d: d["Card"].update(UID="0102"), "Card.UID", "has 2 bytes"),
    (lambda d: d["Card"].update(Version="00"), "Card.Version", "has 1 bytes, expected 8"),
    (lambda d: d.update(blocks={}), "blocks", "no blocks"),
])
def test_proxmark_errors_name_the_key_and_reason(edit, where, reason):
    doc = json.loads(dumps.dumps(ntag("ntag213"), "json"))
    edit(doc)
    err = error_of(json.dumps(doc), "d.json")
    assert err.where == where and reason in err.reason


def test_truncated_json_names_the_line():
    text = dumps.dumps(ntag("ntag213"), "json").decode()
    err = error_of(text[:200], "d.json")
    assert err.where.startswith("line ") and "invalid JSON" in err.reason


def test_json_without_card_or_blocks_is_not_a_proxmark_dump():
    assert error_of(b'{"a": [1]}', "x.json").where == "top level"


def test_classic_json_with_a_2k_block_count_is_refused():
    doc = json.loads(dumps.dumps(dumps.classic_dump(classic.blank_image("classic4k", b"\x01\x02\x03\x04")), "json"))
    doc["blocks"] = {str(i): v for i, v in list(doc["blocks"].items())[:128]}
    assert "128 blocks is not a Classic Mini/1K/4K card" in error_of(json.dumps(doc)).reason


# --- raw images and detection ---------------------------------------------------

@pytest.mark.parametrize("kind,size", [("ultralight", 64), ("ntag213", 180), ("ntag215", 540), ("ntag216", 924)])
def test_raw_type2_images_of_every_size(kind, size):
    d = ntag(kind)
    assert len(dumps.dumps(d, "bin")) == size
    back = dumps.loads(dumps.dumps(d, "bin"), "t.bin")
    assert back.kind == kind and back.uid == UID7 and (back.atqa, back.sak) == (0x0044, 0x00)


@pytest.mark.parametrize("kind,size,atqa,sak", [("classicmini", 320, 0x0004, 0x09), ("classic1k", 1024, 0x0004, 0x08),
                                                 ("classic4k", 4096, 0x0002, 0x18)])
def test_raw_classic_images_and_mfd(kind, size, atqa, sak):
    d = dumps.classic_dump(classic.blank_image(kind, b"\x0a\x0b\x0c\x0d"))
    raw = dumps.dumps(d, "mfd")
    assert len(raw) == size and dumps.detect_format(raw) == "mfd"
    back = dumps.loads(raw, "t.mfd")
    assert (back.kind, back.uid, back.atqa, back.sak) == (kind, b"\x0a\x0b\x0c\x0d", atqa, sak)


def test_raw_partial_type2_image_takes_its_kind_from_the_cc():
    assert dumps.loads(ntag("ntag215").memory[:100], "p.bin").kind == "ntag215"


def test_amiibo_size_image_is_an_ntag215_without_ndef():
    mem = bytearray(ntag("ntag215").memory)
    mem[12:16] = bytes.fromhex("F110FFEE")
    d = dumps.loads(bytes(mem), "a.bin")
    assert d.kind == "ntag215" and len(d.memory) == 540


@pytest.mark.parametrize("size,reason", [(37, "37 bytes is not a tag image"), (12, "12 bytes is not a tag image"),
                                         (8192, "8192 bytes is too large for a Type 2 image")])
def test_raw_sizes_that_no_tag_has(size, reason):
    err = error_of(b"\x04" * size, "x.bin")
    assert err.where == f"offset 0x{size:x}" and reason in err.reason


@pytest.mark.parametrize("data,fmt", [
    (b'  {"FileType": "mfu"}', "json"), (b"\xef\xbb\xbf{}", "json"),
    (b"Filetype: Flipper NFC device\n", "nfc"), (b"# made by hand\n\nFiletype: Flipper NFC device\n", "nfc"),
    (bytes(1024), "mfd"), (bytes(4096), "mfd"), (bytes(320), "mfd"), (bytes(540), "bin"), (bytes(180), "bin"),
    (b"hello\nworld\n", "text"), (b"{" + bytes(63), "bin"), (b"Filetype: " + bytes(1014), "mfd"),
])
def test_format_is_detected_from_content_not_the_name(data, fmt):
    assert dumps.detect_format(data) == fmt


def test_a_json_dump_named_nfc_still_loads(tmp_path):
    path = tmp_path / "really-json.nfc"
    path.write_bytes(dumps.dumps(ntag("ntag213"), "json"))
    assert dumps.load(path).kind == "ntag213"


def test_text_that_is_no_dump_is_refused():
    err = error_of("Shopping list:\n- tags\n- more tags\n", "list.txt")
    assert err.where == "offset 0x0" and "not a tag dump" in err.reason


def test_missing_file_and_directory_are_dumperrors(tmp_path):
    with pytest.raises(dumps.DumpError, match="No such file"):
        dumps.load(tmp_path / "nope.nfc")
    with pytest.raises(dumps.DumpError, match="directory"):
        dumps.load(tmp_path)


def test_huge_file_is_refused_without_reading_it_all(tmp_path):
    path = tmp_path / "big.bin"
    path.write_bytes(bytes(dumps.MAX_FILE + 10))
    with pytest.raises(dumps.DumpError, match="larger than"):
        dumps.load(path)


# --- saving ---------------------------------------------------------------------

def test_save_takes_the_format_from_the_extension(tmp_path):
    d = ntag("ntag213")
    for ext, start in (("nfc", b"Filetype: Flipper NFC device"), ("json", b"{"), ("bin", d.memory[:4]), ("dump", b"Filetype")):
        dumps.save(d, tmp_path / f"t.{ext}")
        assert (tmp_path / f"t.{ext}").read_bytes().startswith(start)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.bin", "t.dump", "t.json", "t.nfc"]  # no temp files left


def test_mfd_refuses_type2_and_unknown_formats_are_errors():
    with pytest.raises(ValueError, match="MIFARE Classic cards only"):
        dumps.dumps(ntag("ntag213"), "mfd")
    with pytest.raises(ValueError, match="unknown dump format"):
        dumps.dumps(ntag("ntag213"), "mct")


def test_flipper_output_has_counters_for_ntag_only():
    assert "Counter 2: 0" in flipper_lines(ntag("ntag213"))
    d = ntag("ultralight")
    d.version = None
    assert not any(ln.startswith("Counter") for ln in flipper_lines(d))


def test_format_modules_import_the_dump_model_and_never_dumps_itself():
    """Issue 11: no circle — dumps imports the formats, each format imports only the model (tagd.ndef.tagdump)."""
    import ast
    import pathlib

    import tagd.ndef

    root = pathlib.Path(tagd.ndef.__file__).parent
    for module in ("flipper_nfc", "proxmark", "raw_image", "tagdump"):
        tree = ast.parse((root / f"{module}.py").read_text())
        imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        names = {a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module == "tagd.ndef"
                 for a in n.names}
        assert "tagd.ndef.dumps" not in imported and "dumps" not in names, module
    assert set(dumps.FORMATS) == {"nfc", "json", "bin", "mfd", "eml"}
    from tagd.cli.tags import FORMATS as CLI_FORMATS

    assert CLI_FORMATS == tuple(dumps.FORMATS)  # the CLI's copy (kept to start fast) is the same list


def test_proxmark3_eml_hex_lines_load_as_the_image_they_spell():
    d = ntag("ntag213")
    text = dumps.dumps(d, "eml")
    assert dumps.detect_format(text) == "eml" and len(text.splitlines()) == 45
    assert dumps.loads(text, "t.eml").memory == d.memory
    card = dumps.classic_dump(classic.blank_image("classic1k", b"\x01\x02\x03\x04"))
    assert dumps.loads(dumps.dumps(card, "eml"), "c.eml") == card
    assert all(callable(load) and callable(dump) for load, dump in dumps.FORMATS.values())
