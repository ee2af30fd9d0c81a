"""The PN532 reader: a poll loop built for the shortest tap→token time and the fewest wire bytes.

Waiting: MaxRetries(PassiveActivation = FF) makes InListPassiveTarget wait *in the chip* until a tag
enters the field, so an idle reader sends nothing and the tag is reported the moment it arrives
(an interrupt sends a host ACK to abort the wait when a write is queued or the reader stops).
Reading: NTAG/Ultralight — GET_VERSION, then FAST_READ of the CC and the first data pages, then one
more FAST_READ for exactly the rest of the NDEF TLV (pages 0–2 are rebuilt from the UID the listing
already gave). MIFARE Classic — MAD with the MAD key, then the NDEF sectors with the NFC Forum key,
the default key and the configured keys. Presence: while a tag is there, a READ of page 0 every 50 ms
(InSelect for a Classic card); no answer within the 25.6 ms RF timeout means it left, so removal is
noticed within 50 + 26 ms + a few bytes on the wire, ~80 ms at worst on real hardware.
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
from tagd.readers.pn532.commands import Status
from tagd.readers.pn532.chip import AuthError, ChipTimeout, Pn532Chip, Pn532Error, Target, Pn532TagLeft
from tagd.readers import tagio
from tagd.readers.pn532.transport import SerialTransport, TransportFactory

log = logging.getLogger(__name__)

PRESENCE_INTERVAL = 0.05
PRESENCE_RF_TIMEOUT = 0x09  # RFConfiguration timeout index: 25.6 ms for a tag that does not answer (default 51.2)
LIST_SLICE = 0.5  # poll() returns at least this often while the chip waits for a tag


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
        self.baud = int(self.options.get("baud", 115200))
        self.keys = [bytes.fromhex(k) for k in self.options.get("keys", [])]
        self.transport = transport_factory(path, self.baud)
        self.chip = Pn532Chip(self.transport)
        self.info: ReaderInfo | None = None
        self.target: Target | None = None
        self.listing = False
        self._last_check = 0.0
        self.last_read: tuple[Target, bytes, bytes | None, frozenset[int]] | None = None
        self.unreadable = False  # the tag on the reader refused the reads (reported by its UID)

    # --- lifecycle --------------------------------------------------------
    def open(self) -> ReaderInfo:
        self.transport.open()
        try:
            self.chip.wake_up()
            self.chip.decoder.reset()
            self.chip.sam_configuration()
            fw = self.chip.firmware_version()
            self.chip.set_max_retries(0xFF, 0x01, 0xFF)
            self.chip.set_timeouts(0x0B, PRESENCE_RF_TIMEOUT)
        except (ReaderError, Pn532Error) as exc:
            self.transport.close()
            raise ReaderError(f"no PN532 answering on {self.path}: {exc}") from None
        self.target, self.listing = None, False
        stable = usb_topology(self.path) or f"pn532uart:{self.path}"
        name = f"PN532 v{fw[1]}.{fw[2]}" if len(fw) >= 3 else "PN532"
        self.info = ReaderInfo("pn532", self.path, stable, name, self.capabilities)
        return self.info

    def close(self) -> None:
        if self.transport.is_open:
            try:
                self.chip.abort()
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
        decoded, read = tagio.read_or_uid(self._io(target), target.uid, target.sak, self.keys, whole)
        self.last_read = (target, read.memory, read.version, read.unknown) if read else None
        self.unreadable = read is None
        return decoded

    def _io(self, target: Target) -> "_ChipIO":
        return _ChipIO(self.chip, target)

    # --- writing ----------------------------------------------------------
    def _wait_for_tag(self, request: WriteRequest) -> Target:
        if self.target is not None:
            return self.target
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

    def write(self, request: WriteRequest) -> TagSeen:
        assert self.info is not None
        if self.listing:
            self.chip.abort()
            self.listing = False
        target = self._wait_for_tag(request)
        tagio.check_target(target.uid, request)
        try:
            decoded = tagio.write_text(self._io(target), target.uid, target.sak, request.text, self.keys)
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
        decoded = self._read(target, whole=True)
        if self.last_read is None:
            raise ReaderError(f"tag {target.uid.hex()}: {'; '.join(decoded.errors)}")
        _, memory, version, unknown = self.last_read
        return TagDump(kind=decoded.kind, uid=target.uid, atqa=target.atqa, sak=target.sak, memory=memory,
                       version=version, unknown=unknown)


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
