"""The PN532 reader: a poll loop built for the shortest tap→token time and the fewest wire bytes.

Waiting: MaxRetries(PassiveActivation = FF) makes InListPassiveTarget wait *in the chip* until a tag
enters the field, so an idle reader sends nothing and the tag is reported the moment it arrives
(an interrupt sends a host ACK to abort the wait when a write is queued or the reader stops).
Reading: NTAG/Ultralight — GET_VERSION, then FAST_READ of the CC and the first data pages, then one
more FAST_READ for exactly the rest of the NDEF TLV (pages 0–2 are rebuilt from the UID the listing
already gave). MIFARE Classic — MAD with the MAD key, then the NDEF sectors with the NFC Forum key,
the default key and the configured keys. Presence: while a tag is there, a READ of page 0 every 50 ms
(InSelect for a Classic card); no answer within the 12.8 ms RF timeout means it left, so removal is
noticed within 50 + 12.8 ms + a few bytes on the wire, ~65 ms at worst on real hardware.
"""

from __future__ import annotations

import logging
import os
import re
import time
from typing import Any

from tagd.ndef.decode import DecodedTag
from tagd.readers.base import Capability, Reader, ReaderError, ReaderEvent, ReaderInfo, TagGone, TagSeen, \
    WriteCancelled, WriteError, WriteRequest, register
from tagd.readers.pn532.commands import Command, Status
from tagd.readers.pn532.frames import ACK
from tagd.ndef import felica
from tagd.readers.pn532.chip import FelicaTarget,  AuthError, ChipTimeout, Pn532Chip, Pn532Error, Target, Pn532TagLeft
from tagd.readers import tagio
from tagd.readers.pn532.transport import SerialTransport, TransportFactory

log = logging.getLogger(__name__)

PRESENCE_INTERVAL = 0.05
# RFConfiguration item 02 RetryTimeout: 12.8 ms for a tag that does not answer (power-up default 51.2 ms). It
# bounds every exchange, so it must outlast the slowest answer a tag gives: an NTAG21x ACKs a WRITE after
# programming its EEPROM, within 10 ms (datasheet T_TimeOut); reads answer within ~0.1 ms.
PRESENCE_RF_TIMEOUT = 0x08
POWER_UP_BAUD = 115200
SPEEDS = {9600: 0x00, 19200: 0x01, 38400: 0x02, 57600: 0x03, 115200: 0x04, 230400: 0x05, 460800: 0x06,
          921600: 0x07}  # SetSerialBaudrate codes (1288000 too, which few USB bridges do)
LIST_SLICE = 0.5
FELICA_POLL_INTERVAL = 0.05  # with the felica option: the pause between two Type A + FeliCa polls  # poll() returns at least this often while the chip waits for a tag


def usb_topology(dev_path: str, sys_root: str = "/sys") -> str | None:
    """The USB port path (``1-2.3.1``) of a tty, found by walking up /sys/dev/char/MAJ:MIN."""
    try:
        st = os.stat(os.path.realpath(dev_path))
        path = os.path.realpath(f"{sys_root}/dev/char/{os.major(st.st_rdev)}:{os.minor(st.st_rdev)}")
    except OSError:
        return None
    pattern = re.compile(r"^\d+-[\d.]+$")
    while path not in ("/", sys_root, ""):
        if pattern.match(os.path.basename(path)):
            return os.path.basename(path)
        path = os.path.dirname(path)
    return None


