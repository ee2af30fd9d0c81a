"""A virtual ACR122U card for Debian's vsmartcard-vpcd, so a real pcscd and pyscard see a tag with no hardware.

vpcd (a reader driver inside pcscd) listens on TCP (127.0.0.1:35963 by default); the card side connects
and speaks 2-byte big-endian length + payload. One-byte payloads are control (00 power off, 01 power on,
02 reset, 04 get ATR → the card answers its ATR); longer ones are C-APDUs answered with an R-APDU.
Connecting is inserting the card; closing the socket is removing it.

:class:`Acr122Card` is sans-I/O (APDU in, R-APDU out): the ACR122U's pseudo-APDUs over an
:class:`EmulatedTag`, with direct transmit (``FF 00 00 00 Lc D4 …``) routed into the PN532 emulator's
command logic — the same code that answers the PN532 driver. :class:`VirtualAcr122` is the socket side.
"""

from __future__ import annotations

import os
import socket
import struct
import threading
import time

from tagd.sim.pn532_core import UNKNOWN, Pn532Core
from tagd.sim.tags import EmulatedTag

OK = b"\x90\x00"
FAIL = b"\x63\x00"
UNSUPPORTED = b"\x6a\x81"
FIRMWARE = b"ACR122U207"
QUICKACK = getattr(socket, "TCP_QUICKACK", None)  # Linux; the kernel clears it again, so set it per read
CARD_NAME = {"classic1k": b"\x00\x01", "classic4k": b"\x00\x02", "classicmini": b"\x00\x26"}


def atr_for(kind: str) -> bytes:
    """PC/SC Part 3 ATR for an ISO 14443-3 card, as the ACR122U builds it; TCK = XOR of T0..end."""
    body = bytes.fromhex("8F8001804F0CA00000030603") + CARD_NAME.get(kind, b"\x00\x03") + bytes(4)
    tck = 0
    for b in body:
        tck ^= b
    return b"\x3b" + body + bytes([tck])


class Acr122Card:
    """The reader's answers for one card on its antenna.

    The EmulatedTag stops answering after a command it refuses (a failed authentication, a READ it does
    not allow, a GET_VERSION a plain Ultralight does not know) until it is selected again, and the reader
    does not do that by itself: a driver reselects with InListPassiveTarget by direct transmit, or pcscd
    powers the slot off and on. A driver that forgets to reselect fails here as it would on a tag.
    """

    def __init__(self, tag: EmulatedTag) -> None:
        self.tag = tag
        self.keys: dict[int, bytes] = {}
        self.led = 0x00
        self.indications: list[bytes] = []  # the LED/buzzer (FF 00 40) and detection-beep (FF 00 52) APDUs, in order
        self.core = Pn532Core()
        self.core.place(tag)
        self.activate()

    def activate(self) -> None:
        """The reader (re)selects the card: at insertion, power on, reset."""
        self.core.handle(b"\x4a\x01\x00")

    @property
    def atr(self) -> bytes:
        return atr_for(self.tag.dump.kind)

    def apdu(self, capdu: bytes) -> bytes:
        if len(capdu) < 5 or capdu[0] != 0xFF:
            return UNSUPPORTED
        ins, p1, p2, lc = capdu[1], capdu[2], capdu[3], capdu[4]
        data = capdu[5:5 + lc]
        if ins == 0xCA and p1 == 0x00:  # get UID
            return self.tag.uid + OK
        if ins == 0xB0:  # read binary
            answer = self.tag.transceive(bytes([0x30, p2]))
            return FAIL if isinstance(answer, int) else answer[: lc or 16] + OK
        if ins == 0xD6:  # update binary
            if lc == 4 and not self.tag.is_classic:
                answer = self.tag.transceive(bytes([0xA2, p2]) + data)
            elif lc == 16 and self.tag.is_classic:
                answer = self.tag.transceive(bytes([0xA0, p2]) + data)
            else:
                return FAIL
            return FAIL if isinstance(answer, int) else OK
        if ins == 0x82 and lc == 6:  # load key into a slot
            if p2 > 1:
                return UNSUPPORTED
            self.keys[p2] = bytes(data)
            return OK
        if ins == 0x86 and lc == 5 and len(data) == 5:  # general authenticate: 01 00 block keytype slot
            block, key_type, slot = data[2], data[3], data[4]
            if slot not in self.keys or key_type not in (0x60, 0x61):
                return FAIL
            answer = self.tag.transceive(bytes([key_type, block]) + self.keys[slot] + self.tag.uid[-4:])
            return FAIL if isinstance(answer, int) else OK
        if ins == 0x00 and p1 == 0x48:  # firmware version: ASCII, no status word
            return FIRMWARE
        if ins == 0x00 and p1 == 0x40:  # LED and buzzer control
            self.indications.append(bytes(capdu))
            self.led = p2 & 0x0F
            return bytes([0x90, self.led])
        if ins == 0x00 and p1 == 0x52:  # buzzer on detection off/on
            self.indications.append(bytes(capdu))
            return OK
        if ins == 0x00 and p1 == 0x00 and data[:1] == b"\xd4":  # direct transmit to the PN532 inside
            return self._direct(data[1:])
        return UNSUPPORTED

    def _direct(self, command: bytes) -> bytes:
        response = self.core.handle(command)
        if response is None or response is UNKNOWN:
            return FAIL
        return b"\xd5" + response + OK


