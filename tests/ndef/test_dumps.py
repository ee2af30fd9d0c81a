import json

import pytest
from hypothesis import given, strategies as st

from tagd.ndef import classic, dumps, type2
from tagd.ndef.decode import decode_dump
from conftest import FIXTURES

EXPECTED = json.loads((FIXTURES.parent / "tests" / "fixture_expectations.json").read_text())
GOOD = sorted(k for k, v in EXPECTED.items() if "error" not in v)
BAD = sorted(k for k, v in EXPECTED.items() if "error" in v)


def test_every_fixture_is_listed_in_the_expectations():
    assert sorted(p.name for p in FIXTURES.iterdir()) == sorted(EXPECTED)


@pytest.mark.parametrize("name", GOOD)
def test_good_fixture_decodes_to_its_expected_token(name):
    exp = EXPECTED[name]
    got = decode_dump(dumps.load(FIXTURES / name))
    assert got.text == exp["text"]
    assert got.token_type == exp["type"]
    assert got.kind == exp["kind"]
    if "uid" in exp:
        assert got.uid == exp["uid"]
    if "data" in exp:
        assert got.data == exp["data"]
    if "errors_contain" in exp:
        assert any(exp["errors_contain"] in e for e in got.errors)


@pytest.mark.parametrize("name", BAD)
def test_bad_fixture_raises_dumperror_naming_file_place_and_reason(name):
    with pytest.raises(dumps.DumpError) as err:
        dumps.load(FIXTURES / name)
    assert str(err.value).startswith(str(FIXTURES / name) + ": ")
    assert EXPECTED[name]["error"] in str(err.value)
    assert err.value.where and err.value.reason


def test_corrupt_page_error_names_the_line():
    with pytest.raises(dumps.DumpError) as err:
        dumps.load(FIXTURES / "bad-corrupt-page.nfc")
    assert err.value.where == "line 22" and "page 5" in err.value.reason


def test_missing_file_is_a_dumperror():
    with pytest.raises(dumps.DumpError, match="No such file"):
        dumps.load(FIXTURES / "nope.nfc")


@pytest.mark.parametrize("data,fmt", [(b'{"a":1}', "json"), (b"Filetype: Flipper NFC device\n", "nfc"),
                                      (bytes(1024), "mfd"), (bytes(540), "bin")])
def test_format_is_detected_from_content(data, fmt):
    assert dumps.detect_format(data) == fmt


def test_flipper_unknown_bytes_are_recorded():
    d = dumps.load(FIXTURES / "classic1k-unknown-keys.nfc")
    assert 64 in d.unknown and 127 in d.unknown and 128 not in d.unknown


def test_flipper_v2_lsb_first_atqa_is_understood():
    assert dumps.load(FIXTURES / "flipper-v2-ntag215.nfc").atqa == 0x0044


def test_amiibo_size_raw_image_is_an_ntag215():
    d = dumps.load(FIXTURES / "amiibo-style.bin")
    assert d.kind == "ntag215" and len(d.memory) == 540


def test_proxmark_mfcard_keys_are_exported():
    d = dumps.load(FIXTURES / "genesis-classic1k.nfc")
    doc = json.loads(dumps.dumps(d, "json"))
    assert doc["FileType"] == "mfcard" and doc["SectorKeys"]["1"]["KeyA"] == "D3F7D3F7D3F7"


def test_mfd_refuses_type2():
    with pytest.raises(ValueError, match="MIFARE Classic cards only"):
        dumps.dumps(dumps.load(FIXTURES / "snes-ntag215.nfc"), "mfd")


KIND_PAGES = {"ultralight": 16, "ntag213": 45, "ntag215": 135, "ntag216": 231}


@st.composite
def type2_dumps(draw):
    kind = draw(st.sampled_from(sorted(KIND_PAGES)))
    mem = bytearray(draw(st.binary(min_size=KIND_PAGES[kind] * 4, max_size=KIND_PAGES[kind] * 4)))
    version = type2.TYPE2_KINDS[kind].version
    unknown = frozenset(draw(st.sets(st.integers(16, len(mem) - 1), max_size=8)))
    for i in unknown:
        mem[i] = 0
    return dumps.TagDump(kind=kind, uid=bytes(mem[0:3] + mem[4:8]), atqa=0x0044, sak=0, memory=bytes(mem),
                         version=version, signature=draw(st.none() | st.binary(min_size=32, max_size=32).filter(any)),
                         unknown=unknown)


@st.composite
def classic_dumps(draw):
    kind = draw(st.sampled_from(sorted(classic.SIZES)))
    mem = draw(st.binary(min_size=classic.SIZES[kind], max_size=classic.SIZES[kind]))
    atqa, sak = classic.ATQA_SAK[kind]
    return dumps.TagDump(kind=kind, uid=mem[0:4], atqa=atqa, sak=sak, memory=mem)


@given(type2_dumps(), st.sampled_from(["nfc", "json", "bin"]))
def test_type2_dumps_round_trip(d, fmt):
    back = dumps.loads(dumps.dumps(d, fmt), "x")
    assert back.memory == d.memory and back.kind == d.kind and back.uid == d.uid
    if fmt == "nfc":
        assert back == d
    if fmt == "json":
        assert back.version == d.version and back.signature == d.signature


@given(classic_dumps(), st.sampled_from(["nfc", "json", "mfd", "bin"]))
def test_classic_dumps_round_trip(d, fmt):
    assert dumps.loads(dumps.dumps(d, fmt), "x") == d


@given(st.binary(max_size=2000))
def test_random_bytes_give_a_dump_or_dumperror(data):
    try:
        dumps.loads(data, "fuzz")
    except dumps.DumpError as exc:
        assert str(exc).startswith("fuzz: ")


@given(st.lists(st.sampled_from(["Filetype: Flipper NFC device", "Version: 4", "Version: 2",
                                 "Device type: NTAG/Ultralight", "Device type: Mifare Classic",
                                 "Mifare Classic type: 1K", "UID: 04 01 02 03 04 05 06", "UID: 01 02 03 04",
                                 "Pages total: 4", "Page 0: 04 01 02 8F", "Page 1: 03 04 05 06", "Page 2: 00 00 00 00",
                                 "Page 3: E1 10 06 00", "Block 0: " + "00 " * 15 + "00", "Page 9: 00", "ATQA: 00",
                                 "garbage", "SAK: 08", "Page x: 00 00 00 00"]), max_size=12))
def test_random_flipper_lines_give_a_dump_or_dumperror(lines):
    try:
        dumps.loads(("\n".join(["Filetype: Flipper NFC device"] + lines)).encode(), "f.nfc")
    except dumps.DumpError:
        pass


@given(st.dictionaries(st.sampled_from(["FileType", "Card", "blocks", "x"]),
                       st.one_of(st.text(max_size=5), st.integers(), st.dictionaries(st.text(max_size=3), st.text(max_size=40), max_size=3)),
                       max_size=4))
def test_random_json_gives_a_dump_or_dumperror(doc):
    try:
        dumps.loads(json.dumps(doc).encode(), "f.json")
    except dumps.DumpError:
        pass