@register
class Pn532Reader(Reader):
    driver = "pn532uart"
    capabilities = Capability.READ | Capability.WRITE | Capability.REMOVABLE

    def __init__(self, path: str, options: dict[str, Any] | None = None,
                 transport_factory: TransportFactory = SerialTransport) -> None:
        """``transport_factory(path, baud)`` makes the byte pipe: a serial port by default, the emulator
        in memory in tests (:meth:`tagd.sim.memory.MemoryPn532.transport`)."""
        super().__init__(path, options)
        # the line speed to run at: the chip powers up at 115200 and is switched (SetSerialBaudrate) after open
        self.baud = int(self.options.get("baud", POWER_UP_BAUD))
        self.keys = [bytes.fromhex(k) for k in self.options.get("keys", [])]
        # NTAG21x/EV1 passwords (PWD, or PWD + PACK), as keys are for MIFARE Classic; never logged
        self.passwords = [bytes.fromhex(p) for p in self.options.get("passwords", [])]
        # FeliCa cards too (arcade access cards): the chip cannot wait for two kinds at once, so the reader
        # polls Type A and FeliCa in turn every FELICA_POLL_INTERVAL instead of waiting in the chip
        self.felica = bool(self.options.get("felica", False))
        self.transport = transport_factory(path, POWER_UP_BAUD)
        self.chip = Pn532Chip(self.transport)
        self.info: ReaderInfo | None = None
        self.target: Target | None = None
        self.listing = False
        self._last_check = 0.0
        self.last_read: tuple[Target, bytes, bytes | None, frozenset[int]] | None = None
        self.unreadable = False  # the tag on the reader refused the reads (reported by its UID)

    # --- lifecycle --------------------------------------------------------
    def open(self) -> ReaderInfo:
        if self.baud not in SPEEDS:
            raise ReaderError(f"PN532 line speed {self.baud} is not one the chip has "
                              f"({', '.join(str(b) for b in sorted(SPEEDS))})")
        self.transport.open()
        try:
            try:
                fw = self._start()
            except ChipTimeout:
                if self.baud == POWER_UP_BAUD:
                    raise
                self.transport.set_baud(self.baud)  # still at the speed a previous run switched to
                fw = self._start()
            if self.transport.baud != self.baud:
                self._switch_speed(self.baud)
            self.chip.set_max_retries(0xFF, 0x01, 0x01 if self.felica else 0xFF)
            self.chip.set_timeouts(0x0B, PRESENCE_RF_TIMEOUT)
        except (ReaderError, Pn532Error) as exc:
            self.transport.close()
            raise ReaderError(f"no PN532 answering on {self.path}: {exc}") from None
        self.target, self.listing = None, False
        stable = usb_topology(self.path) or f"pn532uart:{self.path}"
        name = f"PN532 v{fw[1]}.{fw[2]}" if len(fw) >= 3 else "PN532"
        self.info = ReaderInfo("pn532", self.path, stable, name, self.capabilities)
        return self.info

    def _start(self) -> bytes:
        self.chip.wake_up()
        self.chip.decoder.reset()
        self.chip.sam_configuration()
        return self.chip.firmware_version()

    def _switch_speed(self, baud: int) -> None:
        """SetSerialBaudrate, then the host's ACK (the chip changes speed on it), then ours follows."""
        self.chip.command(Command.SET_SERIAL_BAUDRATE, bytes([SPEEDS[baud]]))
        self.transport.write(ACK)
        time.sleep(0.001)  # the chip switches after the ACK's last byte
        self.transport.set_baud(baud)

    def close(self) -> None:
        if self.transport.is_open:
            try:
                self.chip.abort()
                if self.transport.baud != POWER_UP_BAUD:  # leave the chip as a fresh open expects it
                    self._switch_speed(POWER_UP_BAUD)
            except Exception:
                pass
        self.transport.close()
        self.listing = False

    def interrupt(self) -> None:
        self.transport.interrupt()

    def dispose(self) -> None:
        self.transport.destroy()

    # --- polling ----------------------------------------------------------
    def poll(self) -> list[ReaderEvent]:
        assert self.info is not None
        if self.target is not None:
            return self._check_presence()
        if self.felica:
            return self._poll_in_turn()
        if not self.listing:
            self.chip.start_list()
            self.listing = True
        target = self.chip.finish_list(LIST_SLICE, interruptible=True) if self.chip.pending else None
        if target is None:
            if self.transport.interrupted:
                self.chip.abort()
                self.listing = False
                self.transport.drain_interrupt()
            elif self.chip.pending is None:
                self.listing = False  # the chip answered "no target" (finite retries)
            return []
        self.listing = False
        return self._on_target(target)

    def _poll_in_turn(self) -> list[ReaderEvent]:
        """Type A (two tries), then FeliCa at 212 kbps, then a pause; an interrupt ends the pause."""
        target = self.chip.list_target(0.5)
        if target is not None:
            return self._on_target(target)
        card = self.chip.list_felica()
        if card is not None:
            return self._on_felica(card)
        self.transport.wait_readable(FELICA_POLL_INTERVAL)
        self.transport.drain_interrupt()
        return []

    def _on_felica(self, card: FelicaTarget) -> list[ReaderEvent]:
        """IDm as the token's UID; NDEF from a Lite-S (Type 3 Tag) when its attribute block says so."""
        self.target = card
        self._last_check = time.monotonic()
        memory = None
        if card.pmm[1:2] == b"\xf1" or card.system == felica.SYSTEM_NDEF:
            try:
                memory = self._read_felica(card)
            except Pn532TagLeft:
                self.target = None
                return []
            except (Pn532Error, felica.FelicaError) as exc:
                log.info("FeliCa %s: no NDEF read: %s", card.uid.hex(), exc)
        decoded = felica.decode_felica(card.uid, memory)
        assert self.info is not None
        token = decoded.to_token(reader_id=self.info.reader_id, source=self.info.connect_string)
        detail = {"kind": decoded.kind, "pmm": card.pmm.hex(), "system": f"{card.system or 0:04x}",
                  "capacity": decoded.capacity, "read_only": decoded.read_only, "errors": decoded.errors}
        return [TagSeen(self.info.reader_id, token, detail)]

    def _read_felica(self, card: FelicaTarget) -> bytes | None:
        def read(blocks: range) -> bytes:
            answer = self.chip.communicate_thru(felica.read_without_encryption(card.uid, blocks))
            return felica.parse_read_response(answer, card.uid)

        aib = read(range(0, 1))
        n = felica.message_length(aib)
        if n is None:
            return None
        memory = bytearray(aib)
        last = -(-n // felica.BLOCK)  # blocks 1..last hold the message
        for start in range(1, last + 1, felica.MAX_BLOCKS_PER_READ):
            memory += read(range(start, min(last, start + felica.MAX_BLOCKS_PER_READ - 1) + 1))
        return bytes(memory)

    def _on_target(self, target: Target) -> list[ReaderEvent]:
        self.target = target
        self._last_check = time.monotonic()
        try:
            decoded = self._read(target)
        except Pn532TagLeft:
            self.target = None
            return []
        assert self.info is not None
        token = decoded.to_token(reader_id=self.info.reader_id, source=self.info.connect_string)
        return [TagSeen(self.info.reader_id, token, self._detail(target, decoded))]

    @staticmethod
    def _detail(target: Target, decoded: DecodedTag) -> dict[str, Any]:
        return {"kind": decoded.kind, "atqa": f"{target.atqa:04x}", "sak": f"{target.sak:02x}",
                "capacity": decoded.capacity, "read_only": decoded.read_only, "errors": decoded.errors}

    def _check_presence(self) -> list[ReaderEvent]:
        assert self.info is not None and self.target is not None
        wait = self._last_check + PRESENCE_INTERVAL - time.monotonic()
        if wait > 0:
            self.transport.wait_readable(wait)
            if self.transport.interrupted:
                self.transport.drain_interrupt()
                return []
        self._last_check = time.monotonic()
        if self._present():
            return []
        self.target = None
        return [TagGone(self.info.reader_id)]

    def _present(self) -> bool:
        """Is the same tag still there? InCommunicateThru READ of page 0 answers with the first UID bytes on
        a Type 2 tag, so a tag swapped for another between two checks is noticed too, and a tag that left
        costs only the short RF timeout set at open (PRESENCE_RF_TIMEOUT). A MIFARE Classic card would halt
        on an unauthenticated READ, so it gets InSelect instead: WUPA and select of its own UID, which a
        halted card answers and a missing or different card does not."""
        assert self.target is not None
        if isinstance(self.target, FelicaTarget):  # a Polling the card answers with its IDm
            try:
                answer = self.chip.communicate_thru(felica.polling(felica.SYSTEM_ANY, 0x00), timeout=0.3)
            except Pn532TagLeft:
                return False
            except Pn532Error:
                return True
            return answer[2:10] == self.target.uid
        if self._is_classic(self.target) or self.unreadable:  # a tag that refused a read stays halted
            try:
                return self.chip.select(self.target.tg)
            except Pn532Error:  # the chip no longer has it listed: list again
                return False
        try:
            page0 = self.chip.communicate_thru(b"\x30\x00", timeout=0.3)
        except Pn532TagLeft:
            return False
        except Pn532Error:  # an answer that is an error (CRC, a NAK): something is still there
            return True
        return len(self.target.uid) != 7 or page0[:3] == self.target.uid[:3]

    # --- reading (tagio's algorithms over this chip) ------------------------------
    def _is_classic(self, target: Target) -> bool:
        return tagio.classic_kind(target.sak) is not None

    def _read(self, target: Target, whole: bool = False) -> DecodedTag:
        """The tag's token; a tag that refuses the reads is a token by its UID with the reason (tagio)."""
        decoded, read = tagio.read_or_uid(self._io(target), target.uid, target.sak, self.keys, whole,
                                           self.passwords)
        self.last_read = (target, read.memory, read.version, read.unknown) if read else None
        self.unreadable = read is None
        return decoded

    def _io(self, target: Target) -> "_ChipIO":
        return _ChipIO(self.chip, target)

    # --- writing ----------------------------------------------------------
    def _wait_for_tag(self, request: WriteRequest) -> Target | FelicaTarget:
        if self.target is not None:
            return self.target
        if self.felica:
            return self._wait_in_turn(request)
        deadline = time.monotonic() + request.timeout
        self.chip.start_list()
        while True:
            if request.cancel.is_set():
                self.chip.abort()
                raise WriteCancelled("write cancelled")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.chip.abort()
                raise WriteError(f"no tag within {request.timeout:g} s")
            target = self.chip.finish_list(min(0.1, remaining), interruptible=True)
            if target is not None:
                self.target = target
                return target
            self.transport.drain_interrupt()
            if self.chip.pending is None:
                self.chip.start_list()

    def _wait_in_turn(self, request: WriteRequest) -> Target | FelicaTarget:
        """With the felica option: Type A and FeliCa listed in turn, as poll() does, until a card or the timeout."""
        deadline = time.monotonic() + request.timeout
        while not request.cancel.is_set():
            if time.monotonic() > deadline:
                raise WriteError(f"no tag within {request.timeout:g} s")
            self.target = self.chip.list_target(0.5) or self.chip.list_felica()
            if self.target is not None:
                return self.target
            self.transport.wait_readable(FELICA_POLL_INTERVAL)
            self.transport.drain_interrupt()
        raise WriteCancelled("write cancelled")

    def write(self, request: WriteRequest) -> TagSeen:
        assert self.info is not None
        if self.listing:
            self.chip.abort()
            self.listing = False
        target = self._wait_for_tag(request)
        if isinstance(target, FelicaTarget):
            raise WriteError("writing to a FeliCa card is not supported: tagd writes NTAG/Ultralight and MIFARE Classic")
        tagio.check_target(target.uid, request)
        try:
            decoded = tagio.write_text(self._io(target), target.uid, target.sak, request.text, self.keys,
                                       self.passwords)
        except Pn532TagLeft:
            self.target = None
            raise WriteError("the tag left the reader during the write") from None
        token = decoded.to_token(reader_id=self.info.reader_id, source=self.info.connect_string)
        return TagSeen(self.info.reader_id, token, self._detail(target, decoded), written=True)

    # --- dumping ----------------------------------------------------------
    def dump(self, timeout: float = 30.0):  # -> TagDump
        """Read the whole tag on the reader (waiting up to ``timeout``) as a TagDump."""
        from tagd.ndef.dumps import TagDump

        target = self._wait_for_tag(WriteRequest(text="", timeout=timeout))
        if isinstance(target, FelicaTarget):
            return self._dump_felica(target)
        decoded = self._read(target, whole=True)
        if self.last_read is None:
            raise ReaderError(f"tag {target.uid.hex()}: {'; '.join(decoded.errors)}")
        _, memory, version, unknown = self.last_read
        return TagDump(kind=decoded.kind, uid=target.uid, atqa=target.atqa, sak=target.sak, memory=memory,
                       version=version, unknown=unknown)

    def _dump_felica(self, card: FelicaTarget):  # -> TagDump
        """IDm, PMm, system code and the blocks read without keys from 00 on (a Lite-S: its user blocks and REG;
        a card whose memory needs keys: none), one block per read so that the first refusal ends the memory."""
        from tagd.ndef.dumps import TagDump

        blocks: dict[int, bytes] = {}
        for block in range(felica.LITE_S_PLAIN_BLOCKS):
            try:
                answer = self.chip.communicate_thru(felica.read_without_encryption(card.uid, range(block, block + 1)))
                blocks[block] = felica.parse_read_response(answer, card.uid)
            except felica.FelicaError:
                break
        return TagDump(kind=felica.KIND, uid=card.uid, atqa=0, sak=0, memory=felica.blocks_from_zero(blocks),
                       version=card.pmm, systems=(card.system,) if card.system is not None else ())


class _ChipIO:
    """tagio's view of a tag through the PN532: InCommunicateThru for raw commands, InDataExchange for the rest."""

    def __init__(self, chip: Pn532Chip, target: Target) -> None:
        self.chip, self.target = chip, target

    def thru(self, cmd: bytes) -> bytes:
        return self.chip.communicate_thru(cmd)

    def read_block(self, block: int) -> bytes:
        return self.chip.data_exchange(bytes([0x30, block]))

    def auth(self, block: int, key: bytes) -> bool:
        try:
            self.chip.data_exchange(bytes([0x60, block]) + key + self.target.uid[-4:])
        except AuthError:
            return False
        return True

    def write_page(self, page: int, data: bytes) -> None:
        self.chip.data_exchange(bytes([0xA2, page]) + data)

    def write_block(self, block: int, data: bytes) -> None:
        self.chip.data_exchange(bytes([0xA0, block]) + data)

    def reselect(self) -> None:
        self.chip.release()
        if self.chip.list_target(0.5) is None:
            raise Pn532TagLeft(Status.TIMEOUT, "reselect")


__all__ = ["Pn532Reader", "usb_topology", "ChipTimeout"]
