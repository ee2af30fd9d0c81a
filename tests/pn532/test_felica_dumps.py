"""Issue 14 item 10 with the dump formats: a FeliCa card written as a dump file (Proxmark3 FeliCa JSON or a Flipper
.nfc) gives the
same token — uid = IDm, type FeliCa, text and data from the Lite-S NDEF — from `tagd decode`, the replay reader,
and a tap through the emulated PN532 (`tagd sim pn532 --tag FILE`) read by the real driver; `tagd fixture make
--kind felica` writes one. The FeliCa counterpart of test_same_token_everywhere.py's property test."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from pn532_rig import ReaderAdded, Rig, TagGone, TagSeen
from tagd.cli import main as tagd_main
from tagd.ndef import dumps, felica, records
from tagd.ndef.decode import decode_dump
from tagd.ndef.tagdump import TagDump
from tagd.readers.base import ReaderWorker, WriteError, WriteRequest
from tagd.readers.pn532.reader import Pn532Reader
from tagd.readers.replay import ReplayReader

from test_same_token_everywhere import replay_token, same


@pytest.fixture(scope="module")
def rig():
    r = Rig(options={"felica": True})  # on a pty, as `tagd sim pn532` runs
    r.next(ReaderAdded)
    yield r
    r.close()


def tap_token(rig, path):
    rig.emu.place(path)
    try:
        return rig.next(TagSeen, timeout=5)[1].token
    finally:
        rig.emu.remove()
        rig.next(TagGone)


IDMS = st.binary(min_size=8, max_size=8)


@st.composite
def lite_s_cards(draw) -> TagDump:
    """A Lite-S holding a Text or URI record (up to its 208 bytes), reporting 12FC or its own 88B4 first."""
    if draw(st.booleans()):
        message = records.text_message(draw(st.text(max_size=60)))
    else:
        message = records.uri_message("https://zaparoo.org/" + draw(st.text("abcxyz019/", max_size=150)))
    d = felica.lite_s_dump(draw(IDMS), message)
    d.systems = draw(st.sampled_from([(felica.SYSTEM_NDEF,), (felica.SYSTEM_LITE_S,),
                                      (felica.SYSTEM_LITE_S, felica.SYSTEM_NDEF)]))
    return d


@st.composite
def cards_without_ndef(draw) -> TagDump:
    """An access card (its memory needs keys: no blocks), or a Lite-S never formatted for NDEF (block 0 zeros)."""
    if draw(st.booleans()):
        return felica.lite_s_dump(draw(IDMS), None)
    blocks = draw(st.binary(min_size=13 * 16, max_size=13 * 16))
    return TagDump("felica", draw(IDMS), 0, 0, bytes(16) + blocks, felica.LITE_S_PMM, systems=(felica.SYSTEM_LITE_S,))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lite_s_cards() | cards_without_ndef(), st.sampled_from(dumps.FELICA_FORMATS))
def test_decode_replay_and_an_emulated_tap_of_a_felica_dump_give_the_same_token(rig, tmp_path_factory, d, fmt):
    path = tmp_path_factory.mktemp("felica") / f"card.{fmt}"
    dumps.save(d, path)
    decoded = decode_dump(dumps.load(path)).to_token()
    assert (decoded.type, decoded.uid) == ("FeliCa", d.uid.hex())
    assert decoded.text == decode_dump(d).text  # the file keeps what the card holds
    assert same(replay_token(path.parent, path)) == same(decoded)
    assert same(tap_token(rig, path)) == same(decoded)


def test_a_lite_s_dump_taps_with_its_text_and_an_access_card_by_its_idm(rig, tmp_path):
    lite, card = tmp_path / "lite.json", tmp_path / "card.json"
    assert tagd_main(["fixture", "make", "--kind", "felica", "--text", "**launch.system:pce", "-o", str(lite)]) == 0
    assert tagd_main(["fixture", "make", "--kind", "felica", "--no-ndef", "--uid", "01:2e:00:11:22:33:44:55",
                      "-o", str(card)]) == 0
    token = tap_token(rig, lite)
    assert (token.type, token.text) == ("FeliCa", "**launch.system:pce") and len(token.uid) == 16
    assert same(tap_token(rig, card)) == (("012e001122334455", "FeliCa", "", ""))


def test_fixture_make_felica_writes_a_flipper_felica_file_for_nfc(tmp_path, capsys):
    path = tmp_path / "card.nfc"
    assert tagd_main(["fixture", "make", "--kind", "felica", "--uri", "https://zaparoo.org/", "-o", str(path)]) == 0
    assert "Device type: FeliCa" in path.read_text() and "Blocks total: 28" in path.read_text()
    assert decode_dump(dumps.load(path)).text == "https://zaparoo.org/"


def test_fixture_make_felica_writes_proxmark_felica_json_with_a_reproducible_idm(tmp_path, capsys):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    for path in (a, b):
        assert tagd_main(["fixture", "make", "--kind", "felica", "--text", "**launch.system:snes", "-o", str(path)]) == 0
    assert a.read_bytes() == b.read_bytes()
    doc = json.loads(a.read_text())
    assert doc["systems"][0]["code"] == "12FC" and doc["systems"][0]["pmm"] == felica.LITE_S_PMM.hex().upper()
    d = dumps.load(a)
    assert (d.kind, d.version, decode_dump(d).text) == ("felica", felica.LITE_S_PMM, "**launch.system:snes")


@pytest.mark.parametrize("args, reason", [
    (["--text", "x", "--format", "bin", "-o", "card.json"], "a FeliCa card is written as Proxmark3 JSON (json) or "
                                                           "a Flipper file (nfc), not bin"),
    (["--text", "x", "-o", "card.eml"], "not eml"),
    (["--text", "x", "--uid", "0102", "-o", "card.json"], "an IDm is 8 bytes, not 2"),
    (["--text", "x" * 300, "-o", "card.json"], "a FeliCa Lite-S holds 208"),
], ids=["bin", "eml", "short-idm", "too-long"])
def test_fixture_make_felica_refuses_what_it_cannot_make_with_the_reason(tmp_path, capsys, monkeypatch, args, reason):
    monkeypatch.chdir(tmp_path)
    assert tagd_main(["fixture", "make", "--kind", "felica", *args]) == 2
    assert reason in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_no_ndef_is_for_felica_cards_only(tmp_path, capsys):
    assert tagd_main(["fixture", "make", "--kind", "ntag215", "--no-ndef", "-o", str(tmp_path / "t.nfc")]) == 2
    assert "--no-ndef makes FeliCa cards only" in capsys.readouterr().err


def test_tagd_decode_prints_the_felica_token(tmp_path):
    path = tmp_path / "card.json"
    dumps.save(felica.lite_s_dump(bytes.fromhex("012E4CD19A6B3F20"), records.text_message("**launch.system:snes")), path)
    r = subprocess.run([sys.executable, "-m", "tagd", "decode", "--all", str(path)], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert (out["type"], out["uid"], out["text"], out["kind"]) == ("FeliCa", "012e4cd19a6b3f20",
                                                                   "**launch.system:snes", "felica")


def test_tagd_decode_names_a_damaged_felica_dump_and_exits_2(tmp_path):
    path = tmp_path / "card.json"
    doc = json.loads(dumps.dumps(felica.lite_s_dump(bytes(8), records.text_message("x" * 40)), "json"))
    del doc["systems"][0]["nodes"][0]["data"]["0002"]
    path.write_text(json.dumps(doc))
    r = subprocess.run([sys.executable, "-m", "tagd", "decode", str(path)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and r.stdout == ""
    assert f"{path}: systems[0].nodes[0].data.0002: block 0002 missing" in r.stderr and "Traceback" not in r.stderr


def test_the_replay_reader_refuses_to_write_a_felica_card_with_the_reason(tmp_path):
    path = tmp_path / "card.json"
    dumps.save(felica.lite_s_dump(bytes(8), records.text_message("x")), path)
    (tmp_path / "timeline.txt").write_text(f"place {path}\n")
    reader = ReplayReader(str(tmp_path / "timeline.txt"))
    reader.open()
    with pytest.raises(WriteError, match="FeliCa"):
        reader.write(WriteRequest(text="y", timeout=1))


def test_tagd_sim_pn532_presents_a_felica_dump_given_with_tag(tmp_path):
    path, link = tmp_path / "card.json", tmp_path / "pn532"
    dumps.save(felica.lite_s_dump(bytes.fromhex("012E4CD19A6B3F20"), records.text_message("**launch.system:n64")), path)
    sim = subprocess.Popen([sys.executable, "-m", "tagd", "sim", "pn532", "--tag", str(path), "--link", str(link)],
                           stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    events = []
    worker = None
    try:
        assert sim.stdout.readline().strip() == str(link)
        got = __import__("queue").Queue()
        worker = ReaderWorker(Pn532Reader(str(link), {"felica": True}), got.put, retry=0.2).start()
        while not isinstance(ev := got.get(timeout=10), TagSeen):
            events.append(ev)
        assert (ev.token.type, ev.token.uid, ev.token.text) == ("FeliCa", "012e4cd19a6b3f20", "**launch.system:n64")
    finally:
        if worker is not None:
            worker.stop()
        sim.terminate()
        sim.wait(10)
