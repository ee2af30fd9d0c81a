"""Issue 14 item 10: FeliCa cards as dump files — Proxmark3's FeliCa JSON (`hf felica dump`, read back by
`hf felica sim -f`) and Flipper's FeliCa .nfc load into a FeliCa TagDump (IDm, PMm, system codes, the Lite-S
blocks) and are written back; a damaged file is a DumpError naming where and why, whatever its content."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, strategies as st

from tagd.ndef import dumps, felica, records
from tagd.ndef.decode import decode_dump
from tagd.ndef.tagdump import TagDump

IDM = bytes.fromhex("012E4CD19A6B3F20")


def lite_s(text: str = "**launch.system:snes") -> TagDump:
    return felica.lite_s_dump(IDM, records.text_message(text))


def proxmark_shaped(d: TagDump) -> dict:
    """The shape `hf felica dump` gives a Lite-S: the data under service 0B00 and again under 0900, the
    REG block 000E and the system blocks 0080+ after the user blocks, metadata the card did not answer as null,
    and a second system — what a dump of a real card holds beyond what tagd keeps."""
    blocks = {f"{b:04X}": d.memory[b * 16:(b + 1) * 16].hex().upper() for b in range(len(d.memory) // 16)}
    blocks.update({"000E": "00" * 16, "0082": IDM.hex().upper() + "00" * 8, "0085": "88B4" + "00" * 14})
    node = {"type": "service", "des_key_version": None, "aes_key_version": None}
    return {"specification_version": None, "product_information": None, "container_issue_information": None,
            "systems": [{"code": "88B4", "idm": IDM.hex().upper(), "pmm": felica.LITE_S_PMM.hex().upper(),
                         "encryption_identifier": None,
                         "nodes": [{"type": "area", "code": "0000FFFE", "des_key_version": None,
                                    "aes_key_version": None, "data": {}},
                                   {**node, "code": "0900", "data": dict(blocks)}, {**node, "code": "0B00", "data": blocks}]},
                        {"code": "FE00", "idm": "11" + IDM.hex().upper()[2:], "pmm": felica.LITE_S_PMM.hex().upper(),
                         "encryption_identifier": "AES128", "nodes": []}]}


def loads(doc) -> TagDump:
    return dumps.loads(json.dumps(doc).encode(), "card.json")


def error(doc) -> dumps.DumpError:
    with pytest.raises(dumps.DumpError) as info:
        loads(doc) if not isinstance(doc, bytes) else dumps.loads(doc, "card.json")
    assert info.value.path == "card.json"
    return info.value


def test_a_proxmark_felica_dump_of_a_lite_s_loads_as_its_idm_pmm_systems_and_user_blocks():
    d = loads(proxmark_shaped(lite_s()))
    assert (d.kind, d.uid, d.version, d.systems) == ("felica", IDM, felica.LITE_S_PMM, (0x88B4, 0xFE00))
    assert d.memory[:len(lite_s().memory)] == lite_s().memory  # then REG (000E); the 0080+ blocks are not kept
    assert len(d.memory) == 15 * 16


def test_a_proxmark_felica_dump_decodes_to_the_felica_token_with_the_lite_s_text():
    token = decode_dump(loads(proxmark_shaped(lite_s("**launch.system:pce")))).to_token()
    assert (token.type, token.uid, token.text) == ("FeliCa", IDM.hex(), "**launch.system:pce")
    assert token.data == records.text_message("**launch.system:pce").hex()


def test_service_000b_is_read_before_0009_whatever_the_order_in_the_file():
    doc = proxmark_shaped(lite_s())
    doc["systems"][0]["nodes"][1]["data"]["0001"] = "FF" * 16  # 0900, listed first, differs
    assert loads(doc).memory[:len(lite_s().memory)] == lite_s().memory


def test_an_access_card_dump_with_no_public_service_is_its_idm_alone():
    doc = proxmark_shaped(lite_s())
    doc["systems"] = [{**doc["systems"][1], "code": "88B4", "idm": IDM.hex(), "pmm": felica.STANDARD_PMM.hex(),
                       "nodes": [{"type": "service", "code": "4B10", "des_key_version": "0100",
                                  "aes_key_version": None, "data": {}}]}]
    d = loads(doc)
    assert (d.uid, d.memory) == (IDM, b"")
    decoded = decode_dump(d)
    assert (decoded.token_type, decoded.uid, decoded.text, decoded.data) == ("FeliCa", IDM.hex(), "", "")


@pytest.mark.parametrize("d", [lite_s(), lite_s(""), felica.lite_s_dump(IDM, None)], ids=["text", "empty", "access"])
def test_tagd_writes_what_it_reads_back_identically(d):
    assert dumps.loads(dumps.dumps(d, "json"), "x.json") == d


def test_the_written_file_has_the_shape_proxmark_reads_back():
    """`hf felica sim -f` needs code/idm/pmm/nodes per system, services with 4-hex-digit codes and blocks of
    16 bytes keyed by 4 hex digits; service 000B is written low byte first, as Proxmark3 writes it."""
    doc = json.loads(dumps.dumps(lite_s(), "json"))
    assert "FileType" not in doc and set(doc) >= {"systems", "specification_version"}
    (system,) = doc["systems"]
    assert (system["code"], system["idm"], system["pmm"]) == ("12FC", IDM.hex().upper(), "00F1000000014300")
    (node,) = system["nodes"]
    assert (node["type"], node["code"]) == ("service", "0B00")
    assert list(node["data"]) == [f"{b:04X}" for b in range(14)]
    assert all(len(bytes.fromhex(v)) == 16 for v in node["data"].values())


def test_a_multi_system_card_is_written_with_each_systems_idm():
    d = TagDump("felica", IDM, 0, 0, lite_s().memory, felica.LITE_S_PMM, systems=(0x0003, 0x12FC, 0xFE00))
    doc = json.loads(dumps.dumps(d, "json"))
    assert [s["idm"][:2] for s in doc["systems"]] == ["01", "11", "21"]  # system number in IDm byte 0's upper half
    assert [bool(s["nodes"]) for s in doc["systems"]] == [False, True, False]  # the blocks live in 12FC
    assert dumps.loads(dumps.dumps(d, "json"), "x.json") == d


@pytest.mark.parametrize("fmt", ["bin", "eml", "mfd"])
def test_a_felica_card_in_a_format_that_cannot_hold_it_is_refused_with_the_reason(fmt):
    with pytest.raises(ValueError, match=f"FeliCa card is written as Proxmark3 JSON .* or a Flipper file .*, not {fmt}"):
        dumps.dumps(lite_s(), fmt)


# --- damaged files: each a DumpError naming where and why -------------------------------------------------
def damaged(change) -> dict:
    doc = proxmark_shaped(lite_s())
    change(doc)
    return doc


def drop_block(number: str):
    def change(doc):
        doc["systems"][0]["nodes"][2]["data"].pop(number)  # from 0B00, the service tagd reads (0900 keeps it)
    return change


@pytest.mark.parametrize("change, where, reason", [
    (lambda doc: doc["systems"].clear(), "systems", "no systems"),
    (lambda doc: doc["systems"].extend([dict(doc["systems"][0], code=f"{c:04X}") for c in range(17 - len(doc["systems"]))]), "systems",
     "17 systems: a FeliCa card has at most 16"),
    (lambda doc: doc.pop("systems") and doc.update(systems="x"), "top level.systems", "expected a list"),
    (lambda doc: doc["systems"][0].pop("idm"), "systems[0].idm", "expected a str, missing"),
    (lambda doc: doc["systems"][0].update(idm="012E4CD1"), "systems[0].idm", "has 4 bytes, expected 8"),
    (lambda doc: doc["systems"][0].update(pmm="00F10000000143ZZ"), "systems[0].pmm", "is not hex"),
    (lambda doc: doc["systems"][0].update(code="88B"), "systems[0].code", "is not hex"),
    (lambda doc: doc["systems"][0].pop("nodes"), "systems[0].nodes", "expected a list, missing"),
    (lambda doc: doc["systems"][0]["nodes"][1]["data"].update({"0003": "00" * 15}), "systems[0].nodes[1].data.0003",
     "has 15 bytes, expected 16"),
    (lambda doc: doc["systems"][0]["nodes"][2]["data"].update({"3": "00" * 16}), "systems[0].nodes[2].data",
     "block number '3' is not 4 hex digits"),
    (drop_block("0000"), "systems[0].nodes[2].data", "block 0000 (the attribute block) missing"),
    (drop_block("0002"), "systems[0].nodes[2].data.0002", "block 0002 missing: the attribute block says the NDEF "
                                                          "message is 27 bytes, up to block 0002"),
], ids=["no-systems", "17-systems", "systems-not-a-list", "no-idm", "short-idm", "pmm-not-hex", "short-code", "no-nodes",
        "short-block", "bad-block-number", "no-attribute-block", "truncated-message"])
def test_a_damaged_felica_dump_names_the_place_and_the_reason(change, where, reason):
    exc = error(damaged(change))
    assert exc.where == where and reason in exc.reason, str(exc)


def test_a_truncated_felica_file_is_invalid_json_with_its_line():
    exc = error(dumps.dumps(lite_s(), "json")[:300])
    assert exc.where.startswith("line ") and "truncated file?" in exc.reason


JSON_VALUES = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner,
                                                                                        max_size=3), max_leaves=12)


def places(doc, path=()):
    """Every path into the document: each object member and list item, at any depth."""
    yield path
    items = doc.items() if isinstance(doc, dict) else enumerate(doc) if isinstance(doc, list) else ()
    for key, value in items:
        yield from places(value, (*path, key))


PLACES = list(places(proxmark_shaped(lite_s())))[1:]


@given(st.sampled_from(PLACES), JSON_VALUES | st.sampled_from(["", "00" * 8, "00" * 16, "0B00", "0000", []]))
def test_any_value_anywhere_in_a_felica_dump_gives_a_dump_or_a_dumperror(path, value):
    """Replace whatever sits anywhere in a dump by any JSON value: never anything but a TagDump or a DumpError
    with a reason of its own (not the loader's catch-all for exceptions it did not expect)."""
    doc = proxmark_shaped(lite_s())
    at = doc
    for key in path[:-1]:
        at = at[key]
    at[path[-1]] = value
    try:
        d = loads(doc)
    except dumps.DumpError as exc:
        assert not exc.reason.startswith("unreadable dump"), exc.reason
    else:
        assert d.kind == "felica" and len(d.uid) == 8 and len(d.memory) % 16 == 0


# --- Flipper .nfc ------------------------------------------------------------------------------------------
def flipper_lite(d: TagDump, version: int = 2, flags: dict[int, str] | None = None) -> str:
    """The shape of a Flipper FeliCa Lite-S file: 28 blocks of the Lite-S map, each with its two status flags;
    the system blocks a reader cannot read without a MAC marked as failed reads (``flags``: block → flags)."""
    sp = lambda b: " ".join(f"{x:02X}" for x in b)  # noqa: E731
    lines = ["Filetype: Flipper NFC device", "Version: 4", "Device type: FeliCa", f"UID: {sp(d.uid)}",
             "# FeliCa specific data", f"Data format version: {version}", f"Manufacture id: {sp(d.uid)}",
             f"Manufacture parameter: {sp(d.version)}", "IC Type: FeliCa Lite-S", "", "# Felica Lite specific data",
             "Blocks total: 28", "Blocks read: 20"]
    mem = d.memory + bytes(16)  # REG (0E) after the user blocks
    for n in range(28):
        status = (flags or {}).get(n, "00 00" if n < 20 else "01 A8")
        lines.append(f"Block {n}: {status} {sp(mem[n * 16:(n + 1) * 16] if n < 15 else bytes(range(n, n + 16)))}")
    return "\n".join(lines) + "\n"


def flipper_standard(idm: bytes, blocks: list[tuple[str, int, bytes]]) -> str:
    """The shape of a Flipper FeliCa Standard file: areas, services, and public blocks keyed in hex."""
    sp = lambda b: " ".join(f"{x:02X}" for x in b)  # noqa: E731
    lines = ["Filetype: Flipper NFC device", "Version: 4", "Device type: FeliCa", f"UID: {sp(idm)}",
             "Data format version: 2", f"Manufacture id: {sp(idm)}", f"Manufacture parameter: {sp(felica.STANDARD_PMM)}",
             "IC Type: FeliCa Standard", "# Felica Standard specific data", "Area found: 1",
             "Area 000: | Code 0000 | Services #000-#001 |", "Service found: 2",
             "Service 000: | Code 000B | Attrib. 0B | Public  | Read-only  | Unread |",
             "Service 001: | Code 1008 | Attrib. 08 | Private | Writable   | Unread |",
             f"Public blocks read: {len(blocks)}"]
    lines += [f"Block {i:04X}: | Service code {svc} | Block index {n:02X} | Data: {sp(data)} |"
              for i, (svc, n, data) in enumerate(blocks)]
    return "\n".join(lines) + "\n"


def test_a_flipper_felica_lite_s_file_loads_its_user_blocks_and_reg_and_decodes_to_its_text():
    d = dumps.loads(flipper_lite(lite_s("**launch.system:pce")).encode(), "card.nfc")
    assert (d.kind, d.uid, d.version) == ("felica", IDM, felica.LITE_S_PMM)
    assert d.memory == lite_s("**launch.system:pce").memory + bytes(16)  # blocks 00–0D, then REG
    assert decode_dump(d).text == "**launch.system:pce"


def test_a_flipper_version_1_file_with_only_the_idm_is_the_idm_token():
    text = "\n".join(flipper_lite(lite_s()).splitlines()[:8]).replace("version: 2", "version: 1") + "\n"
    d = dumps.loads(text.encode(), "card.nfc")
    assert (d.uid, d.memory) == (IDM, b"") and decode_dump(d).to_token().uid == IDM.hex()


def test_a_flipper_felica_standard_file_reads_its_public_000b_blocks_in_order_whatever_their_hex_keys():
    message_blocks = lite_s("**launch.system:gb").memory
    blocks = [("1008", 0, bytes(16))] + [("000B", n, message_blocks[n * 16:(n + 1) * 16]) for n in range(13, -1, -1)]
    d = dumps.loads(flipper_standard(IDM, blocks).encode(), "card.nfc")  # keys run to Block 000E: hex
    assert d.memory == message_blocks and decode_dump(d).text == "**launch.system:gb"


@pytest.mark.parametrize("d", [lite_s(), lite_s(""), felica.lite_s_dump(IDM, None),
                               TagDump("felica", IDM, 0, 0, lite_s().memory, felica.STANDARD_PMM)],
                         ids=["text", "empty", "access", "standard-with-ndef"])
def test_tagd_writes_flipper_felica_files_it_reads_back_identically(d):
    assert dumps.loads(dumps.dumps(d, "nfc"), "x.nfc") == TagDump("felica", d.uid, 0, 0, d.memory, d.version)


@pytest.mark.parametrize("text, where, reason", [
    (flipper_lite(lite_s("x" * 60), flags={3: "01 A8"}), "end of file",
     "block 0003 missing: the attribute block says the NDEF message is 67 bytes, up to block 0005: truncated file?"),
    (flipper_lite(lite_s()).replace("Data format version: 2", "Data format version: 3"), "line 6",
     "FeliCa data format version '3' is not supported (1 or 2)"),
    (flipper_lite(lite_s()).replace("Manufacture id: 01 2E", "Manufacture id: 01"), "line 7",
     "Manufacture id has 7 bytes, expected 8"),
    (flipper_lite(lite_s()).replace("UID: 01 2E", "UID: 02 2E"), "line 4", "is not the IDm"),
    (flipper_lite(lite_s()).replace("Blocks total: 28", "Blocks total: 14"), "line 12", "a FeliCa Lite map has 28"),
    (flipper_lite(lite_s()).replace("Block 2: 00 00 ", "Block 2: 00 00 0"), "line 16", "block 2: '073' is not a hex byte"),
    (flipper_standard(IDM, [("000B", 0, bytes(16))]).replace("| Block index 00", "| Index 00"), "line 16",
     "expected '| Service code XXXX | Block index XX | Data: … |'"),
    (flipper_lite(lite_s()).replace("Manufacture parameter", "Parameter"), "header", "missing 'Manufacture parameter'"),
], ids=["unread-block-mid-message", "format-version", "short-idm", "uid-not-idm", "blocks-total", "bad-hex",
        "bad-public-block", "no-pmm"])
def test_a_damaged_flipper_felica_file_names_the_line_and_the_reason(text, where, reason):
    with pytest.raises(dumps.DumpError) as info:
        dumps.loads(text.encode(), "card.nfc")
    assert info.value.where == where and reason in info.value.reason, str(info.value)


@given(st.lists(st.sampled_from(flipper_lite(lite_s()).splitlines() + flipper_standard(
    IDM, [("000B", 0, bytes(16))]).splitlines()[8:] + ["Block 0A: 00", "Blocks read: x", "Data format version: 1"]),
    max_size=40))
def test_any_mix_of_flipper_felica_lines_gives_a_dump_or_a_dumperror(lines):
    head = ["Filetype: Flipper NFC device", "Version: 4", "Device type: FeliCa"]
    try:
        dumps.loads("\n".join(head + lines).encode(), "card.nfc")
    except dumps.DumpError as exc:
        assert not exc.reason.startswith("unreadable dump"), exc.reason
