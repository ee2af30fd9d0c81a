"""fixtures/: every good fixture decodes to the token fixtures/expected.json names, every bad one raises
its DumpError, and the whole directory is exactly what tests/make_fixtures.py makes with tagd's tools."""

import json

import pytest

import make_fixtures
from conftest import FIXTURES
from tagd.ndef import dumps
from tagd.ndef.decode import decode_dump

EXPECTED = json.loads((FIXTURES / "expected.json").read_text())
GOOD = sorted(k for k, v in EXPECTED.items() if "error" not in v)
BAD = sorted(k for k, v in EXPECTED.items() if "error" in v)


def test_every_fixture_file_is_listed_in_expected_json():
    files = {p.relative_to(FIXTURES).as_posix() for p in FIXTURES.rglob("*") if p.is_file()}
    assert files - {"expected.json", "README.md"} == set(EXPECTED)


def test_bad_fixtures_live_under_bad_so_globs_stay_clean():
    assert all(name.startswith("bad/") for name in BAD) and not any(name.startswith("bad/") for name in GOOD)


@pytest.mark.parametrize("name", GOOD)
def test_good_fixture_decodes_to_its_expected_token(name):
    exp = EXPECTED[name]
    token = decode_dump(dumps.load(FIXTURES / name)).to_token(source=name)
    decoded = decode_dump(dumps.load(FIXTURES / name))
    assert (token.text, token.uid, token.type, decoded.kind) == (exp["text"], exp["uid"], exp["type"], exp["kind"])
    if "data" in exp:
        assert token.data == exp["data"]
    if "errors_contain" in exp:
        assert any(exp["errors_contain"] in e for e in decoded.errors)
    else:
        assert decoded.errors == []
    if "notes_contain" in exp:  # the loader resolved a contradiction in the file and says so
        assert any(exp["notes_contain"] in n for n in decoded.notes), decoded.notes
    else:
        assert decoded.notes == []


@pytest.mark.parametrize("name", BAD)
def test_bad_fixture_raises_dumperror_naming_file_place_and_reason(name):
    with pytest.raises(dumps.DumpError) as err:
        dumps.load(FIXTURES / name)
    assert str(err.value).startswith(f"{FIXTURES / name}: ")
    assert EXPECTED[name]["error"] in str(err.value)
    assert err.value.where and err.value.reason


def test_fixtures_are_reproducible_from_the_tools(tmp_path, capsys):
    expected = make_fixtures.build(tmp_path)
    assert expected == EXPECTED
    made = {p.relative_to(tmp_path).as_posix(): p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    kept = {p.relative_to(FIXTURES).as_posix(): p.read_bytes() for p in FIXTURES.rglob("*") if p.is_file()}
    assert sorted(made) == sorted(kept)
    assert [n for n in made if made[n] != kept[n]] == []


def test_demo_fixtures_hold_the_demo_scripts():
    assert EXPECTED["snes-ntag215.nfc"]["text"] == "**launch.system:snes"
    assert EXPECTED["smw-ntag213.nfc"]["text"] == "@SNES/Super Mario World"
    assert EXPECTED["genesis-classic1k.nfc"]["text"] == "**launch.random:genesis"


def test_the_long_zapscript_needs_a_three_byte_tlv_length():
    d = dumps.load(FIXTURES / "long-zapscript-ntag215.nfc")
    assert len(EXPECTED["long-zapscript-ntag215.nfc"]["text"]) == 300
    assert d.memory[16:18] == b"\x03\xff"  # NDEF TLV, 3-byte length form
