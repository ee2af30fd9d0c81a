"""ACR122U (and any PC/SC reader) through pcscd and pyscard.

``acr122:ACR122`` opens the first PC/SC reader whose name contains the text; ``pcsc:<name>`` any other
reader. Waiting is SCardGetStatusChange (no busy loop; interrupt() cancels it). A card is read with the
same algorithms as the PN532 (tagd.readers.tagio): Type 2 pages by direct transmit of FAST_READ to the
PN532 inside the reader (``FF 00 00 00 … D4 42 3A …``), falling back to ``FF B0``; MIFARE Classic with
``FF 82`` load key, ``FF 86`` authenticate and ``FF B0``. Writes use ``FF D6`` and are verified.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from dataclasses import dataclass
from typing import Any

from tagd.readers import tagio
from tagd.readers.base import Capability, Reader, ReaderError, ReaderEvent, ReaderInfo, TagGone, TagSeen, \
    WriteError, WriteRequest, register, wait_for_tag
from tagd.token import TYPE_MIFARE, TYPE_NTAG, TYPE_UNKNOWN, Token

log = logging.getLogger(__name__)

LIBNFC_USB_PATH = re.compile(r"(?:usb:)?\d{3}:\d{3}")  # libnfc's acr122_usb connstring tail: bus:device

WAIT_MS = 500
E_TIMEOUT = 0x8010000A
E_CANCELLED = 0x80100002
E_NO_SERVICE = 0x8010001D
E_NO_READERS = 0x8010002E
E_REMOVED_CARD = 0x80100069
CARD_KINDS = {b"\x00\x01": "classic1k", b"\x00\x02": "classic4k", b"\x00\x26": "classicmini"}
SAK = {"classic1k": 0x08, "classic4k": 0x18, "classicmini": 0x09}
# PC/SC Part 3 ATR of a storage card, then standard 03 = ISO 14443 A part 3 (Type 2 / MIFARE Classic); an
# ISO 14443-4 card (DESFire, a phone) has another ATR: only its UID can be read
STORAGE_ATR = bytes.fromhex("3B8F8001804F0CA00000030603")


@dataclass(frozen=True)
class Indication:
    """One use of the ACR122U's bi-colour LED and buzzer pseudo-APDU (ACR122U API, "Bi-color LED and Buzzer
    Control"): ``FF 00 40 <LED state> 04 <T1> <T2> <repetitions> <link to buzzer>``.

    LED state bits: 0/1 final red/green, 2/3 whether to set those, 4/5 red/green during T1, 6/7 whether red/green
    blink. T1 and T2 are in 100 ms; the buzzer link 01 sounds it during T1, 00 never. None of these set a final
    state (bits 2/3 clear), so after the blink the LED is the firmware's again."""

    led: int
    t1: int
    t2: int
    repetitions: int

    def apdu(self, beep: bool) -> bytes:
        return bytes([0xFF, 0x00, 0x40, self.led, 0x04, self.t1, self.t2, self.repetitions, 0x01 if beep else 0x00])


SUCCESS = Indication(0xA0, 2, 1, 1)  # green for 200 ms, one beep: the tap's launch went out
FAILURE = Indication(0x50, 1, 1, 3)  # red three times, three short beeps: the tap failed
BLINK = Indication(0xCF, 1, 1, 2)  # red/green alternating twice (flash_led, led_on_read), never a beep
PENDING = Indication(0xF0, 3, 2, 1)  # orange (red + green) for 300 ms, one beep: staged by the launch guard


def detection_beep(on: bool) -> bytes:
    """"Set buzzer output during card detection" (ACR122U API): ``FF 00 52 <FF on | 00 off> 00``. The firmware
    beeps on every card by default, before anyone knows whether the tap will work."""
    return bytes([0xFF, 0x00, 0x52, 0xFF if on else 0x00, 0x00])


def _scard():
    try:
        from smartcard import scard
    except ImportError:
        raise ReaderError("PC/SC readers need pyscard: pip install 'tagd[pcsc]' (it builds against libpcsclite-dev)") \
            from None
    return scard


def _hint_kernel_modules() -> str:
    if os.path.isdir("/sys/module/pn533_usb") or os.path.isdir("/sys/module/pn533"):
        return "; the pn533 kernel modules hold the ACR122U: blacklist pn533_usb, pn533 and nfc (sudo tagd install-udev)"
    return ""


def _u32(hr: int) -> int:
    return hr & 0xFFFFFFFF


def list_pcsc_readers() -> list[str]:
    """Names of the PC/SC readers pcscd knows; [] when pyscard or pcscd is missing."""
    try:
        scard = _scard()
        hr, ctx = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
        if hr != 0:
            return []
        try:
            hr, readers = scard.SCardListReaders(ctx, [])
            return list(readers) if hr == 0 else []
        finally:
            scard.SCardReleaseContext(ctx)
    except (ReaderError, Exception):
        return []