class VirtualAcr122:
    """Puts cards on vpcd's virtual reader: place() connects a card, remove() disconnects it.

    pcscd only sees a card leave if the slot stays empty across one of its presence polls (~400 ms);
    a card swapped faster than that would go unnoticed, so place() keeps the slot empty for REMOVAL_GAP
    after the last removal on the same port.
    """

    REMOVAL_GAP = 1.0
    _removed_at: dict[int, float] = {}

    def __init__(self, port: int = 35963, host: str = "127.0.0.1") -> None:
        self.host, self.port = host, port
        self.card: Acr122Card | None = None
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self.apdus = 0
        self.last_tag: EmulatedTag | None = None  # kept after remove() for --save

    def place(self, tag: str | os.PathLike[str] | EmulatedTag) -> EmulatedTag:
        self.remove()
        t = tag if isinstance(tag, EmulatedTag) else EmulatedTag.from_file(tag)
        card = Acr122Card(t)
        wait = self._removed_at.get(self.port, 0.0) + self.REMOVAL_GAP - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        sock = socket.create_connection((self.host, self.port), timeout=5)
        self.card, self.last_tag = card, t
        sock.settimeout(None)
        self._sock = sock
        self._thread = threading.Thread(target=self._serve, args=(sock, self.card), daemon=True)
        self._thread.start()
        return t

    def remove(self) -> None:
        sock, self._sock = self._sock, None
        self.card = None
        if sock is not None:
            self._removed_at[self.port] = time.monotonic()
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()
        if self._thread is not None:
            self._thread.join(2)
            self._thread = None

    stop = remove

    def unplug(self) -> None:
        raise ValueError("vpcd's virtual reader cannot be unplugged (stop pcscd instead)")

    replug = unplug

    def stats(self) -> dict[str, int | bool]:
        return {"apdus": self.apdus, "card": self.card is not None}

    @property
    def tag(self) -> EmulatedTag | None:
        return self.card.tag if self.card else None

    @staticmethod
    def _recv(sock: socket.socket, n: int) -> bytes:
        buf = b""
        while len(buf) < n:
            chunk = sock.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("vpcd closed the connection")
            buf += chunk
            if QUICKACK is not None:
                # vpcd writes the length and the APDU separately (Nagle holds the APDU until the length is
                # acknowledged): acknowledge at once, or every APDU waits ~40 ms for a delayed ACK.
                sock.setsockopt(socket.IPPROTO_TCP, QUICKACK, 1)
        return buf

    def _serve(self, sock: socket.socket, card: Acr122Card) -> None:
        try:
            while True:
                (size,) = struct.unpack(">H", self._recv(sock, 2))
                msg = self._recv(sock, size)
                if size == 1:
                    if msg[0] == 0x04:
                        sock.sendall(struct.pack(">H", len(card.atr)) + card.atr)
                    elif msg[0] in (0x01, 0x02):  # power on / reset: the reader selects the card afresh
                        card.activate()
                    continue  # power off / on / reset need no answer
                self.apdus += 1
                answer = card.apdu(msg)
                sock.sendall(struct.pack(">H", len(answer)) + answer)
        except (OSError, ConnectionError):
            return
