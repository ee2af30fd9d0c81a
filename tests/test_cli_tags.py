"""`tagd decode` and `tagd fixture make`, both as a subprocess (`python -m tagd`) and in-process."""

import json
import subprocess
import sys

import pytest

from conftest import FIXTURES
from tagd.cli import main

EXPECTED = json.loads((FIXTURES / "expected.json").read_text())
GOOD = sorted(k for k, v in EXPECTED.items() if "error" not in v)
BAD = sorted(k for k, v in EXPECTED.items() if "error" in v)
TOKEN_KEYS = {"type", "uid", "text", "data", "scanTime"}


def run(*args):
    return subprocess.run([sys.executable, "-m", "tagd", *args], capture_output=True, text=True, timeout=60)


def test_decode_every_fixture_prints_good_ones_and_explains_bad_ones_with_status_2():
    r = run("decode", *(str(FIXTURES / n) for n in GOOD + BAD))
    assert r.returncode == 2
    tokens = [json.loads(line) for line in r.stdout.splitlines()]
    assert [(t["text"], t["uid"], t["type"]) for t in tokens] == [
        (EXPECTED[n]["text"], EXPECTED[n]["uid"], EXPECTED[n]["type"]) for n in GOOD]
    assert all(set(t) == TOKEN_KEYS for t in tokens)
    errors = [line for line in r.stderr.splitlines() if ": warning: " not in line]
    assert len(errors) == len(BAD)
    for name, line in zip(BAD, errors):
        assert line.startswith(f"tagd decode: {FIXTURES / name}: ") and EXPECTED[name]["error"] in line


def test_decode_good_fixtures_exits_zero():
    r = run("decode", *(str(FIXTURES / n) for n in GOOD))
    assert r.returncode == 0 and len(r.stdout.splitlines()) == len(GOOD)
    warned = {line.split(": warning: ")[0].removeprefix("tagd decode: ") for line in r.stderr.splitlines()}
    assert warned == {str(FIXTURES / n) for n in GOOD if "notes_contain" in EXPECTED[n]}


def test_decode_warns_on_stderr_about_what_the_dump_contradicts():
    r = run("decode", str(FIXTURES / "amiibo-uid-line.nfc"))
    assert r.returncode == 0 and json.loads(r.stdout)["uid"] == EXPECTED["amiibo-uid-line.nfc"]["uid"]
    assert r.stderr.startswith(f"tagd decode: {FIXTURES / 'amiibo-uid-line.nfc'}: warning: UID line 0433338c333333 "
                               f"disagrees with pages 0–1 (04333333333333)")


def test_decode_a_directory_decodes_the_files_in_it(capsys):
    assert main(["decode", str(FIXTURES / "bad")]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and len(captured.err.splitlines()) == len(BAD)


@pytest.mark.parametrize("name", GOOD)
def test_decode_in_process_gives_the_expected_token(name, capsys):
    assert main(["decode", str(FIXTURES / name)]) == 0
    token = json.loads(capsys.readouterr().out)
    assert (token["text"], token["uid"], token["type"]) == (EXPECTED[name]["text"], EXPECTED[name]["uid"], EXPECTED[name]["type"])


@pytest.mark.parametrize("name", BAD)
def test_decode_in_process_explains_each_bad_fixture(name, capsys):
    assert main(["decode", str(FIXTURES / name)]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and EXPECTED[name]["error"] in captured.err


def test_decode_all_adds_details(capsys):
    assert main(["decode", "--all", str(FIXTURES / "long-zapscript-ntag215.nfc")]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == TOKEN_KEYS | {"file", "kind", "capacity", "read_only", "records", "errors", "notes"}
    assert out["kind"] == "ntag215" and out["capacity"] == 496 and out["read_only"] is False
    assert out["records"][0]["type"] == "text" and len(out["text"]) == 300 and out["errors"] == []


def test_decode_all_reports_decode_errors(capsys):
    main(["decode", "--all", str(FIXTURES / "classic1k-unknown-keys.nfc")])
    assert any("sector 1: keys unknown" in e for e in json.loads(capsys.readouterr().out)["errors"])


def test_decode_missing_file_is_explained(tmp_path, capsys):
    assert main(["decode", str(tmp_path / "nope.nfc"), str(FIXTURES / "snes-ntag215.nfc")]) == 2
    captured = capsys.readouterr()
    assert "nope.nfc: file: No such file" in captured.err and "launch.system:snes" in captured.out


KIND_FORMATS = [(k, f) for k in ("ntag213", "ntag215", "ntag216", "ultralight", "classic1k", "classic4k")
                for f in ("nfc", "json", "bin", "mfd", "eml") if f != "mfd" or k.startswith("classic")]


@pytest.mark.parametrize("kind,fmt", KIND_FORMATS)
def test_fixture_make_then_decode_round_trips(tmp_path, capsys, kind, fmt):
    out = tmp_path / f"t.{fmt}"
    assert main(["fixture", "make", "--kind", kind, "--text", "**launch.system:snes", "-o", str(out)]) == 0
    capsys.readouterr()
    assert main(["decode", "--all", str(out)]) == 0
    token = json.loads(capsys.readouterr().out)
    assert token["text"] == "**launch.system:snes" and token["kind"] == kind
    assert token["type"] == ("MIFARE" if kind.startswith("classic") else "NTAG")


def test_fixture_make_uri_with_uid_and_explicit_format(tmp_path, capsys):
    out = tmp_path / "card.dump"
    assert main(["fixture", "make", "--kind", "classic1k", "--uri", "https://zaparoo.org", "--uid", "01:02:03:04",
                 "--format", "mfd", "-o", str(out)]) == 0
    capsys.readouterr()
    assert len(out.read_bytes()) == 1024
    main(["decode", str(out)])
    token = json.loads(capsys.readouterr().out)
    assert token["uid"] == "01020304" and token["text"] == "https://zaparoo.org"


def test_fixture_make_default_uid_is_reproducible(tmp_path):
    for name in ("a.nfc", "b.nfc"):
        assert main(["fixture", "make", "--kind", "ntag213", "--text", "x", "-o", str(tmp_path / name)]) == 0
    assert (tmp_path / "a.nfc").read_bytes() == (tmp_path / "b.nfc").read_bytes()


@pytest.mark.parametrize("argv,message", [
    (["--kind", "ntag213", "--text", "x" * 200], "holds 139"),
    (["--kind", "ntag213", "--text", "x", "--uid", "0102"], "7 bytes"),
    (["--kind", "classic1k", "--text", "x", "--uid", "zz"], "is not hex"),
    (["--kind", "ntag215", "--text", "x", "--format", "mfd"], "MIFARE Classic cards only"),
])
def test_fixture_make_refuses_clearly_and_writes_nothing(tmp_path, capsys, argv, message):
    out = tmp_path / "x.nfc"
    assert main(["fixture", "make", *argv, "-o", str(out)]) == 2
    assert message in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_fixture_make_as_a_subprocess(tmp_path):
    out = tmp_path / "s.json"
    r = run("fixture", "make", "--kind", "ntag215", "--text", "**launch.system:snes; echo $(id)", "-o", str(out))
    assert r.returncode == 0 and r.stdout.strip() == str(out)
    r = run("decode", str(out))
    assert json.loads(r.stdout)["text"] == "**launch.system:snes; echo $(id)"
