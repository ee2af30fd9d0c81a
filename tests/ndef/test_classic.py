"""MIFARE Classic model: layout, trailers, access bits, MAD v1/v2, formatting, NDEF across sectors, refusals."""

import pytest
from hypothesis import given, strategies as st

from tagd.ndef.decode import decode_tag
from tagd.ndef import classic, tlv
from tagd.ndef.records import NdefError, text_message

UID = bytes.fromhex("a1b2c3d4")


def formatted(kind: str) -> bytes:
    blank = classic.blank_image(kind, UID)
    return classic.apply_writes(blank, classic.format_plan(kind))


def written(kind: str, text: str) -> bytes:
    img = formatted(kind)
    return classic.apply_writes(img, classic.plan_write(img, text_message(text)))


def test_mad_crc_vector_all_ndef_1k():
    assert classic.mad_crc(bytes([0x01]) + bytes.fromhex("03E1") * 15) == 0x14


def test_format_plan_writes_the_nfc_forum_layout():
    card = classic.ClassicMemory(formatted("classic1k"))
    assert card.block(1)[:4] == bytes.fromhex("140103E1")
    assert card.block(3) == classic.KEY_MAD + bytes.fromhex("787788C1") + classic.KEY_DEFAULT
    for s in range(1, 16):
        assert card.block(classic.trailer_block(s))[:10] == classic.KEY_NDEF + bytes.fromhex("7F078840")
    assert card.block(4)[:3] == bytes.fromhex("0300FE")
    assert card.mad_aids == [0] + [0xE103] * 15 and card.ndef_sectors == list(range(1, 16))
    assert card.ndef_message == b"" and card.text == ""


def test_format_plan_keeps_a_given_key_b():
    key_b = bytes.fromhex("010203040506")
    assert all(w.data[10:] == key_b for w in classic.format_plan("classicmini", key_b)
               if w.block == classic.trailer_block(classic.sector_of(w.block)))


def test_4k_has_mad_v2_in_sector_16_and_no_ndef_there():
    card = classic.ClassicMemory(formatted("classic4k"))
    assert card.block(3)[9] == 0xC2  # GPB: MAD available, multi-application, version 2
    v2 = card.block(64) + card.block(65) + card.block(66)
    assert v2[0] == classic.mad_crc(v2[1:48])
    assert card.ndef_sectors == [s for s in range(1, 40) if s != 16]
    assert card.capacity == (30 * 3 + 8 * 15) * 16


def test_a_bad_mad_v2_crc_hides_the_upper_sectors():
    img = bytearray(formatted("classic4k"))
    img[64 * 16] ^= 0xFF
    assert classic.ClassicMemory(bytes(img)).ndef_sectors == list(range(1, 16))


def test_a_bad_mad_v1_crc_means_no_mad():
    img = bytearray(formatted("classic1k"))
    img[16] ^= 0x01
    card = classic.ClassicMemory(bytes(img))
    assert card.mad_aids is None and not card.is_ndef
    assert decode_tag("classic1k", b"", bytes(img)).data == classic.without_keys(bytes(img)).hex()


def test_mini_has_five_sectors_of_which_four_hold_ndef():
    card = classic.ClassicMemory(formatted("classicmini"))
    assert card.sectors == 5 and card.ndef_sectors == [1, 2, 3, 4] and card.capacity == 4 * 48


@pytest.mark.parametrize("raw,data,trailer", [("FF0780", (0, 0, 0), (0, 0, 1)), ("787788", (1, 0, 0), (0, 1, 1)),
                                              ("7F0788", (0, 0, 0), (0, 1, 1)), ("078F0F", (0, 1, 0), (1, 1, 0))])
def test_access_bits_decode_and_encode_back(raw, data, trailer):
    conditions = classic.access_conditions(bytes.fromhex(raw))
    assert conditions == [data, data, data, trailer]
    assert classic.encode_access(conditions)[:3] == bytes.fromhex(raw)


@pytest.mark.parametrize("raw", ["FF0781", "FF0F80", "000000", "FFFFFF"])
def test_access_bits_with_inconsistent_inverted_copies_are_rejected(raw):
    assert classic.access_conditions(bytes.fromhex(raw)) is None


def test_4k_layout():
    assert classic.first_block(31) == 124 and classic.first_block(32) == 128 and classic.first_block(39) == 240
    assert classic.trailer_block(39) == 255 and classic.sector_of(200) == 36 and classic.blocks_in(35) == 16
    card = classic.ClassicMemory(classic.blank_image("classic4k", UID))
    assert card.sectors == 40 and card.trailer_block(32) == 143 and card.sector_of(143) == 32


def test_ndef_runs_across_sectors_skipping_trailers_and_the_mad_sector():
    text = "x" * 900
    img = written("classic4k", text)
    card = classic.ClassicMemory(img)
    assert card.text == text
    assert img[16 * 16:64 * 16] != bytes(48 * 16)  # sectors 4-15 used
    assert img[64 * 16:67 * 16] == formatted("classic4k")[64 * 16:67 * 16]  # MAD v2 untouched
    assert all(img[classic.trailer_block(s) * 16:][:6] == classic.KEY_NDEF for s in range(1, 40) if s != 16)


