"""`tagd demo`: the README's run command — the daemon, an emulated PN532 and scripted taps, no hardware."""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import FIXTURES
from tagd.cli.daemon import DEMO_TAGS, demo_timeline, write_demo_tags
from tagd.ndef.decode import decode_dump
from tagd.ndef.dumps import load
from tagd.sim import timeline


def test_demo_once_launches_every_tag_on_stdout_and_exits_0():
    r = subprocess.run([sys.executable, "-m", "tagd", "demo", "--once", "--port", "0", "--baud", "0"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    launches = [json.loads(line) for line in r.stdout.splitlines()]
    assert [x["text"] for x in launches] == ["**launch.system:snes", "@SNES/Super Mario World",
                                            "@Genesis/Sonic the Hedgehog"]  # the last one through the mapping
    assert all(x["event"] == "launch" and x["readerId"].startswith("pn532-") for x in launches)
    assert "API on ws://127.0.0.1:" in r.stderr and "3 of 3 launch(es) went through" in r.stderr


def test_demo_tags_made_without_fixtures_match_the_fixtures(tmp_path):
    write_demo_tags(str(tmp_path))
    for name, kind, text, uid in DEMO_TAGS:
        made, fixture = decode_dump(load(tmp_path / name)), decode_dump(load(FIXTURES / name))
        assert (made.kind, made.uid, made.text) == (fixture.kind, fixture.uid, fixture.text) == (kind, uid, text)


def test_demo_timeline_places_each_tag_and_loops_unless_once(tmp_path):
    steps = timeline.parse(demo_timeline(str(tmp_path), loop=True), "<demo>")
    assert [s.arg for s in steps if s.command == "place"] == [str(tmp_path / name) for name, *_ in DEMO_TAGS]
    assert steps[-1].command == "loop"
    assert timeline.parse(demo_timeline(str(tmp_path), loop=False), "<demo>")[-1].command != "loop"


def test_demo_with_a_bad_script_exits_2_naming_the_line(tmp_path):
    script = tmp_path / "taps.txt"
    script.write_text("place x.nfc\njump\n")
    r = subprocess.run([sys.executable, "-m", "tagd", "demo", "--once", "--port", "0", "--script", str(script)],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and f"{script}: line 2" in r.stderr