class _ApduIO:
    """tagio over pseudo-APDUs: direct transmit for raw commands, FF B0/D6/82/86 for the rest."""

    def __init__(self, reader: "PcscReader") -> None:
        self.r = reader

    def _check(self, resp: bytes, what: str) -> bytes:
        if resp[-2:] != b"\x90\x00":
            raise tagio.CommandFailed(f"{what}: status {resp[-2:].hex()}")
        return resp[:-2]

    def thru(self, cmd: bytes) -> bytes:
        data = b"\xd4\x42" + cmd
        out = self._check(self.r.transmit(b"\xff\x00\x00\x00" + bytes([len(data)]) + data), "direct transmit")
        if out[:2] != b"\xd5\x43" or len(out) < 3:
            raise tagio.CommandFailed("direct transmit: unexpected answer")
        if out[2] & 0x3F:
            raise tagio.CommandFailed(f"tag command {cmd[:1].hex()}: PN532 status {out[2] & 0x3F:02x}")
        return out[3:]

    def read_block(self, block: int) -> bytes:
        return self._check(self.r.transmit(bytes([0xFF, 0xB0, 0x00, block, 0x10])), f"read {block}")

    def auth(self, block: int, key: bytes) -> bool:
        self._check(self.r.transmit(b"\xff\x82\x00\x00\x06" + key), "load key")
        resp = self.r.transmit(bytes([0xFF, 0x86, 0x00, 0x00, 0x05, 0x01, 0x00, block, 0x60, 0x00]))
        return resp[-2:] == b"\x90\x00"

    def write_page(self, page: int, data: bytes) -> None:
        self._check(self.r.transmit(bytes([0xFF, 0xD6, 0x00, page, 0x04]) + data), f"write page {page}")

    def write_block(self, block: int, data: bytes) -> None:
        self._check(self.r.transmit(bytes([0xFF, 0xD6, 0x00, block, 0x10]) + data), f"write block {block}")

    def reselect(self) -> None:
        """Activate the card again: after a command it refuses (failed authentication, GET_VERSION on a plain
        Ultralight) a tag is IDLE and answers nothing, and the reader's firmware does not notice. This is the
        InListPassiveTarget the firmware sent at insertion, by direct transmit."""
        out = self._check(self.r.transmit(b"\xff\x00\x00\x00\x04\xd4\x4a\x01\x00"), "reselect")
        if out[:3] != b"\xd5\x4b\x01":
            raise tagio.TagLeft("reselect: the card did not answer")


