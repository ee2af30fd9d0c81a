"""Type 2 memory model: kind, capacity, locks, reserved areas, non-NDEF images, how much to read."""

import pytest
from hypothesis import given, strategies as st

from tagd.ndef import tlv, type2
from tagd.ndef.records import NdefError, message_to_text, text_message

UID = bytes.fromhex("04a1b2c3d4e5f6")
V213, V215, V216 = (type2.TYPE2_KINDS[k].version for k in ("ntag213", "ntag215", "ntag216"))


def written(kind: str, text: str, image: bytes | None = None) -> bytes:
    image = image if image is not None else type2.blank_image(kind, UID)
    return type2.apply_writes(image, type2.plan_write(image, text_message(text), type2.TYPE2_KINDS[kind].version))


def read_like_a_reader(img: bytes, total_pages: int) -> bytes:
    """Read as tagio does: 16 pages first, then as many as pages_to_read asks, until it asks no more."""
    have = 64
    for _ in range(20):
        need = type2.pages_to_read(img[:have], total_pages)
        if need * 4 <= have:
            return img[:have]
        have = need * 4
    raise AssertionError("pages_to_read kept asking")


def test_kind_comes_from_get_version():
    assert type2.kind_from_version(V213) == "ntag213"
    assert type2.kind_from_version(V215) == "ntag215"
    assert type2.kind_from_version(V216) == "ntag216"
    assert type2.kind_from_version(bytes.fromhex("0004030101000B03")) == "ultralight_ev1"
    assert type2.kind_from_version(None) is None
    assert type2.kind_from_version(b"\x00\x04") is None


def test_get_version_beats_a_wrong_cc():
    img = bytearray(type2.blank_image("ntag216", UID))
    img[14] = 0x3E  # NTAG215's CC size
    assert type2.Type2Memory(bytes(img[:64])).kind == "ntag215"  # a partial read: the CC is all there is
    assert type2.Type2Memory(bytes(img[:64]), V216).kind == "ntag216"
    assert type2.Type2Memory(bytes(img[:64]), None, "ntag216").kind == "ntag216"  # a dump's device type


def test_a_whole_image_larger_than_its_cc_says_is_sized_by_the_image():
    img = bytearray(type2.blank_image("ntag216", UID))
    img[14] = 0x3E
    assert type2.Type2Memory(bytes(img)).kind == "ntag216"


def test_without_a_cc_the_image_size_decides():
    img = bytearray(type2.blank_image("ntag213", UID))
    img[12:16] = bytes(4)
    assert type2.Type2Memory(bytes(img)).kind == "ntag213"
    assert type2.Type2Memory(bytes(img[:20])).kind == "type2"


def test_capacity_is_the_cc_size_bounded_by_the_user_area():
    img = bytearray(type2.blank_image("ntag213", UID))
    assert type2.Type2Memory(bytes(img)).capacity == 144
    img[14] = 0x6D  # a CC claiming NTAG216 size on an NTAG213 chip
    assert type2.Type2Memory(bytes(img), V213).capacity == 144
    img[14] = 0x04
    assert type2.Type2Memory(bytes(img), V213).capacity == 32
    for kind, size in (("ultralight", 48), ("ntag215", 496), ("ntag216", 872)):  # factory CCs 3E, 6D
        assert type2.Type2Memory(type2.blank_image(kind, UID)).capacity == size


def test_blank_image_has_right_bccs():
    img = type2.blank_image("ntag213", bytes.fromhex("0416C6C2D73881"))
    assert img[3] == 0x88 ^ 0x04 ^ 0x16 ^ 0xC6 and img[8] == 0xC2 ^ 0xD7 ^ 0x38 ^ 0x81
    assert type2.Type2Memory(img).uid == bytes.fromhex("0416C6C2D73881")
    with pytest.raises(type2.Type2Error, match="7 bytes"):
        type2.blank_image("ntag213", bytes(4))


