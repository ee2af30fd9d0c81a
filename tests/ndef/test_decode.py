"""decode_tag / decode_dump: the token of a tag, never an exception for bad content."""

import json

import ndef
import pytest
from hypothesis import given, strategies as st

from tagd.ndef import classic, tlv, type2
from tagd.ndef.decode import DecodedTag, decode_dump, decode_tag
from tagd.ndef.tagdump import TagDump
from tagd.ndef.records import describe, text_message

UID7 = bytes.fromhex("04A1B2C3D4E5F6")
UID4 = bytes.fromhex("A1B2C3D4")
V216 = type2.TYPE2_KINDS["ntag216"].version


def StandInDump(kind: str, uid: bytes, memory: bytes) -> TagDump:  # noqa: N802 - reads like the dataclass it makes
    return TagDump(kind, uid, 0x0044, 0x00, memory)


def type2_with(kind: str, message: bytes) -> bytes:
    img = type2.blank_image(kind, UID7)
    return type2.apply_writes(img, type2.plan_write(img, message, type2.TYPE2_KINDS[kind].version))


def classic_with(kind: str, message: bytes) -> bytes:
    img = classic.blank_image(kind, UID4)
    return classic.apply_writes(img, classic.plan_write(img, message))


def type2_raw_area(area: bytes) -> bytes:
    img = bytearray(type2.blank_image("ntag215", UID7))
    img[16:16 + len(area)] = area
    return bytes(img)


def test_decode_dump_reads_kind_uid_memory_version_and_unknown():
    got = decode_dump(StandInDump("ntag213", UID7, type2_with("ntag213", text_message("**launch.system:snes"))))
    assert (got.kind, got.uid, got.token_type, got.text) == ("ntag213", "04a1b2c3d4e5f6", "NTAG", "**launch.system:snes")
    assert got.data == text_message("**launch.system:snes").hex() and got.is_ndef and got.capacity == 144
    assert got.records == [{"type": "text", "text": "**launch.system:snes", "language": "en", "encoding": "UTF-8"}]


def test_to_token_carries_type_uid_text_data_and_reader():
    got = decode_tag("classic1k", UID4, classic_with("classic1k", text_message("hi")))
    token = got.to_token(reader_id="pn532-ujqixjv6", source="pn532")
    assert token.to_json()["type"] == "MIFARE" and token.uid == "a1b2c3d4" and token.text == "hi"
    assert token.data == text_message("hi").hex() and token.reader_id == "pn532-ujqixjv6" and token.source == "pn532"


def amiibo_image() -> bytearray:
    img = bytearray(type2.blank_image("ntag215", UID7))
    img[9:16] = bytes.fromhex("480FE0 F110FFEE")
    img[84:92] = bytes.fromhex("01020304 05060702")  # pages 21-22: the character ID
    return img


def test_amiibo_is_an_amiibo_token_whose_data_is_the_character_id_as_zaparoo_core_reports_it():
    got = decode_tag("ntag215", UID7, bytes(amiibo_image()))
    assert (got.token_type, got.text, got.is_ndef, got.errors) == ("Amiibo", "", False, [])
    assert got.data == "0102030405060702"


def test_an_amiibo_needs_cores_whole_header_not_just_the_cc():
    img = amiibo_image()
    img[10:12] = b"\x00\x00"  # lock bytes not 0F E0: Core reads it as an NTAG
    got = decode_tag("ntag215", UID7, bytes(img))
    assert got.token_type == "NTAG" and got.data == bytes(img[:130 * 4]).hex()


def test_non_ndef_type2_data_is_pages_0_to_the_last_user_page():
    img = bytearray(type2.blank_image("ntag213", UID7))
    img[12:16] = bytes(4)
    img[10:12] = b"\x0f\x00"  # real lock bytes are part of it
    assert decode_tag("ntag213", UID7, bytes(img)).data == bytes(img[:40 * 4]).hex()