def test_blank_image_is_in_transport_state():
    img = classic.blank_image("classic1k", UID)
    assert img[:8] == UID + bytes([UID[0] ^ UID[1] ^ UID[2] ^ UID[3], 0x08, 0x04, 0x00])
    assert classic.ClassicMemory(img).trailer(5) == classic.Trailer(b"\xff" * 6, bytes.fromhex("FF078069"), b"\xff" * 6)
    assert classic.blank_image("classic4k", UID)[5:8] == bytes([0x18, 0x02, 0x00])
    assert classic.blank_image("classic1k", bytes(range(1, 8)))[:10] == bytes(range(1, 8)) + bytes([0x08, 0x44, 0x00])
    with pytest.raises(classic.ClassicError):
        classic.blank_image("classic1k", bytes(5))


def test_plan_write_formats_a_blank_card_first():
    img = classic.blank_image("classic1k", UID)
    writes = classic.plan_write(img, text_message("hi"))
    assert writes[:len(classic.format_plan("classic1k"))] == classic.format_plan("classic1k")
    assert classic.ClassicMemory(classic.apply_writes(img, writes)).text == "hi"


def test_plan_write_writes_length_zero_first_and_the_real_length_last():
    writes = classic.plan_write(formatted("classic1k"), text_message("y" * 100))
    assert writes[0].block == 4 and writes[0].data[:2] == b"\x03\x00"
    assert writes[-1].block == 4 and writes[-1].data[:2] == bytes([3, len(text_message("y" * 100))])
    assert [w.block for w in writes[1:-1]] == [5, 6, 8, 9, 10, 12]  # 110 bytes: 7 blocks, trailers skipped


def test_read_only_ndef_sector_refuses_the_write():
    img = bytearray(formatted("classic1k"))
    t = classic.trailer_block(1) * 16
    img[t + 6:t + 10] = bytes.fromhex("078F0F43")  # NFC Forum read-only sector
    card = classic.ClassicMemory(bytes(img))
    assert not card.sector_writable(1) and card.sector_writable(2) and not card.read_only
    with pytest.raises(classic.ReadOnlyError, match="sector 1"):
        classic.plan_write(bytes(img), text_message("x"))


def test_card_with_every_ndef_sector_read_only_is_read_only():
    img = bytearray(formatted("classicmini"))
    for s in range(1, 5):
        t = classic.trailer_block(s) * 16
        img[t + 9] = 0x43  # GPB: write access "no"
    assert classic.ClassicMemory(bytes(img)).read_only


def test_a_card_with_data_but_no_mad_is_not_formatted_over():
    img = bytearray(classic.blank_image("classic1k", UID))
    img[20 * 16] = 0x42  # block 20: sector 5
    with pytest.raises(classic.NotFormattedError, match="sector 5"):
        classic.plan_write(bytes(img), text_message("x"))


def test_a_card_whose_mad_lists_other_applications_is_not_formatted_over():
    img = bytearray(classic.blank_image("classic1k", UID))
    body = bytes([0x01]) + bytes.fromhex("0148") * 15
    img[16:48] = bytes([classic.mad_crc(body)]) + body
    img[57] = 0xC1
    with pytest.raises(classic.NotFormattedError, match="other applications"):
        classic.plan_write(bytes(img), text_message("x"))


def test_one_byte_over_capacity_names_both_sizes():
    room = classic.ClassicMemory(formatted("classicmini")).capacity
    with pytest.raises(classic.CapacityError, match=rf"needs {room + 1} bytes but the MIFARE Classic Mini holds {room}"):
        classic.plan_write(formatted("classicmini"), b"\x00" * (room - 1))


def test_unknown_sectors_are_reported_and_stop_the_stream():
    img = written("classic1k", "z" * 100)  # sectors 1-3
    card = classic.ClassicMemory(img, frozenset(range(8 * 16, 12 * 16)))  # sector 2 unread
    assert card.unknown_sectors == [2] and card.stream_blocks() == [4, 5, 6]
    with pytest.raises(tlv.TlvError):
        card.ndef_message


@given(st.sampled_from([320, 1024, 4096]), st.data())
def test_random_images_give_values_or_the_documented_errors(size, data):
    mem = bytearray(data.draw(st.binary(min_size=size, max_size=size)))
    if data.draw(st.booleans()):  # a valid MAD often, so the NDEF path is exercised
        body = bytes([0x01]) + bytes.fromhex("03E1") * 15
        mem[16:48] = bytes([classic.mad_crc(body)]) + body
        mem[57] = 0xC1
    card = classic.ClassicMemory(bytes(mem))
    assert isinstance(card.ndef_sectors, list) and isinstance(card.read_only, bool) and card.capacity >= 0
    try:
        assert isinstance(card.text, str)
    except (tlv.TlvError, NdefError):
        pass
    try:
        classic.plan_write(bytes(mem), text_message("x"))
    except classic.ClassicError:
        pass


@given(st.binary(max_size=5000))
def test_images_of_other_sizes_are_refused_clearly(mem):
    try:
        assert classic.ClassicMemory(mem).kind in classic.SIZES
    except classic.ClassicError as exc:
        assert "320, 1024 or 4096" in str(exc)