def test_factory_content_matches_the_datasheets():
    assert type2.blank_image("ntag213", UID)[12:24] == bytes.fromhex("E1101200 0103A00C 340300FE")
    assert type2.blank_image("ntag215", UID)[12:20] == bytes.fromhex("E1103E00 0300FE00")
    assert type2.blank_image("ntag216", UID)[12:20] == bytes.fromhex("E1106D00 0300FE00")
    assert len(type2.blank_image("ntag215", UID)) == 540
    assert type2.Type2Memory(type2.blank_image("ntag213", UID)).ndef_message == b""


def test_cc_access_0f_makes_the_tag_read_only():
    img = bytearray(type2.blank_image("ntag213", UID))
    img[15] = 0x0F
    assert type2.Type2Memory(bytes(img)).read_only
    with pytest.raises(type2.ReadOnlyError, match="read-only"):
        type2.plan_write(bytes(img), text_message("x"))


def test_static_lock_bit_on_page_4_makes_the_tag_read_only():
    img = bytearray(type2.blank_image("ultralight", UID))
    img[10] = 0x10  # L4
    assert type2.Type2Memory(bytes(img)).read_only


def test_a_locked_page_in_the_way_refuses_the_write_but_a_short_write_passes():
    img = bytearray(type2.blank_image("ntag215", UID))
    img[11] = 0x04  # L10: page 10 only
    tag = type2.Type2Memory(bytes(img), V215)
    assert not tag.read_only and tag.locked_pages == {10}
    assert type2.Type2Memory(written("ntag215", "short", bytes(img))).text == "short"
    with pytest.raises(type2.ReadOnlyError, match="locked pages .*10"):
        type2.plan_write(bytes(img), text_message("x" * 40), V215)


@pytest.mark.parametrize("kind,bit,pages", [("ntag213", 0, {16, 17}), ("ntag213", 11, {38, 39}),
                                            ("ntag215", 0, set(range(16, 32))), ("ntag215", 7, {128, 129}),
                                            ("ntag216", 13, set(range(224, 226)))])
def test_dynamic_lock_bits_lock_their_page_groups(kind, bit, pages):
    k = type2.TYPE2_KINDS[kind]
    img = bytearray(type2.blank_image(kind, UID))
    img[k.dyn_lock_page * 4:k.dyn_lock_page * 4 + 2] = (1 << bit).to_bytes(2, "little")
    assert type2.Type2Memory(bytes(img), k.version).locked_pages == pages


def _ultralight_with_memory_control() -> bytes:
    """An Ultralight whose Memory Control TLV reserves 4 bytes at page 8 (PageAddr 2 of 16-byte units)."""
    img = bytearray(type2.blank_image("ultralight", UID))
    img[16:24] = bytes.fromhex("0203200404 0300FE")
    img[32:36] = b"RSVD"
    return bytes(img)


def test_memory_control_reserved_bytes_are_skipped_by_writes_and_reads():
    img = _ultralight_with_memory_control()
    assert type2.reserved_addresses(img) == frozenset(range(32, 36))
    text = "reserved bytes in the middle"
    out = written("ultralight", text, img)
    assert out[32:36] == b"RSVD" and out[16:21] == img[16:21]
    tag = type2.Type2Memory(out)
    assert tag.text == text and tag.ndef_message == text_message(text)
    assert type2.Type2Memory(read_like_a_reader(out, 16)).text == text


