"""Issue 14, item 4 ("define data once") and item 3 (a reader never crashes on a tag): a dump decoded by
`tagd decode`, the same dump replayed, and a tap of it through the emulated PN532 and the real driver give
the same token (uid, type, text, data) — for tags of every kind, written in every dump format."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from conftest import FIXTURES, need
from pn532_rig import ReaderAdded, Rig, TagGone, TagSeen
from tagd.cli.tags import make_dump
from tagd.ndef import classic, dumps, records, type2
from tagd.ndef.decode import decode_dump
from tagd.ndef.tagdump import TagDump
from tagd.readers.replay import ReplayReader
from tagd.sim.tags import EmulatedTag

TYPE2_KINDS = ["ultralight", "ultralight_ev1", "ntag203", "ntag213", "ntag215", "ntag216"]
CLASSIC_KINDS = ["classicmini", "classic1k", "classic4k"]
CUSTOM_KEY = bytes.fromhex("5a5a12345678")  # no reader tries it
# (C1, C2, C3) groups for a sector's data blocks: key A reads all / key A reads none (key B only)
ACCESS = {"open": [(0, 0, 0)] * 3 + [(0, 0, 1)], "key-b-only": [(0, 1, 1)] * 3 + [(0, 1, 1)]}


@pytest.fixture(scope="module")
def rig():
    r = Rig()
    r.next(ReaderAdded)
    yield r
    r.close()


def formats(d: TagDump) -> list[str]:
    return ["nfc", "json", "eml", "mfd" if d.is_classic else "bin"]


@st.composite
def ndef_tags(draw) -> TagDump:
    kind = draw(st.sampled_from(TYPE2_KINDS + CLASSIC_KINDS))
    room = 40 if kind in ("ultralight", "ultralight_ev1", "classicmini") else 120
    if draw(st.booleans()):
        message = records.text_message(draw(st.text(max_size=room)))
    else:
        message = records.uri_message("https://zaparoo.org/" + draw(st.text("abcxyz019/", max_size=room - 30)))
    uid = draw(st.binary(min_size=4, max_size=4) if kind in CLASSIC_KINDS else st.binary(min_size=6, max_size=6))
    return make_dump(kind, message, uid if kind in CLASSIC_KINDS else b"\x04" + uid)


@st.composite
def type2_without_ndef(draw) -> TagDump:
    """A toy or an amiibo: no CC, memory that is the token data. (An NTAG203 without its CC would not say
    how big it is — it answers no GET_VERSION — so it is not among them.)"""
    kind = draw(st.sampled_from(["ultralight", "ultralight_ev1", "ntag213", "ntag215", "ntag216"]))
    k = type2.TYPE2_KINDS[kind]
    mem = bytearray(draw(st.binary(min_size=k.pages * 4, max_size=k.pages * 4)))
    mem[0:12] = type2.head_pages(b"\x04" + bytes(mem[1:3] + mem[4:8]), bytes(mem[10:12]))
    mem[12:16] = bytes(4)
    if kind == "ntag215" and draw(st.booleans()):
        mem[9:16] = type2.AMIIBO_HEADER
    return dumps.type2_dump(bytes(mem), k.version, named=kind)


@st.composite
def classic_without_ndef(draw) -> TagDump:
    """A card with data and no MAD: some sectors open with a well-known key, some keep key A out of their
    data blocks, some use a key no reader has."""
    kind = draw(st.sampled_from(CLASSIC_KINDS))
    mem = bytearray(classic.blank_image(kind, draw(st.binary(min_size=4, max_size=4))))
    for s in range(1, classic.sector_count(kind)):
        for b in classic.data_blocks(s):
            mem[b * 16:(b + 1) * 16] = draw(st.binary(min_size=16, max_size=16))
        t = classic.trailer_block(s) * 16
        mem[t:t + 6] = draw(st.sampled_from([*classic.WELL_KNOWN_KEYS, CUSTOM_KEY]))
        mem[t + 6:t + 10] = classic.encode_access(ACCESS[draw(st.sampled_from(sorted(ACCESS)))], 0x69)
    return dumps.classic_dump(bytes(mem))


def replay_token(tmp_path, path):
    timeline = tmp_path / "timeline.txt"
    timeline.write_text(f"place {path}\n")
    reader = ReplayReader(str(timeline))
    reader.open()
    for _ in range(20):
        seen = [e for e in reader.poll() if isinstance(e, TagSeen)]
        if seen:
            return seen[0].token
    raise AssertionError("the replay reader never placed the tag")


def tap_token(rig, path):
    rig.emu.place(path)
    try:
        return rig.next(TagSeen, timeout=10)[1].token  # a 4K card without NDEF is read whole: ~2 s here
    finally:
        rig.emu.remove()
        rig.next(TagGone)


def same(token):
    return token.uid, token.type, token.text, token.data


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ndef_tags() | type2_without_ndef() | classic_without_ndef(), st.data())
def test_decode_replay_and_an_emulated_tap_give_the_same_token(rig, tmp_path_factory, d, data):
    fmt = data.draw(st.sampled_from(formats(d)))
    path = tmp_path_factory.mktemp("tag") / f"tag.{fmt}"
    dumps.save(d, path, fmt)
    decoded = decode_dump(dumps.load(path)).to_token()
    assert decoded.uid == d.uid.hex()
    assert same(replay_token(path.parent, path)) == same(decoded)
    assert same(tap_token(rig, path)) == same(decoded)


@pytest.mark.parametrize("name", ["amiibo-style.bin", "toy-ntag215.bin", "ntag203.nfc", "classic4k-sak00.json",
                                  "amiibo-uid-line.nfc", "proxmark-ntag215.bin", "uri-nul-padded-ntag213.nfc"])
def test_fixtures_tap_as_they_decode(rig, name):
    assert same(tap_token(rig, FIXTURES / name)) == same(decode_dump(dumps.load(FIXTURES / name)).to_token())


def test_ntag203_taps_as_an_ntag203(rig):
    rig.emu.place(FIXTURES / "ntag203.nfc")
    _, seen = rig.next(TagSeen)
    rig.emu.remove()
    rig.next(TagGone)
    assert seen.detail["kind"] == "ntag203" and seen.token.text == "**launch.system:sg1000"


def test_a_tag_the_reader_cannot_read_gives_its_uid_and_the_reason_once(rig):
    """Item 3: a Classic card presented with SAK 00 (a dump that said so, before the loader fixed it) is read as
    a Type 2 tag, whose reads it refuses: one token by its UID with the reason, no traceback, no repeats."""
    uid = bytes.fromhex("2cab7d92")
    card = EmulatedTag(TagDump("classic1k", uid, 0x0000, 0x00, classic.blank_image("classic1k", uid)))
    rig.emu.place(card)
    _, seen = rig.next(TagSeen)
    assert seen.token.uid == uid.hex() and seen.token.text == "" and seen.token.data == ""
    assert seen.detail["errors"][0].startswith("read failed: ")
    assert rig.quiet(1.0) == []  # no second token, no removal and re-read
    rig.emu.remove()
    rig.next(TagGone)


def test_the_same_dump_with_its_sak_fixed_by_the_loader_taps_with_its_text(rig):
    assert json.loads((FIXTURES / "classic4k-sak00.json").read_text())["Card"]["SAK"] == "00"
    assert tap_token(rig, FIXTURES / "classic4k-sak00.json").text == "**launch.system:psx"


PUBLIC = FIXTURES.parent.parent / "shared" / "dumps-public"
PUBLIC_DUMPS = sorted(p.name for p in PUBLIC.iterdir() if p.suffix not in (".md", ".tsv")) if PUBLIC.is_dir() else []


def loadable(name: str) -> bool:
    try:
        dumps.load(PUBLIC / name)
    except dumps.DumpError:
        return False
    return True


@pytest.mark.parametrize("name", [n for n in PUBLIC_DUMPS if loadable(n)] or ["(none)"])
def test_every_public_dump_replays_and_taps_as_it_decodes(rig, tmp_path, name):
    """../shared/dumps-public: strangers' files, not made by tagd — each one tagd loads is the same token
    from `tagd decode`, a replay and a tap through the emulated PN532."""
    need(bool(PUBLIC_DUMPS), f"public dumps in {PUBLIC}")
    decoded = decode_dump(dumps.load(PUBLIC / name)).to_token()
    assert same(replay_token(tmp_path, PUBLIC / name)) == same(decoded)
    assert same(tap_token(rig, PUBLIC / name)) == same(decoded)
