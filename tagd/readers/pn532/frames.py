"""PN532 host-interface frames, sans-I/O: bytes in, frames out (and back).

Normal frame:   ``00 00 FF LEN LCS TFI PD0..PDn DCS 00``   (LEN counts TFI + data, at most 255)
Extended frame: ``00 00 FF FF FF LENm LENl LCS TFI … DCS 00``
ACK ``00 00 FF 00 FF 00``, NACK ``00 00 FF FF 00 00``, application error ``00 00 FF 01 FF 7F 81 00``.

:class:`FrameDecoder` is streaming: feed it whatever the UART delivered and it returns every complete
frame, resynchronising on the ``00 FF`` start code after garbage. Checksum errors come back as
:class:`BadFrame` values; nothing here raises on input, so a noisy line can never crash a reader.
Both the driver and the emulator use this one codec.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union

TFI_HOST = 0xD4
TFI_CHIP = 0xD5
ACK = bytes.fromhex("0000FF00FF00")
NACK = bytes.fromhex("0000FFFF0000")
ERROR_FRAME = bytes.fromhex("0000FF01FF7F8100")
WAKEUP = b"\x55\x55" + b"\x00" * 14
START = b"\x00\xff"
MAX_NORMAL = 255  # LEN (TFI + data) of a normal frame; longer needs the extended form
MAX_EXTENDED = 266  # the chip's buffer: 265 bytes of host data + TFI


@dataclass(frozen=True)
class Frame:
    tfi: int
    data: bytes  # after TFI: command (or response) code, then parameters
    extended: bool = False

    @property
    def code(self) -> int:
        return self.data[0] if self.data else -1


@dataclass(frozen=True)
class Ack:
    pass


@dataclass(frozen=True)
class Nack:
    pass


@dataclass(frozen=True)
class ErrorFrame:
    """The chip's "application level error" frame: it could not parse our last frame."""


@dataclass(frozen=True)
class BadFrame:
    reason: str
    raw: bytes


Decoded = Union[Frame, Ack, Nack, ErrorFrame, BadFrame]


def _checksum(data: bytes) -> int:
    return (0x100 - (sum(data) & 0xFF)) & 0xFF


def encode_frame(tfi: int, data: bytes) -> bytes:
    """A normal frame, or an extended one when TFI + data exceed 255 bytes."""
    body = bytes([tfi]) + data
    n = len(body)
    if n > 0xFFFF:
        raise ValueError(f"frame body of {n} bytes is too long")
    if n < MAX_NORMAL:  # LEN FF is legal but looks like the extended marker to some parsers: avoid it
        head = bytes([0x00, 0x00, 0xFF, n, _checksum(bytes([n]))])
    else:
        hi, lo = n >> 8, n & 0xFF
        head = bytes([0x00, 0x00, 0xFF, 0xFF, 0xFF, hi, lo, _checksum(bytes([hi, lo]))])
    return head + body + bytes([_checksum(body), 0x00])


def encode_command(code: int, params: bytes = b"") -> bytes:
    return encode_frame(TFI_HOST, bytes([code]) + params)


def encode_response(code: int, params: bytes = b"") -> bytes:
    return encode_frame(TFI_CHIP, bytes([code]) + params)


class FrameDecoder:
    """Streaming decoder. ``feed()`` returns the frames completed by the new bytes."""

    def __init__(self, max_body: int = MAX_EXTENDED) -> None:
        self.buf = bytearray()
        self.max_body = max_body

    def reset(self) -> None:
        self.buf.clear()

    def feed(self, data: bytes) -> list[Decoded]:
        self.buf += data
        out: list[Decoded] = []
        while True:
            item = self._next()
            if item is None:
                return out
            out.append(item)

    def _next(self) -> Decoded | None:
        buf = self.buf
        start = buf.find(START)
        if start < 0:
            # keep a trailing 00: it may be the first half of a start code
            del buf[: max(0, len(buf) - 1) if buf[-1:] == b"\x00" else len(buf)]
            return None
        if start:
            del buf[:start]
        # buf starts with 00 FF
        if len(buf) < 4:
            return None
        b2, b3 = buf[2], buf[3]
        if b2 == 0x00 and b3 == 0xFF:
            del buf[:5 if len(buf) >= 5 and buf[4] == 0x00 else 4]
            return Ack()
        if b2 == 0xFF and b3 == 0x00:
            del buf[:5 if len(buf) >= 5 and buf[4] == 0x00 else 4]
            return Nack()
        if b2 == 0xFF and b3 == 0xFF:
            if len(buf) < 6:
                return None
            hi, lo, lcs = buf[4], buf[5], buf[6] if len(buf) > 6 else None
            if lcs is None:
                return None
            if (hi + lo + lcs) & 0xFF:
                return self._bad(2, "extended frame length checksum mismatch")
            length, body_at, extended = (hi << 8) | lo, 7, True
        else:
            length, lcs = b2, b3
            if (length + lcs) & 0xFF:
                return self._bad(2, "length checksum mismatch")
            body_at, extended = 4, False
        if length == 0 or length > self.max_body:
            return self._bad(2, f"impossible frame length {length}")
        end = body_at + length + 2  # body, DCS, postamble
        if len(buf) < end - 1:
            return None
        body = bytes(buf[body_at: body_at + length])
        dcs = buf[body_at + length]
        raw = bytes(buf[: end])
        del buf[: end - 1]
        if buf[:1] == b"\x00":  # postamble (tolerate a missing one)
            del buf[:1]
        if (sum(body) + dcs) & 0xFF:
            return BadFrame("data checksum mismatch", raw)
        if body == b"\x7f":
            return ErrorFrame()
        return Frame(body[0], body[1:], extended)

    def _bad(self, skip: int, reason: str) -> BadFrame:
        raw = bytes(self.buf[:8])
        del self.buf[:skip]
        return BadFrame(reason, raw)