@register
class PcscReader(Reader):
    driver = "pcsc"
    capabilities = Capability.READ | Capability.WRITE | Capability.REMOVABLE

    def __init__(self, path: str, options: dict[str, Any] | None = None) -> None:
        super().__init__(path, options)
        self.keys = [bytes.fromhex(k) for k in self.options.get("keys", [])]
        self.buzzer = bool(self.options.get("buzzer", True))
        # the daemon shows each tap's outcome (signal()): then the firmware's beep on detection is off, since a
        # beep would say "fine" before tagd knows
        self.feedback = bool(self.options.get("feedback", False))
        # blink when a tag has been read (it is about to launch); see flash_led() for a blink on the launch itself
        self.led = bool(self.options.get("led_on_read", False))
        self.scard: Any = None
        self.ctx: Any = None
        self.name = ""
        self.state = 0
        self.card: Any = None
        self.protocol = 0
        self.reported = False  # a TagSeen went out for the connected card, so its removal is a TagGone
        self._indications: list[tuple[bytes, int]] = []  # LED/buzzer APDUs other threads asked for, by card
        self._card_serial = 0  # counts cards connected: an outcome is shown on the card it was for, not the next
        self._indications_lock = threading.Lock()
        self.info: ReaderInfo | None = None
        self.acs = False  # an ACR122U (by its PC/SC name): it takes ACS's LED and buzzer commands

    # --- lifecycle --------------------------------------------------------
    def open(self) -> ReaderInfo:
        scard = self.scard = _scard()
        hr, ctx = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
        if _u32(hr) == E_NO_SERVICE:
            raise ReaderError("PC/SC service not available (0x8010001D): start pcscd (sudo systemctl start pcscd)")
        if hr != 0:
            raise ReaderError(f"PC/SC: {scard.SCardGetErrorMessage(hr)}")
        hr, readers = scard.SCardListReaders(ctx, [])
        wanted = self.path.lower()
        matches = [r for r in (readers if hr == 0 else []) if wanted in r.lower()]
        if not matches:
            scard.SCardReleaseContext(ctx)
            raise ReaderError(f"no PC/SC reader matching {self.path!r} (found: {', '.join(readers) or 'none'})"
                              + (_hint_kernel_modules() if self.driver == "acr122" else ""))
        self.ctx, self.name, self.state, self.card = ctx, matches[0], scard.SCARD_STATE_UNAWARE, None
        # the LED/buzzer pseudo-APDUs (FF 00 40, FF 00 52) are ACS's: another PC/SC reader answers them with an
        # error at best, or passes them to the card, which a tag takes as a bad command and goes mute
        self.acs = "acr122" in self.name.lower()
        self.info = ReaderInfo(self.driver, self.path, self.name, self.name, self.capabilities)
        return self.info

    def close(self) -> None:
        self._disconnect()
        if self.ctx is not None:
            try:
                self.scard.SCardReleaseContext(self.ctx)
            except Exception:
                pass
        self.ctx = None

    def interrupt(self) -> None:
        if self.ctx is not None:
            try:
                self.scard.SCardCancel(self.ctx)
            except Exception:
                pass

    # --- card I/O ---------------------------------------------------------
    def transmit(self, apdu: bytes) -> bytes:
        hr, resp = self.scard.SCardTransmit(self.card, self.protocol, list(apdu))
        if hr != 0:
            raise tagio.TagLeft(f"transmit failed: {self.scard.SCardGetErrorMessage(hr)}")
        return bytes(resp)

    def _connect(self) -> bool:
        s = self.scard
        hr, card, protocol = s.SCardConnect(self.ctx, self.name, s.SCARD_SHARE_SHARED, s.SCARD_PROTOCOL_T0 | s.SCARD_PROTOCOL_T1)
        if hr != 0:
            return False
        self.card, self.protocol = card, protocol
        self._card_serial += 1
        try:
            if self.acs:
                self.transmit(detection_beep(self.buzzer and not self.feedback))  # each time: lasts till unplugged
        except tagio.TagLeft:  # gone already: the next poll sees the slot empty
            self._disconnect()
            return False
        return True

    def _disconnect(self) -> None:
        if self.card is not None:
            try:
                self.scard.SCardDisconnect(self.card, self.scard.SCARD_LEAVE_CARD)
            except Exception:
                pass
        self.card, self.reported = None, False

    def _identify(self) -> tuple[bytes, int, bool]:
        """UID, the SAK the ATR implies, and whether it is a memory tag (Type 2 / Classic) tagd can read."""
        uid = self.transmit(b"\xff\xca\x00\x00\x00")
        if uid[-2:] != b"\x90\x00":
            raise tagio.CommandFailed("no UID")
        hr, _, _, _, atr = self.scard.SCardStatus(self.card)
        atr = bytes(atr) if hr == 0 else b""
        storage = atr[:13] == STORAGE_ATR
        kind = CARD_KINDS.get(atr[13:15]) if storage else None
        return uid[:-2], SAK.get(kind or "", 0x00), storage

    def _seen(self, written: bool = False) -> TagSeen:
        assert self.info is not None
        uid, sak, storage = self._identify()
        if not storage:
            return self._uid_only(uid, TYPE_UNKNOWN, "not a Type 2 or MIFARE Classic tag: only its UID is read")
        try:
            read = tagio.read_tag(_ApduIO(self), uid, sak, self.keys)
        except tagio.TagLeft:
            raise
        except tagio.CommandFailed as exc:
            if written:
                raise
            # a tag that answers its UID but not a read (a clone, a locked tag) is still a token by its UID
            return self._uid_only(uid, TYPE_MIFARE if tagio.classic_kind(sak) else TYPE_NTAG, f"read failed: {exc}")
        decoded = read.decode(uid)
        token = decoded.to_token(reader_id=self.info.reader_id, source=self.info.connect_string)
        return TagSeen(self.info.reader_id, token, {"kind": decoded.kind, "errors": decoded.errors}, written)

    def _uid_only(self, uid: bytes, token_type: str, why: str) -> TagSeen:
        assert self.info is not None
        log.info("%s: tag %s: %s", self.name, uid.hex(), why)
        token = Token(type=token_type, uid=uid.hex(), readerId=self.info.reader_id, source=self.info.connect_string)
        return TagSeen(self.info.reader_id, token, {"kind": "unknown", "errors": [why]})

    def signal(self, ok: bool | None) -> None:
        """Thread-safe: show a tap's outcome (the daemon calls it): green and one beep when its launch went out,
        red and three beeps when it failed, orange and one beep when the launch guard staged it (``None``); the LED
        alone with ``buzzer = false`` (the App's audioScanFeedback off).

        The ACR122U takes LED commands only as pseudo-APDUs to a card (libccid refuses escape commands), so
        this shows only while the tag is still on the reader — as it is for a tap that is not snatched away."""
        self._indicate((PENDING if ok is None else SUCCESS if ok else FAILURE).apdu(self.buzzer))

    def flash_led(self) -> None:
        """Thread-safe: blink the LED once the reader thread is free (while a tag is on it, as signal())."""
        self._indicate(BLINK.apdu(False))

    def _indicate(self, apdu: bytes) -> None:
        if not self.acs:
            return  # no LED or buzzer tagd knows how to drive on this reader
        with self._indications_lock:
            self._indications.append((apdu, self._card_serial))
        self.interrupt()

    def _show(self, apdu: bytes) -> None:
        """Send one LED/buzzer APDU (reader thread); nothing when the tag has gone."""
        if self.card is None:
            log.debug("%s: no tag on the reader to show %s with", self.name, apdu.hex())
            return
        try:
            self.transmit(apdu)
        except tagio.TagLeft:
            pass

    # --- polling ----------------------------------------------------------
    def _wait_change(self, timeout_ms: int) -> int | None:
        s = self.scard
        hr, states = s.SCardGetStatusChange(self.ctx, timeout_ms, [(self.name, self.state)])
        hr = _u32(hr)
        if hr in (E_TIMEOUT, E_CANCELLED):
            return None
        if hr != 0:
            raise ReaderError(f"PC/SC reader {self.name!r} lost: {s.SCardGetErrorMessage(hr)}")
        event = states[0][1]
        if event & (s.SCARD_STATE_UNKNOWN | s.SCARD_STATE_UNAVAILABLE):
            raise ReaderError(f"PC/SC reader {self.name!r} was removed")
        self.state = event & ~s.SCARD_STATE_CHANGED
        return event

    def poll(self) -> list[ReaderEvent]:
        assert self.info is not None
        with self._indications_lock:
            indications, self._indications = self._indications, []
        for apdu, serial in indications:
            if serial == self._card_serial:  # a slow launch's outcome is not shown on the card tapped after it
                self._show(apdu)
        event = self._wait_change(WAIT_MS)
        if event is None:
            return []
        s = self.scard
        if event & s.SCARD_STATE_PRESENT and self.card is None:
            if not self._connect():
                return []
            try:
                seen = self._seen()
                self.reported = True
                if self.led:
                    self._show(BLINK.apdu(False))
                return [seen]
            except tagio.CommandFailed as exc:
                log.info("%s: card read failed: %s", self.name, exc)
                if self.feedback:  # no token to launch: the reader says so itself
                    self._show(FAILURE.apdu(self.buzzer))
                return []
        if self.card is not None and (event & s.SCARD_STATE_EMPTY or self._swapped()):
            reported = self.reported
            self._disconnect()
            return [TagGone(self.info.reader_id)] if reported else []
        return []

    def _swapped(self) -> bool:
        """Still PRESENT, but the card we hold left and another came while we were busy (pcscd counted the
        events): our handle now says "removed". Forget the state so the next poll reads the new card."""
        if _u32(self.scard.SCardStatus(self.card)[0]) != E_REMOVED_CARD:
            return False
        self.state = self.scard.SCARD_STATE_UNAWARE
        return True

    # --- writing ----------------------------------------------------------
    def write(self, request: WriteRequest) -> TagSeen:
        def card_here(_: float) -> bool:
            if self.card is None:
                event = self._wait_change(100)
                if (self.state if event is None else event) & self.scard.SCARD_STATE_PRESENT:
                    self._connect()  # also a card that stayed on the reader after a failed connect or write
            return self.card is not None

        wait_for_tag(request, card_here)
        try:
            uid, sak, storage = self._identify()
            if not storage:
                raise WriteError(f"tag {uid.hex()} is not a Type 2 or MIFARE Classic tag: tagd cannot write it")
            tagio.check_target(uid, request)
            tagio.write_text(_ApduIO(self), uid, sak, request.text, self.keys)
            seen = self._seen(written=True)
            self.reported = True
            return seen
        except tagio.TagLeft:
            self._disconnect()
            raise WriteError("the tag left the reader during the write") from None
        except tagio.CommandFailed as exc:
            raise WriteError(f"write failed: {exc}") from None


@register
class Acr122Reader(PcscReader):
    """``acr122:`` with no name takes the first reader whose name contains "ACR122" (what pcscd/libccid call it).

    A Zaparoo Core config's ``acr122_usb`` entry (libnfc's driver) may carry libnfc's USB ``bus:device`` as its
    path (``001:005``): pcscd knows the reader by name, not bus address, so that is the first ACR122 too."""

    driver = "acr122"

    def __init__(self, path: str, options: dict[str, Any] | None = None) -> None:
        name = path.strip()
        if LIBNFC_USB_PATH.fullmatch(name):
            name = ""
        super().__init__(name or "ACR122", options)
