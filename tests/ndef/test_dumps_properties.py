"""Dump codecs as properties: every memory image survives every format it fits, and no input bytes
make the loaders raise anything but DumpError."""

import json

from hypothesis import assume, given, strategies as st

from tagd.ndef import classic, dumps, type2

TYPE2_PAGES = {k.name: k.pages for k in type2.TYPE2_KINDS.values()}
ANTICOLLISION_ATQA = st.integers(0, 0xFFFF).filter(lambda a: a & 0x1F)  # values a real tag can answer


@st.composite
def type2_dumps(draw):
    kind = draw(st.sampled_from(sorted(TYPE2_PAGES)))
    mem = bytearray(draw(st.binary(min_size=TYPE2_PAGES[kind] * 4, max_size=TYPE2_PAGES[kind] * 4)))
    mem[0:12] = type2.head_pages(bytes(mem[0:3] + mem[4:8]), bytes(mem[10:12]))  # a tag's UID has valid BCCs
    unknown = frozenset(draw(st.sets(st.integers(12, len(mem) - 1), max_size=8)))
    for i in unknown:
        mem[i] = 0
    version = draw(st.sampled_from([None, type2.TYPE2_KINDS[kind].version]))
    return dumps.TagDump(kind=kind, uid=bytes(mem[0:3] + mem[4:8]), atqa=draw(ANTICOLLISION_ATQA),
                         sak=draw(st.integers(0, 0xFF).filter(lambda s: classic.kind_from_sak(s) is None)),
                         memory=bytes(mem), version=version,
                         signature=draw(st.none() | st.binary(min_size=32, max_size=32).filter(any)), unknown=unknown)


@st.composite
def classic_dumps(draw):
    kind = draw(st.sampled_from(sorted(classic.SIZES)))
    mem = bytearray(draw(st.binary(min_size=classic.SIZES[kind], max_size=classic.SIZES[kind])))
    unknown = frozenset(draw(st.sets(st.integers(0, len(mem) - 1), max_size=8)))
    for i in unknown:
        mem[i] = 0
    uid = draw(st.sampled_from([bytes(mem[0:4]), bytes.fromhex("04c1c2c3c4c5c6")]))
    return dumps.TagDump(kind=kind, uid=uid, atqa=draw(ANTICOLLISION_ATQA),
                         sak=draw(st.integers(0, 0xFF).filter(lambda s: classic.kind_from_sak(s) == kind)),
                         memory=bytes(mem), unknown=unknown)


def no_parser_gap(exc):
    """loads() turns an unexpected exception into DumpError("unreadable dump ..."): a safety net, not a plan."""
    assert not exc.reason.startswith("unreadable dump"), exc.reason


def as_raw(d):
    """What a raw image can carry: the memory alone."""
    if d.is_classic:
        return dumps.classic_dump(d.memory)
    return dumps.type2_dump(d.memory, named=d.kind)


@given(type2_dumps() | classic_dumps())
def test_flipper_round_trip_keeps_everything(d):
    assert dumps.loads(dumps.dumps(d, "nfc"), "x.nfc") == d


@given(type2_dumps() | classic_dumps())
def test_proxmark_json_round_trip_keeps_all_but_unknown_marks(d):
    back = dumps.loads(dumps.dumps(d, "json"), "x.json")
    assert back == dumps.TagDump(**{**d.__dict__, "unknown": frozenset()})


@given(type2_dumps() | classic_dumps(), st.sampled_from(["bin", "mfd", "eml"]))
def test_raw_round_trip_keeps_memory_kind_and_uid(d, fmt):
    assume(fmt != "mfd" or d.is_classic)
    data = dumps.dumps(d, fmt)
    assume(dumps.detect_format(data) in ("bin", "mfd", "eml"))  # a mostly printable image is taken for text, by design
    back = dumps.loads(data, f"x.{fmt}")
    expected = as_raw(d)
    assert back.memory == d.memory and back.uid == expected.uid and back.kind == d.kind
    assert (back.atqa, back.sak) == (expected.atqa, expected.sak)


@given(st.binary(max_size=3000))
def test_random_bytes_give_a_dump_or_a_dumperror(data):
    try:
        dumps.loads(data, "fuzz")
    except dumps.DumpError as exc:
        assert str(exc).startswith("fuzz: ") and exc.where and exc.reason
        no_parser_gap(exc)


FLIPPER_LINES = ["Filetype: Flipper NFC device", "Version: 4", "Version: 2", "Device type: NTAG/Ultralight",
                 "Device type: Mifare Classic", "Device type: NTAG215", "Mifare Classic type: 1K", "Mifare Classic type: MINI",
                 "NTAG/Ultralight type: NTAG213", "UID: 04 01 02 03 04 05 06", "UID: 01 02 03 04", "Pages total: 4",
                 "Pages total: 99999999", "Pages read: 1", "Page 0: 04 01 02 8F", "Page 1: 03 04 05 06", "Page 2: ?? 00 00 00",
                 "Page 3: E1 10 06 00", "Block 0: " + "00 " * 15 + "00", "Page 9: 00", "ATQA: 00", "ATQA: 00 44",
                 "Key A map: 1", "Key B map: zz", "Mifare version: 00 04 04 02 01 00 0F 03", "garbage", "SAK: 08",
                 "Page x: 00 00 00 00", "Page 99999999999: 00 00 00 00", ": :", "Block -1: 00"]


@given(st.lists(st.sampled_from(FLIPPER_LINES), max_size=14))
def test_random_flipper_lines_give_a_dump_or_a_dumperror(lines):
    try:
        dumps.loads("\n".join(["Filetype: Flipper NFC device"] + lines).encode(), "f.nfc")
    except dumps.DumpError as exc:
        no_parser_gap(exc)


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=40),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
                           max_leaves=8)


@given(st.dictionaries(st.sampled_from(["FileType", "Card", "blocks", "SectorKeys"]),
                       st.sampled_from(["mfu", "mfcard"]) | json_values, max_size=4),
       st.dictionaries(st.sampled_from(["UID", "ATQA", "SAK", "Version", "Signature"]), json_values, max_size=3))
def test_random_json_gives_a_dump_or_a_dumperror(doc, card):
    if isinstance(doc.get("Card"), dict):
        doc["Card"].update(card)
    try:
        dumps.loads(json.dumps(doc).encode(), "f.json")
    except dumps.DumpError as exc:
        no_parser_gap(exc)


@given(type2_dumps() | classic_dumps(), st.sampled_from(["nfc", "json"]), st.data())
def test_damaged_dump_files_give_a_dump_or_a_dumperror(d, fmt, data):
    raw = bytearray(dumps.dumps(d, fmt))
    cut = data.draw(st.integers(0, len(raw)))
    pos = data.draw(st.integers(0, max(0, cut - 1)))
    if cut:
        raw[pos] = data.draw(st.integers(0, 255))
    try:
        dumps.loads(bytes(raw[:cut]), "damaged")
    except dumps.DumpError as exc:
        assert exc.path == "damaged"
        no_parser_gap(exc)
