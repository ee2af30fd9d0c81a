"""PN532 commands over a byte transport: the dialog of SPEC §1 (command → ACK → response).

Each command waits for the chip's ACK (100 ms), then its response. A response with a bad checksum
gets a NACK (the chip resends); a chip that does not answer in time gets a host ACK, which aborts
the command, and a :class:`ChipTimeout` (a ReaderError: the reader is reopened).

The frames carry no sequence number, so a chip that was only slow (its ACK arrives after the host gave
up on it) would answer a command twice if it were simply sent again, and every later response would be
taken for the one before it — a READ answered by an authentication's empty answer. So before a command
is sent again, and before the first command after one timed out, the line is resynchronised: an abort,
then a Diagnose communication line test (NumTst 00, UM0701-02 §7.2.1) with a fresh nonce; whatever
arrives before its echo belongs to the old exchange and is dropped. Status bytes of
InDataExchange / InCommunicateThru become exceptions: :class:`Pn532TagLeft` when the target did not
answer, :class:`AuthError` for a MIFARE authentication failure.
"""

from __future__ import annotations

import logging
import os
import time
from collections import deque
from dataclasses import dataclass

from tagd.readers.base import ReaderError
from tagd.readers.tagio import CommandFailed, TagLeft
from tagd.ndef import felica
from tagd.readers.pn532.commands import BrTy, Command, RfItem, Status
from tagd.readers.pn532.transport import Transport
from tagd.readers.pn532.frames import ACK, NACK, TFI_CHIP, WAKEUP, Ack, BadFrame, ErrorFrame, Frame, FrameDecoder, \
    Nack, encode_command

log = logging.getLogger(__name__)

ACK_TIMEOUT = 0.1
GONE_STATUS = {Status.TIMEOUT, Status.RF_FIELD, Status.RELEASED, Status.CARD_DISAPPEARED}
STATUS_TEXT = {Status.TIMEOUT: "timeout", Status.CRC: "CRC error", Status.PARITY: "parity error",
               Status.FRAMING: "framing error", Status.RF_FIELD: "RF field not on",
               Status.RF_PROTOCOL: "RF protocol error", Status.FORMAT: "format error",
               Status.MIFARE_AUTH: "MIFARE authentication error", Status.UID_BCC: "UID BCC wrong",
               Status.WRONG_CONTEXT: "wrong context / unknown target", Status.RELEASED: "target released",
               Status.CARD_DISAPPEARED: "card disappeared"}


class Pn532Error(CommandFailed):
    """The chip reported an error status for a tag command."""

    def __init__(self, status: int, what: str = "") -> None:
        self.status = status
        super().__init__(f"{what}: status 0x{status:02X} ({STATUS_TEXT.get(status, 'error')})".lstrip(": "))


class Pn532TagLeft(Pn532Error, TagLeft):
    pass


class AuthError(Pn532Error):
    pass


class ChipTimeout(ReaderError):
    pass


@dataclass(frozen=True)
class Target:
    tg: int
    atqa: int
    sak: int
    uid: bytes


@dataclass(frozen=True)
class FelicaTarget:
    """A FeliCa card as InListPassiveTarget (212/424 kbps) reports it: its POL_RES."""

    tg: int
    uid: bytes  # the IDm
    pmm: bytes
    system: int | None  # the system code, when the Polling asked for it


