import pytest
from hypothesis import given, strategies as st

from tagd.ndef import classic, type2
from tagd.ndef.decode import decode_tag
from tagd.ndef.records import text_message


def test_kind_comes_from_get_version():
    assert type2.kind_from_version(bytes.fromhex("0004040201000F03")) == "ntag213"
    assert type2.kind_from_version(bytes.fromhex("0004040201001103")) == "ntag215"
    assert type2.kind_from_version(bytes.fromhex("0004040201001303")) == "ntag216"
    assert type2.kind_from_version(bytes.fromhex("0004030101000B03")) == "ultralight_ev1"
    assert type2.kind_from_version(None) is None


def test_get_version_beats_a_wrong_cc():
    img = bytearray(type2.blank_image("ntag216", bytes(7)))
    img[14] = 0x3E  # NTAG215's CC size
    assert type2.Type2Memory(bytes(img)).kind == "ntag215"
    assert type2.Type2Memory(bytes(img), bytes.fromhex("0004040201001303")).kind == "ntag216"


def test_blank_image_has_right_bccs():
    img = type2.blank_image("ntag213", bytes.fromhex("0416C6C2D73881"))
    assert img[3] == 0x88 ^ 0x04 ^ 0x16 ^ 0xC6 and img[8] == 0xC2 ^ 0xD7 ^ 0x38 ^ 0x81
    assert type2.Type2Memory(img).uid == bytes.fromhex("0416C6C2D73881")


def test_factory_ntag213_content_matches_the_datasheet():
    assert type2.blank_image("ntag213", bytes(7))[16:24] == bytes.fromhex("0103A00C340300FE")
    assert type2.blank_image("ntag215", bytes(7))[16:20] == bytes.fromhex("0300FE00")


def test_amiibo_image_data_is_the_whole_memory():
    img = bytearray(type2.blank_image("ntag215", bytes(7)))
    img[12:16] = bytes.fromhex("F110FFEE")
    got = decode_tag("ntag215", bytes(7), bytes(img))
    assert got.token_type == "Amiibo" and got.data == bytes(img).hex() and got.text == ""


def test_pages_to_read_covers_the_tlv_and_no_more():
    img = type2.apply_writes(type2.blank_image("ntag216", bytes(7)),
                             type2.plan_write(type2.blank_image("ntag216", bytes(7)), text_message("a" * 400)))
    n = type2.pages_to_read(img[:64], 231)
    assert 4 + (400 + 7 + 4) // 4 <= n <= 4 + (400 + 7 + 4) // 4 + 2
    assert decode_tag("ntag216", bytes(7), img[: n * 4]).text == "a" * 400


def test_pages_to_read_reads_non_ndef_tags_whole():
    img = bytearray(type2.blank_image("ntag215", bytes(7)))
    img[12:16] = bytes.fromhex("F110FFEE")
    assert type2.pages_to_read(bytes(img[:64]), 135) == 135


def test_mad_crc_vector_all_ndef_1k():
    assert classic.mad_crc(bytes([0x01]) + bytes.fromhex("03E1") * 15) == 0x14


def test_access_bits_decode_and_reject_inconsistent_copies():
    assert classic.access_conditions(bytes.fromhex("FF0780"))[3] == (0, 0, 1)
    assert classic.access_conditions(bytes.fromhex("FF0781")) is None
    for raw in ("FF0780", "787788", "7F0788"):
        assert classic.encode_access(classic.access_conditions(bytes.fromhex(raw)))[:3] == bytes.fromhex(raw)


def test_4k_layout():
    assert classic.first_block(31) == 124 and classic.first_block(32) == 128 and classic.first_block(39) == 240
    assert classic.trailer_block(39) == 255 and classic.sector_of(200) == 36


def test_formatted_card_has_mad_and_nfc_forum_keys():
    for kind in ("classic1k", "classic4k"):
        img = classic.apply_writes(classic.blank_image(kind, bytes(4)), classic.format_plan(kind))
        card = classic.ClassicMemory(img)
        assert card.trailer(0).key_a == classic.KEY_MAD and card.trailer(1).key_a == classic.KEY_NDEF
        assert card.block(1)[:2] == (bytes([0x14, 0x01]) if kind == "classic1k" else card.block(1)[:2])
        assert card.ndef_sectors == [s for s in range(1, classic.sector_count(kind)) if s != 16]
        assert decode_tag(kind, bytes(4), img).text == ""


def test_format_writes_data_blocks_before_their_trailer():
    seen_trailer = set()
    for w in classic.format_plan("classic4k"):
        s = classic.sector_of(w.block)
        assert s not in seen_trailer
        if w.block == classic.trailer_block(s):
            seen_trailer.add(s)


def test_unknown_sector_gives_empty_text_and_a_reason():
    img = classic.blank_image("classic1k", bytes(4))
    img = classic.apply_writes(img, classic.plan_write(img, text_message("hi")))
    got = decode_tag("classic1k", bytes(4), img, unknown=frozenset(range(64, 128)))
    assert got.text == "" and any("sector 1: keys unknown" in e for e in got.errors)


@given(st.binary(min_size=0, max_size=1100))
def test_type2_decode_never_raises(mem):
    got = decode_tag("ntag215", b"", mem)
    assert isinstance(got.text, str)


@given(st.sampled_from([320, 1024, 4096]), st.data())
def test_classic_decode_never_raises(size, data):
    mem = bytearray(data.draw(st.binary(min_size=size, max_size=size)))
    if data.draw(st.booleans()):  # make the MAD look valid often, so the NDEF path is exercised
        body = bytes([0x01]) + bytes.fromhex("03E1") * 15
        mem[16:48] = bytes([classic.mad_crc(body)]) + body
        mem[57] = 0xC1
    got = decode_tag("classic", b"", bytes(mem))
    assert isinstance(got.text, str)