def test_pages_to_read_counts_reserved_bytes_in_the_way():
    out = written("ultralight", "reserved bytes in the middle", _ultralight_with_memory_control())
    # 5 (Memory Control) + 2 + 35 (NDEF TLV) + 1 (terminator) stream bytes from byte 16, plus the 4 reserved
    assert type2.pages_to_read(out[:36], 16) == -(-(16 + 43 + 4) // 4)


def test_reserved_area_shrinks_the_room():
    room = len(type2.Type2Memory(_ultralight_with_memory_control()).stream_addresses())
    assert room == 48 - 4


def test_lock_control_outside_the_user_area_reserves_nothing_inside_it():
    img = type2.blank_image("ntag213", UID)
    assert all(a >= 160 for a in type2.reserved_addresses(img))
    assert len(type2.Type2Memory(img).stream_addresses()) == 144


def test_amiibo_image_is_not_ndef_and_is_never_overwritten():
    img = bytearray(type2.blank_image("ntag215", UID))
    img[12:16] = bytes.fromhex("F110FFEE")
    tag = type2.Type2Memory(bytes(img))
    assert not tag.is_ndef and tag.ndef_message is None and tag.text == ""
    with pytest.raises(type2.NotNdefError, match="not NDEF formatted"):
        type2.plan_write(bytes(img), text_message("x"))


def test_pages_to_read_reads_non_ndef_tags_whole():
    img = bytearray(type2.blank_image("ntag215", UID))
    img[12:16] = bytes.fromhex("F110FFEE")
    assert type2.pages_to_read(bytes(img[:64]), 135) == 135


def test_pages_to_read_reads_an_amiibo_up_to_its_character_id():
    img = bytearray(type2.blank_image("ntag215", UID))
    img[9:16] = type2.AMIIBO_HEADER
    assert type2.pages_to_read(bytes(img[:80]), 135) == 23


def test_pages_to_read_covers_the_tlv_and_no_more():
    img = written("ntag216", "a" * 400)
    n = type2.pages_to_read(img[:64], 231)
    tlv_end = 16 + 4 + len(text_message("a" * 400))
    assert -(-tlv_end // 4) <= n <= -(-tlv_end // 4) + 1
    assert type2.Type2Memory(img[:n * 4], V216).text == "a" * 400


@given(st.sampled_from(["ultralight", "ntag213", "ntag215", "ntag216"]), st.data())
def test_reading_as_pages_to_read_asks_decodes_the_whole_text(kind, data):
    k = type2.TYPE2_KINDS[kind]
    room = type2.Type2Memory(type2.blank_image(kind, UID)).capacity - 14  # Lock Control, TLV and record headers
    text = "z" * data.draw(st.integers(0, room))
    assert type2.Type2Memory(read_like_a_reader(written(kind, text), k.pages), k.version).text == text


@given(st.binary(min_size=0, max_size=1000), st.one_of(st.none(), st.binary(max_size=8)))
def test_random_images_give_values_or_the_documented_errors(mem, version):
    try:
        tag = type2.Type2Memory(mem, version)
    except type2.Type2Error:
        assert len(mem) < 16
        return
    assert isinstance(tag.kind, str) and tag.capacity >= 0
    assert isinstance(tag.read_only, bool)
    try:
        assert isinstance(tag.text, str)
    except (tlv.TlvError, NdefError):
        pass
    assert 4 <= type2.pages_to_read(mem, 231) <= 231 or len(mem) >= 16 * 4 * 231


@given(st.binary(max_size=200))
def test_plan_write_on_random_images_plans_or_refuses(mem):
    try:
        writes = type2.plan_write(mem, text_message("x"))
    except type2.Type2Error:
        return
    assert message_to_text(type2.Type2Memory(type2.apply_writes(mem, writes)).ndef_message or b"") == "x"


def test_rewriting_a_tag_with_broken_old_content_keeps_its_lock_control_tlv():
    img = bytearray(type2.blank_image("ntag213", UID))
    img[21:24] = bytes.fromhex("03FF7F")  # an NDEF TLV whose length runs far past the tag
    out = written("ntag213", "fixed", bytes(img))
    assert out[16:21] == bytes.fromhex("0103A00C34") and type2.Type2Memory(out).text == "fixed"


def test_an_unformatted_ntag215_gets_its_factory_cc():
    img = bytearray(type2.blank_image("ntag215", UID))
    img[12:20] = bytes(8)
    writes = type2.plan_write(bytes(img), text_message("hi"), V215)
    assert writes[0] == type2.PageWrite(3, bytes.fromhex("E1103E00"))
    assert type2.Type2Memory(type2.apply_writes(bytes(img), writes), V215).text == "hi"