def test_non_ndef_type2_with_unknown_bytes_has_no_data():
    img = bytearray(type2.blank_image("ntag213", UID7))
    img[12:16] = bytes(4)
    got = decode_tag("ntag213", UID7, bytes(img), unknown=frozenset({100}))
    assert got.data == "" and got.errors == ["1 bytes unknown from page 25: no data"]


def test_an_ndef_ntag215_is_an_ntag_token():
    assert decode_tag("ntag215", UID7, type2_with("ntag215", text_message("x"))).token_type == "NTAG"


def test_non_ndef_classic_data_is_the_whole_card_with_trailer_keys_as_zeros():
    img = classic.blank_image("classic1k", UID4)
    got = decode_tag("classic1k", UID4, img)
    assert got.data == classic.without_keys(img).hex() and not got.is_ndef and got.errors == []
    assert "ffffffffffff" not in got.data  # transport keys are keys all the same


def test_a_dump_whose_sector_key_no_reader_has_decodes_as_a_tap_would():
    img = bytearray(classic.blank_image("classic1k", UID4))
    img[7 * 16:7 * 16 + 6] = bytes.fromhex("123456789abc")  # sector 1's key A: not a well-known key
    got = decode_dump(TagDump("classic1k", UID4, 0x0004, 0x08, bytes(img)))
    assert got.data == "" and got.errors == ["sector 1: keys unknown"]
    with_key = decode_dump(TagDump("classic1k", UID4, 0x0004, 0x08, bytes(img)), [bytes.fromhex("123456789abc")])
    assert with_key.data == classic.without_keys(bytes(img)).hex()


def test_wrong_cc_ntag216_decodes_whole_with_get_version():
    img = bytearray(type2_with("ntag216", text_message("s" * 600)))
    img[14] = 0x3E
    got = decode_tag("type2", UID7, bytes(img[:4 * 160]), V216)
    assert got.kind == "ntag216" and got.text == "s" * 600 and got.capacity == 496  # the CC still bounds capacity


def test_wrong_cc_ntag216_from_a_dump_trusts_the_dumps_kind():
    img = bytearray(type2_with("ntag216", text_message("s" * 600)))
    img[14] = 0x3E
    assert decode_dump(StandInDump("ntag216", UID7, bytes(img))).text == "s" * 600


def test_a_malformed_record_gives_empty_text_and_an_error():
    got = decode_tag("ntag215", UID7, type2_raw_area(bytes.fromhex("0306D10109540265 FE")))
    assert got.text == "" and got.errors and "NDEF" in got.errors[0]


def test_a_tlv_running_past_the_area_gives_empty_text_and_an_error():
    got = decode_tag("ultralight", UID7, type2_raw_area(bytes.fromhex("03FF0400")))
    assert got.text == "" and got.errors[0].startswith("bad TLV")


def test_an_ndef_tag_without_ndef_tlv_says_so():
    got = decode_tag("ntag215", UID7, type2_raw_area(bytes.fromhex("FE")))
    assert got.text == "" and got.errors == ["no NDEF message"]


def test_unknown_type2_pages_under_the_message_give_empty_text():
    img = type2_with("ntag213", text_message("y" * 50))
    got = decode_tag("ntag213", UID7, img, unknown=frozenset(range(40, 44)))
    assert got.text == "" and got.errors == ["page 10 unknown: the NDEF message cannot be read"]
    assert decode_tag("ntag213", UID7, img, unknown=frozenset(range(150, 160))).text == "y" * 50


def test_classic_with_sector_0_unknown_has_no_mad():
    img = classic_with("classic1k", text_message("hi"))
    got = decode_tag("classic1k", UID4, img, unknown=frozenset(range(len(img))))
    assert got.text == "" and got.data == "" and got.errors[0] == "sectors 0–15: keys unknown (no MAD)"


def test_classic_message_running_into_an_unknown_sector_gives_empty_text():
    img = classic_with("classic1k", text_message("z" * 100))  # sectors 1-3
    got = decode_tag("classic1k", UID4, img, unknown=frozenset(range(8 * 16, 12 * 16)))
    assert got.text == "" and got.errors == ["sector 2: keys unknown",
                                             "the NDEF message runs into sector 2, whose keys are unknown"]


