import pytest
from hypothesis import given, strategies as st

from tagd.readers.pn532.frames import (ACK, ERROR_FRAME, NACK, TFI_CHIP, TFI_HOST, Ack, BadFrame, ErrorFrame, Frame,
                                       FrameDecoder, Nack, encode_command, encode_frame)

VECTORS = [
    (0x02, "", "0000FF02FED4022A00"),
    (0x14, "010000", "0000FF05FBD41401000017 00"),
    (0x32, "05FF0102", "0000FF06FAD43205FF0102F300"),
    (0x4A, "0100", "0000FF04FCD44A0100E100"),
    (0x40, "013004", "0000FF05FBD440013004B700"),
    (0x42, "60", "0000FF03FDD442608A00"),
]


@pytest.mark.parametrize("code,params,frame", VECTORS)
def test_spec_command_vectors(code, params, frame):
    assert encode_command(code, bytes.fromhex(params)) == bytes.fromhex(frame.replace(" ", ""))


def test_decodes_spec_responses():
    d = FrameDecoder()
    got = d.feed(bytes.fromhex("0000FF00FF00" "0000FF06FAD50332010607E800"
                               "0000FF0FF1D54B01010044000704" "16C6C2D7388161 00".replace(" ", "")))
    assert got == [Ack(), Frame(TFI_CHIP, bytes.fromhex("0332010607")),
                   Frame(TFI_CHIP, bytes.fromhex("4B01010044000704 16C6C2D73881".replace(" ", "")))]


def test_ack_nack_and_error_frames():
    assert FrameDecoder().feed(ACK + NACK + ERROR_FRAME) == [Ack(), Nack(), ErrorFrame()]


def test_bad_data_checksum_is_reported_not_raised():
    got = FrameDecoder().feed(bytes.fromhex("0000FF03FDD54B00E100"))
    assert len(got) == 1 and isinstance(got[0], BadFrame) and "checksum" in got[0].reason


def test_bad_length_checksum_then_resync_on_next_frame():
    got = FrameDecoder().feed(bytes.fromhex("0000FF03FCD54B00E000") + bytes.fromhex("0000FF03FDD54B00E000"))
    assert isinstance(got[0], BadFrame) and got[-1] == Frame(TFI_CHIP, b"\x4b\x00")


def test_extended_frame_for_nfcpy_diagnose():
    data = bytes([0x00]) + bytes(i & 0xFF for i in range(262))
    raw = encode_command(0x00, data)
    assert raw[:5] == bytes.fromhex("0000FFFFFF") and raw[5:7] == (265).to_bytes(2, "big")
    assert FrameDecoder().feed(raw) == [Frame(TFI_HOST, b"\x00" + data, True)]


def test_garbage_before_a_frame_is_skipped():
    assert FrameDecoder().feed(b"\x55\x55\x00\x00\x00\x13\x37" + ACK) == [Ack()]


@given(st.binary(min_size=0, max_size=264), st.lists(st.integers(1, 40), max_size=30), st.binary(max_size=20))
def test_round_trip_through_any_chunking_after_garbage(data, cuts, garbage):
    garbage = garbage.replace(b"\x00\xff", b"\x01\xff")
    stream = garbage + encode_frame(TFI_CHIP, data) + ACK
    d, got, pos = FrameDecoder(), [], 0
    for c in cuts + [len(stream)]:
        got += d.feed(stream[pos:pos + c])
        pos += c
    got += d.feed(stream[pos:])
    frames = [g for g in got if isinstance(g, Frame)]
    assert frames and frames[-1].data == data and got[-1] == Ack()


@given(st.binary(max_size=600))
def test_random_bytes_never_raise(data):
    for item in FrameDecoder().feed(data):
        assert isinstance(item, (Frame, Ack, Nack, ErrorFrame, BadFrame))
