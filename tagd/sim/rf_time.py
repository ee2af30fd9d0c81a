"""Air time of ISO/IEC 14443-3 Type A at 106 kbit/s, from frame lengths: what the emulated chip charges for
each command it runs on the RF side, and what the benchmark counts in its floor.

A bit lasts 128/fc (fc = 13.56 MHz: 9.44 µs). A standard frame is a start bit, 9 bits per byte (8 data +
odd parity) and its end: the reader's (modified Miller) ends with a logic 0 and an unmodulated bit
period, the tag's (Manchester) with one bit. REQA/WUPA are short frames (7 bits). The tag answers after the frame
delay time FDT = (n·128 + 84)/fc with n = 9 (91 µs); the reader waits at least 1172/fc (86 µs) after an
answer before its next frame. A 4-bit ACK/NAK is 6 bit times with its start and end. An NTAG21x
programs its EEPROM before it ACKs a WRITE (4.1 ms, datasheet). The figures agree with the NTAG
datasheet's own timing figures (READ: 368 µs command, 1548 µs answer; GET_VERSION 283/868 µs).
"""

from __future__ import annotations

FC = 13.56e6
BIT = 128 / FC  # 9.44 µs
FDT = (9 * 128 + 84) / FC  # tag's frame delay time after a reader frame (last bit 1)
GUARD = 1172 / FC  # minimum delay before the reader's next frame
ACK_BITS = 6  # 4-bit ACK/NAK with start and end bits
WRITE_TIME = 4.1e-3  # NTAG21x EEPROM programming before the ACK of a WRITE
CRC = 2


def reader_frame_time(n_bytes: int) -> float:
    """A standard reader frame of ``n_bytes`` (CRC included when it carries one)."""
    return (1 + 9 * n_bytes + 2) * BIT


def tag_frame_time(n_bytes: int) -> float:
    """A standard tag frame of ``n_bytes`` (CRC included when it carries one)."""
    return (1 + 9 * n_bytes + 1) * BIT


def exchange_time(command_bytes: int, answer_bytes: int | None) -> float:
    """Reader frame, FDT, the tag's answer (None: a 4-bit ACK/NAK), guard time. Lengths without CRC_A:
    both frames carry one."""
    answer = ACK_BITS * BIT if answer_bytes is None else tag_frame_time(answer_bytes + CRC)
    return reader_frame_time(command_bytes + CRC) + FDT + answer + GUARD


def activation_time(uid_length: int) -> float:
    """REQA → ATQA, then per cascade level ANTICOLLISION (``93 20`` → 4 UID bytes + BCC) and SELECT
    (7 bytes + CRC → SAK + CRC): 1, 2 or 3 levels for a 4-, 7- or 10-byte UID."""
    reqa = 10 * BIT + FDT + tag_frame_time(2) + GUARD
    level = (reader_frame_time(2) + FDT + tag_frame_time(5) + GUARD) + \
        (reader_frame_time(9) + FDT + tag_frame_time(3) + GUARD)
    levels = 1 if uid_length <= 4 else (2 if uid_length <= 7 else 3)
    return reqa + levels * level


def command_time(command: bytes, answer: bytes | None) -> float:
    """One Type 2 / MIFARE command as the chip runs it: a WRITE's ACK waits for the EEPROM; a MIFARE
    authentication is two exchanges (token RB, then the reader's answer and the tag's)."""
    op = command[0] if command else 0
    if op in (0x60, 0x61):
        return exchange_time(2, 4) + exchange_time(8, 4)
    if answer is None and op in (0xA2, 0xA0, 0xA5):
        return exchange_time(len(command), None) + WRITE_TIME
    return exchange_time(len(command), None if answer is None else len(answer))


def felica_exchange_time(command_bytes: int, answer_bytes: int, rate: int = 212_000) -> float:
    """A FeliCa exchange at 212 or 424 kbit/s: each frame is a 48-bit preamble, 2 sync bytes, the
    length-prefixed packet and a 2-byte CRC, Manchester coded (8 bit times a byte); the card answers
    within about 0.1 ms of a read (Polling: in its first time slot, 2.4 ms)."""
    frame = lambda n: (6 + 2 + n + 2) * 8 / rate  # noqa: E731
    return frame(command_bytes) + 1e-4 + frame(answer_bytes)


def no_answer_time(command: bytes, timeout: float) -> float:
    """A command nobody answers: the frame goes out, then the reader's timeout runs out."""
    return reader_frame_time(len(command) + CRC) + timeout