def test_classic_unknown_sector_after_the_message_still_gives_the_text():
    img = classic_with("classic1k", text_message("short"))
    got = decode_tag("classic1k", UID4, img, unknown=frozenset(range(12 * 16, 16 * 16)))
    assert got.text == "short" and got.errors == ["sector 3: keys unknown"]


# -- ndeflib's own encoder as an independent source of messages ----------------------------------------------

ascii_text = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=40)
records = st.one_of(
    st.builds(lambda t, enc: (ndef.TextRecord(t, "en", enc), t), st.text(max_size=60), st.sampled_from(["UTF-8", "UTF-16"])),
    st.builds(lambda u: (ndef.UriRecord(u), u), ascii_text.map(lambda s: "https://example.org/" + s.replace(" ", "_"))),
    st.builds(lambda u, t: (ndef.SmartposterRecord(u, title=t), {"type": "smartposter", "uri": u, "titles": {"en": t}}),
              st.just("https://zaparoo.org/"), ascii_text.filter(bool)),
    st.builds(lambda m, d: (ndef.Record(m, "", d), d), st.sampled_from(["text/vcard", "application/x-tagd"]),
              st.binary(min_size=1, max_size=60)),
)


@pytest.mark.parametrize("kind", ["ntag216", "classic1k"])
@given(first=records, rest=st.lists(records, max_size=2))
def test_messages_from_ndeflibs_encoder_decode_as_ndeflib_reads_them(kind, first, rest):
    message = b"".join(ndef.message_encoder([first[0]] + [r for r, _ in rest]))
    image = classic_with(kind, message) if kind in classic.SIZES else type2_with(kind, message)
    got = decode_tag(kind, b"", image)
    assert got.errors == [] and got.data == message.hex() and got.records == describe(message)
    assert len(got.records) == 1 + len(rest)
    record, expected = first
    if isinstance(record, (ndef.TextRecord, ndef.UriRecord)):
        assert got.text == expected
    elif isinstance(expected, dict):
        assert json.loads(got.text) == expected
    elif record.type == "text/vcard":
        assert json.loads(got.text) == {"type": "vcard", "vcard": expected.decode("utf-8", "replace")}
    else:
        assert json.loads(got.text)["payload"] == expected.hex()


kinds = st.sampled_from(["ultralight", "ultralight_ev1", "ntag213", "ntag215", "ntag216", "type2",
                         "classic1k", "classic4k", "classicmini", "classic", "nonsense"])


@given(kinds, st.binary(max_size=1100), st.one_of(st.none(), st.binary(max_size=8)),
       st.frozensets(st.integers(0, 1100), max_size=40))
def test_decode_never_raises_on_random_content(kind, memory, version, unknown):
    got = decode_tag(kind, memory[:7], memory, version, unknown)
    assert isinstance(got, DecodedTag) and isinstance(got.text, str) and isinstance(got.data, str)
    assert got.token_type in ("NTAG", "MIFARE", "Amiibo")


@given(st.sampled_from(sorted(classic.SIZES)), st.data())
def test_decode_never_raises_on_random_classic_cards_with_a_valid_mad(kind, data):
    size = classic.SIZES[kind]
    mem = bytearray(data.draw(st.binary(min_size=size, max_size=size)))
    body = bytes([0x01]) + bytes.fromhex("03E1") * 15
    mem[16:48] = bytes([classic.mad_crc(body)]) + body
    mem[57] = 0xC1
    got = decode_tag(kind, UID4, bytes(mem))
    assert got.is_ndef and isinstance(got.text, str)
    if got.errors == []:
        assert got.data == (tlv.find_ndef(b"".join(classic.ClassicMemory(bytes(mem)).block(b) for b in
                                                   classic.ClassicMemory(bytes(mem)).stream_blocks())) or b"").hex()
