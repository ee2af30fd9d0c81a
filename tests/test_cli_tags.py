import json
import subprocess
import sys

import pytest

from tagd.cli import main
from conftest import FIXTURES

EXPECTED = json.loads((FIXTURES.parent / "tests" / "fixture_expectations.json").read_text())


def run(*args):
    return subprocess.run([sys.executable, "-m", "tagd", *args], capture_output=True, text=True, timeout=60)


def test_decode_all_fixtures_prints_good_ones_and_explains_bad_ones():
    files = sorted(str(p) for p in FIXTURES.iterdir())
    r = run("decode", *files)
    assert r.returncode == 2
    lines = [json.loads(x) for x in r.stdout.splitlines()]
    good = [k for k, v in EXPECTED.items() if "error" not in v]
    assert len(lines) == len(good)
    assert {x["text"] for x in lines} == {EXPECTED[k]["text"] for k in good}
    for line in lines:
        assert set(line) == {"type", "uid", "text", "data", "scanTime"}
    for name, exp in EXPECTED.items():
        if "error" in exp:
            assert f"{FIXTURES / name}: " in r.stderr


def test_decode_good_files_exits_zero_and_all_adds_details(capsys):
    assert main(["decode", "--all", str(FIXTURES / "long-zapscript-ntag215.nfc")]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["kind"] == "ntag215" and out["capacity"] == 496 and out["records"][0]["type"] == "text"
    assert len(out["text"]) == 300


@pytest.mark.parametrize("kind", ["ntag213", "ntag215", "ntag216", "ultralight", "classic1k", "classic4k"])
@pytest.mark.parametrize("fmt", ["nfc", "json", "bin"])
def test_fixture_make_then_decode_round_trips(tmp_path, capsys, kind, fmt):
    out = tmp_path / f"t.{fmt}"
    assert main(["fixture", "make", "--kind", kind, "--text", "**launch.system:snes", "-o", str(out)]) == 0
    capsys.readouterr()
    assert main(["decode", str(out)]) == 0
    assert json.loads(capsys.readouterr().out)["text"] == "**launch.system:snes"


def test_fixture_make_uri_with_uid(tmp_path, capsys):
    out = tmp_path / "u.mfd"
    assert main(["fixture", "make", "--kind", "classic1k", "--uri", "https://zaparoo.org", "--uid", "01:02:03:04",
                 "-o", str(out)]) == 0
    capsys.readouterr()
    main(["decode", str(out)])
    tok = json.loads(capsys.readouterr().out)
    assert tok["uid"] == "01020304" and tok["text"] == "https://zaparoo.org"


def test_fixture_make_too_long_text_fails_clearly(tmp_path, capsys):
    rc = main(["fixture", "make", "--kind", "ntag213", "--text", "x" * 200, "-o", str(tmp_path / "x.nfc")])
    assert rc == 2
    assert "holds 139" in capsys.readouterr().err
    assert not (tmp_path / "x.nfc").exists()
