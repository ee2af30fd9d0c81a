import pytest
from hypothesis import given, strategies as st

from tagd.ndef import tlv
from tagd.ndef.records import text_message


def test_spec_vector_text_record_test_as_full_tlv():
    assert tlv.ndef_tlv(text_message("test")) + b"\xfe" == bytes.fromhex("030BD101075402656E74657374FE")


@pytest.mark.parametrize("length,header", [(254, "03FE"), (255, "03FF00FF"), (1000, "03FF03E8"), (0, "0300")])
def test_spec_length_forms(length, header):
    assert tlv.ndef_tlv(bytes(length))[: len(header) // 2] == bytes.fromhex(header)


def test_message_over_65534_bytes_is_an_error():
    assert tlv.ndef_tlv(bytes(65534))[:4] == bytes.fromhex("03FFFFFE")
    for length in (65535, 70000):  # FFFF is reserved by the NFC Forum
        with pytest.raises(tlv.TlvError, match="does not fit"):
            tlv.ndef_tlv(bytes(length))


def test_parse_skips_null_and_control_tlvs_and_stops_at_terminator():
    area = bytes.fromhex("00 0103A00C34 0203000000 FD0155 0302AABB FE 0301CC")
    tags = [t.tag for t in tlv.parse_tlvs(area)]
    assert tags == [tlv.LOCK_CONTROL, tlv.MEMORY_CONTROL, tlv.PROPRIETARY, tlv.NDEF, tlv.TERMINATOR]
    assert tlv.find_ndef(area) == b"\xaa\xbb"


def test_length_running_past_the_area_is_an_error():
    with pytest.raises(tlv.TlvError, match="declares 16 bytes"):
        tlv.parse_tlvs(bytes.fromhex("0310AABB"))


def test_area_without_ndef_gives_none():
    assert tlv.find_ndef(bytes.fromhex("0103A00C34FE")) is None


def test_lock_control_position_is_computed_from_page_and_offset():
    ctl = tlv.decode_control(tlv.Tlv(1, 0, bytes.fromhex("A00C34")))
    # NTAG213 factory TLV: page 10 of 16-byte "pages" (2^4) = byte 160 (page 0x28); 12 bits → 2 bytes; 2^3 bytes per bit
    assert ctl == tlv.ControlTlv(1, 0xA * 16 + 0, 2, 12, 8)


def test_memory_control_size_is_in_bytes_and_zero_means_256():
    assert tlv.decode_control(tlv.Tlv(2, 0, bytes.fromhex("4A0302"))) == tlv.ControlTlv(2, 4 * 4 + 10, 3)
    assert tlv.decode_control(tlv.Tlv(2, 0, bytes.fromhex("100002"))).size == 256
    assert tlv.decode_control(tlv.Tlv(3, 0, bytes.fromhex("100002"))) is None


def test_find_ndef_stops_at_the_first_ndef_tlv_whatever_follows():
    assert tlv.find_ndef(bytes.fromhex("0302AABB 03FF01")) == b"\xaa\xbb"  # a broken TLV after it does not matter


def test_proprietary_tlv_with_3_byte_length_is_skipped():
    area = bytes.fromhex("FD FF0100") + bytes(256) + bytes.fromhex("0301CC FE")
    assert tlv.find_ndef(area) == b"\xcc"


@given(st.binary(max_size=3000))
def test_ndef_tlv_round_trips(message):
    assert tlv.find_ndef(tlv.ndef_tlv(message) + b"\xfe") == message
    assert tlv.needed_length(tlv.ndef_tlv(message)) == len(tlv.ndef_tlv(message))


@given(st.binary(max_size=600))
def test_parsers_never_raise_anything_but_tlverror(area):
    for fn in (tlv.parse_tlvs, tlv.find_ndef):
        try:
            fn(area)
        except tlv.TlvError:
            pass
    n = tlv.needed_length(area)
    assert n is None or n >= 0


@given(st.binary(min_size=0, max_size=300), st.integers(0, 300))
def test_needed_length_from_a_prefix_is_exact_or_asks_for_more(message, cut):
    full = tlv.ndef_tlv(message) + b"\xfe"
    n = tlv.needed_length(full[:cut])
    assert n is None or n == len(full) - 1