class Pn532Chip:
    def __init__(self, transport: Transport) -> None:
        self.t = transport
        self.decoder = FrameDecoder()
        self.firmware = b""
        self.pending: int | None = None  # code of a command sent and ACKed whose response is still due
        self.unsynced = False  # a command timed out: late frames of it may still be on the way
        self._items: deque = deque()

    # --- the dialog -------------------------------------------------------
    def _next_item(self, deadline: float, interruptible: bool = False):
        """The next decoded item, or None at the deadline (or on interrupt when asked)."""
        while not self._items:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            chunk = self.t.read(remaining, interruptible)
            if chunk:
                self._items.extend(self.decoder.feed(chunk))
            elif interruptible and self.t.interrupted:
                return None
        return self._items.popleft()

    def send(self, code: int, params: bytes = b"") -> None:
        """Send a command and wait for its ACK (resending once on NACK or silence, after a resync)."""
        if self.unsynced:
            self.resync()
        frame = encode_command(code, params)
        for attempt in range(2):
            if attempt:
                self.resync()
            self.t.write(frame)
            if self._await_ack(code):
                self.pending = code
                return
        self.unsynced = True
        raise ChipTimeout(f"PN532 did not acknowledge command {code:02X}")

    def _await_ack(self, code: int) -> bool:
        """True on the chip's ACK; False on a NACK or silence."""
        deadline = time.monotonic() + ACK_TIMEOUT
        while (item := self._next_item(deadline)) is not None:
            if isinstance(item, Ack):
                return True
            if isinstance(item, ErrorFrame):
                raise Pn532Error(0x7F, f"command {code:02X} rejected by the chip (application error frame)")
            if isinstance(item, Nack):
                return False
        return False

    def resync(self, timeout: float = 0.5) -> None:
        """Abort whatever the chip is doing and drop every frame until the echo of a fresh Diagnose
        line test: afterwards nothing from an earlier exchange can be taken for a response."""
        self.abort()
        nonce = os.urandom(4)
        self.t.write(encode_command(Command.DIAGNOSE, b"\x00" + nonce))
        deadline = time.monotonic() + timeout
        while (item := self._next_item(deadline)) is not None:
            if (isinstance(item, Frame) and item.tfi == TFI_CHIP and item.code == Command.DIAGNOSE + 1
                    and nonce in item.data):
                self.unsynced = False
                return
        self.unsynced = True
        raise ChipTimeout("PN532 did not answer a line test")

    def receive(self, timeout: float, interruptible: bool = False, patient: bool = False) -> bytes | None:
        """The response to the pending command: data after the response code.

        None on interrupt; on timeout, None when ``patient`` (the command stays pending: a list that
        waits for a tag), else the command is aborted and ChipTimeout raised."""
        code = self.pending
        assert code is not None
        deadline = time.monotonic() + timeout
        nacks = 0
        while True:
            item = self._next_item(deadline, interruptible)
            if item is None:
                if patient or (interruptible and self.t.interrupted):
                    return None
                self.abort()
                self.unsynced = True  # its answer may still come
                raise ChipTimeout(f"PN532 did not answer command {code:02X} within {timeout:.2f} s")
            if isinstance(item, Frame) and item.tfi == TFI_CHIP and item.code == code + 1:
                self.pending = None
                return item.data[1:]
            if isinstance(item, BadFrame) and nacks < 2:
                nacks += 1
                self.t.write(NACK)  # the chip sends its response again
            elif isinstance(item, ErrorFrame):
                self.pending = None
                raise Pn532Error(0x7F, f"command {code:02X} failed (application error frame)")

    def command(self, code: int, params: bytes = b"", timeout: float = 1.0) -> bytes:
        self.send(code, params)
        data = self.receive(timeout)
        assert data is not None
        return data

    def abort(self) -> None:
        """A host ACK aborts whatever the chip is doing; then forget what is in flight."""
        try:
            self.t.write(ACK)
        except ReaderError:
            pass
        self.pending = None
        time.sleep(0.002)
        self.decoder.reset()
        self._items.clear()
        try:
            self.t.read(0.0)
        except ReaderError:
            pass
        self.decoder.reset()

    # --- commands ---------------------------------------------------------
    def wake_up(self) -> None:
        self.t.write(WAKEUP)

    def sam_configuration(self) -> None:
        self.command(Command.SAM_CONFIGURATION, bytes([0x01, 0x00, 0x00]))

    def firmware_version(self) -> bytes:
        self.firmware = self.command(Command.GET_FIRMWARE_VERSION)
        return self.firmware

    def rf_configuration(self, item: int, data: bytes) -> None:
        self.command(Command.RF_CONFIGURATION, bytes([item]) + data)

    def set_max_retries(self, atr: int = 0xFF, psl: int = 0x01, passive: int = 0xFF) -> None:
        """RFConfiguration item 05. PassiveActivation FF (the power-up default): a list waits for a tag."""
        self.rf_configuration(RfItem.MAX_RETRIES, bytes([atr, psl, passive]))

    def set_timeouts(self, atr_res: int = 0x0B, retry: int = 0x0A) -> None:
        """RFConfiguration item 02: timeout indexes (n → 100 µs·2^(n-1); 0A = 51.2 ms, 09 = 25.6 ms).

        ``retry`` bounds how long InCommunicateThru waits for a tag that does not answer, i.e. how
        long a presence check of a tag that has left takes. The timer stops at the tag's first bit,
        so a short value does not cut long answers (a 60-page FAST_READ) short."""
        self.rf_configuration(RfItem.TIMINGS, bytes([0x00, atr_res, retry]))

    def read_register(self, *addresses: int) -> bytes:
        """ReadRegister: one value per 16-bit address (CIU registers are 0x63xx)."""
        return self.command(Command.READ_REGISTER, b"".join(a.to_bytes(2, "big") for a in addresses))

    def write_register(self, values: dict[int, int]) -> None:
        """WriteRegister: ``{address: value}``."""
        self.command(Command.WRITE_REGISTER, b"".join(a.to_bytes(2, "big") + bytes([v]) for a, v in values.items()))

    def start_list(self) -> None:
        """InListPassiveTarget(1 target, 106 kbps type A); the answer comes via finish_list()."""
        self.send(Command.IN_LIST_PASSIVE_TARGET, b"\x01\x00")

    def finish_list(self, timeout: float, interruptible: bool = True) -> Target | None:
        data = self.receive(timeout, interruptible, patient=True)
        if data is None or not data or data[0] == 0:
            return None
        tg, atqa, sak, n = data[1], (data[2] << 8) | data[3], data[4], data[5]
        return Target(tg, atqa, sak, bytes(data[6:6 + n]))

    def list_felica(self, rate: int = BrTy.FELICA_212, timeout: float = 0.5) -> FelicaTarget | None:
        """InListPassiveTarget of one FeliCa card: Polling for any system code, asking for it (request 01)."""
        data = self.command(Command.IN_LIST_PASSIVE_TARGET, bytes([1, rate]) + felica.polling()[1:], timeout)
        if len(data) < 20 or data[0] == 0 or data[3] != felica.POLLING_RES:
            return None
        tg, n = data[1], data[2]
        system = int.from_bytes(data[20:22], "big") if n >= 20 and len(data) >= 22 else None
        return FelicaTarget(tg, bytes(data[4:12]), bytes(data[12:20]), system)

    def list_target(self, timeout: float = 1.0) -> Target | None:
        self.start_list()
        target = self.finish_list(timeout, interruptible=False)
        if self.pending is not None:
            self.abort()
        return target

    def _status(self, data: bytes, what: str) -> bytes:
        status = data[0] & 0x3F if data else Status.TIMEOUT
        if status == 0:
            return bytes(data[1:])
        if status in GONE_STATUS:
            raise Pn532TagLeft(status, what)
        if status == Status.MIFARE_AUTH:
            raise AuthError(status, what)
        raise Pn532Error(status, what)

    def data_exchange(self, data: bytes, tg: int = 1, timeout: float = 0.5) -> bytes:
        return self._status(self.command(Command.IN_DATA_EXCHANGE, bytes([tg]) + data, timeout), f"InDataExchange {data[:1].hex()}")

    def communicate_thru(self, data: bytes, timeout: float = 0.5) -> bytes:
        return self._status(self.command(Command.IN_COMMUNICATE_THRU, data, timeout), f"InCommunicateThru {data[:1].hex()}")

    def release(self, tg: int = 0) -> None:
        """InRelease: halt the target and forget it (0 = all); it must be listed again."""
        self.command(Command.IN_RELEASE, bytes([tg]))

    def deselect(self, tg: int = 0) -> None:
        """InDeselect: halt the target but keep it listed, so InSelect can wake it again."""
        self.command(Command.IN_DESELECT, bytes([tg]))

    def select(self, tg: int = 1, timeout: float = 0.3) -> bool:
        """InSelect: wake and select the listed target by its UID. False when it does not answer
        (it left, or another tag took its place); an unlisted target is a Pn532Error (27)."""
        try:
            self._status(self.command(Command.IN_SELECT, bytes([tg]), timeout), "InSelect")
        except Pn532TagLeft:
            return False
        return True
