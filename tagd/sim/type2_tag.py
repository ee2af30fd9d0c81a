"""What an NFC Forum Type 2 tag answers — MIFARE Ultralight, Ultralight EV1, NTAG21x — sans-I/O.

:class:`Type2Tag` is the tag's command set over its memory (the live bytearray of an
:class:`~tagd.sim.tags.EmulatedTag`), with the answers and 4-bit NAKs of the NXP datasheets
(NTAG213/215/216 §10, MF0ULx1 §8):

- READ ``30 p`` (4 pages, rolling over at the end of what may be read), FAST_READ ``3A s e``,
  WRITE ``A2 p d4``, COMPATIBILITY_WRITE ``A0 p`` → ACK, then 16 bytes → ACK (only the first 4 are
  written; a PN532's InDataExchange sends both phases as one ``A0 p d16``), GET_VERSION ``60``,
  READ_SIG ``3C 00``, READ_CNT ``39 n`` (NTAG: the NFC counter, n = 2; EV1: counters 0–2),
  INCR_CNT ``A5 n d4`` (EV1), CHECK_TEARING_EVENT ``3E n`` (EV1), PWD_AUTH ``1B pwd4`` → PACK.
- Password protection from the configuration pages, in effect from the activation after they are
  written (nfcpy's protect() relies on this: it writes CFG0 before CFG1, PWD and PACK): AUTH0 (CFG0 byte 3) is the first protected page;
  ACCESS (CFG1 byte 0) bit 7 PROT makes reads need the password too (a READ then rolls over at AUTH0),
  bit 6 CFGLCK freezes CFG0/CFG1, bit 4 NFC_CNT_EN counts the first READ after power-up, bit 3
  NFC_CNT_PWD_PROT guards READ_CNT, bits 2–0 AUTHLIM end PWD_AUTH after that many failures (NAK 4).
  PWD and PACK read back as zeros. A dump that recorded PWD as zeros (readers cannot read it) takes any
  password, since the real one is unknown.
- Lock bits: static (pages 3–15) and NTAG21x dynamic lock bits; lock and CC bytes are one-time
  programmable (bits can only be set).

Answers are bytes, :data:`ACK`, a :class:`Nak`, or :data:`NO_ANSWER` (a command the tag does not
know: it stays silent). The caller (EmulatedTag) sends the tag back to IDLE after a NAK or silence.
"""

from __future__ import annotations

from tagd.ndef import type2

ACK = b"\x0a"  # the 4-bit ACK of a WRITE, as a host sees it with the chip's CRC checking off
NO_ANSWER = 0x01  # PN532 status "timeout": the tag said nothing
AUTH_ERROR = 0x14  # PN532 status "MIFARE authentication error"

READ, FAST_READ, WRITE, COMPAT_WRITE = 0x30, 0x3A, 0xA2, 0xA0
GET_VERSION, READ_SIG, READ_CNT, INCR_CNT, CHECK_TEARING, PWD_AUTH = 0x60, 0x3C, 0x39, 0xA5, 0x3E, 0x1B
NAK_ARGUMENT, NAK_CRC, NAK_COUNTER, NAK_EEPROM = 0x0, 0x1, 0x4, 0x5

PROT, CFGLCK, NFC_CNT_EN, NFC_CNT_PWD_PROT = 0x80, 0x40, 0x10, 0x08
COUNTER_MAX = 0xFFFFFF


class Nak(int):
    """A tag's 4-bit NAK (``.code``: 0 invalid argument/address, 1 CRC, 4 counter, 5 EEPROM).

    As an int it is the status a PN532 reports for it through InDataExchange (0x14, the MIFARE error),
    so code that treats any int answer as "refused" (the ACR122 card) needs no special case."""

    code: int

    def __new__(cls, code: int = 0) -> "Nak":
        obj = super().__new__(cls, AUTH_ERROR)
        obj.code = code
        return obj

    def __repr__(self) -> str:
        return f"Nak({self.code})"


class Type2Tag:
    def __init__(self, memory: bytearray, kind: type2.Type2Kind | None, version: bytes | None = None,
                 signature: bytes | None = None) -> None:
        self.memory = memory
        self.kind = kind
        self.version = version or (kind.version if kind else None)
        self.signature = signature
        self.counters = [0, 0, 0]  # EV1: three one-way counters; NTAG21x: the NFC counter is number 2
        self.failed_auths = 0  # kept in EEPROM on a real tag: survives removal
        self.writes = 0
        self.authenticated = False
        self.compat_page: int | None = None  # COMPATIBILITY_WRITE waiting for its 16 data bytes
        self.fresh = True  # powered up, no READ yet (the NFC counter counts the first one)
        self._auth0, self._access = 0xFF, 0x00
        self.reset()

    # --- state ----------------------------------------------------------------
    @property
    def pages(self) -> int:
        return len(self.memory) // 4

    @property
    def has_ev1_commands(self) -> bool:
        return self.version is not None

    @property
    def is_ev1(self) -> bool:
        return bool(self.kind and self.kind.name.startswith("ultralight_ev1"))

    def _cfg(self, offset: int, byte: int, default: int) -> int:
        k = self.kind
        if not k or k.cfg_page is None or (k.cfg_page + offset) * 4 + byte >= len(self.memory):
            return default
        return self.memory[(k.cfg_page + offset) * 4 + byte]

    @property
    def auth0(self) -> int:
        return self._auth0

    @property
    def access(self) -> int:
        return self._access

    def _pwd_at(self) -> int | None:
        k = self.kind
        return (k.cfg_page + 2) * 4 if k and k.cfg_page is not None else None

    def power_on(self) -> None:
        """The tag entered the field: unauthenticated, the NFC counter ready to count the first READ."""
        self.reset()
        self.fresh = True

    def reset(self) -> None:
        """Selected again (or halted): authentication and a half-done COMPATIBILITY_WRITE are gone, and
        the configuration pages take effect (a new AUTH0/ACCESS applies from the next activation)."""
        self.authenticated = False
        self.compat_page = None
        self._auth0, self._access = self._cfg(0, 3, 0xFF), self._cfg(1, 0, 0x00)

    def _read_blocked(self, p: int) -> bool:
        return bool(self.access & PROT) and p >= self.auth0 and not self.authenticated

    def _readable_end(self) -> int:
        """Pages a READ may reach before rolling over (all of them, or up to AUTH0 when read-protected)."""
        if self.access & PROT and not self.authenticated:
            return max(1, min(self.pages, self.auth0))
        return self.pages

    # --- commands -------------------------------------------------------------
    def transceive(self, cmd: bytes) -> bytes | int:
        if self.compat_page is not None:  # the second phase of a COMPATIBILITY_WRITE
            page, self.compat_page = self.compat_page, None
            return self._write_page(page, bytes(cmd[:4])) if len(cmd) == 16 else Nak(NAK_ARGUMENT)
        op = cmd[0]
        if op == READ and len(cmd) >= 2:
            return self._read(cmd[1])
        if op == FAST_READ and len(cmd) >= 3:
            return self._fast_read(cmd[1], cmd[2])
        if op == WRITE and len(cmd) >= 6:
            return self._write_page(cmd[1], bytes(cmd[2:6]))
        if op == COMPAT_WRITE and len(cmd) >= 2:
            if len(cmd) >= 18:  # both phases at once, as a PN532's InDataExchange runs them
                return self._write_page(cmd[1], bytes(cmd[2:6]))
            refused = self._write_refused(cmd[1])
            if refused is not None:
                return refused
            self.compat_page = cmd[1]
            return ACK
        if op == GET_VERSION:  # NTAG/EV1 answer; a plain Ultralight is silent; an NTAG203 NAKs
            if self.kind and self.kind.name == "ntag203":
                return Nak(NAK_ARGUMENT)
            return self.version if self.version else NO_ANSWER
        if not self.has_ev1_commands and not self.signature:
            return NO_ANSWER
        if op == READ_SIG and len(cmd) >= 2:
            return (self.signature or bytes(32)) if cmd[1] == 0 else Nak(NAK_ARGUMENT)
        if op == PWD_AUTH and len(cmd) >= 5 and self._pwd_at() is not None:
            return self._pwd_auth(bytes(cmd[1:5]))
        if op == READ_CNT and len(cmd) >= 2:
            return self._read_cnt(cmd[1])
        if op == INCR_CNT and len(cmd) >= 6 and self.is_ev1:
            return self._incr_cnt(cmd[1], int.from_bytes(cmd[2:5], "little"))
        if op == CHECK_TEARING and len(cmd) >= 2 and self.is_ev1:
            return b"\xbd" if cmd[1] <= 2 else Nak(NAK_ARGUMENT)
        return NO_ANSWER

    def _page(self, p: int) -> bytes:
        at = self._pwd_at()
        if at is not None and at <= p * 4 < at + 8:
            return bytes(4)  # PWD and PACK never read back
        return bytes(self.memory[p * 4:(p + 1) * 4])

    def _count_read(self) -> None:
        if self.fresh and not self.is_ev1 and self.access & NFC_CNT_EN and self.counters[2] < COUNTER_MAX:
            self.counters[2] += 1
        self.fresh = False

    def _read(self, p: int) -> bytes | int:
        if p >= self.pages or self._read_blocked(p):
            return Nak(NAK_ARGUMENT)
        self._count_read()
        end = self._readable_end()
        return b"".join(self._page((p + i) % end if p + i >= end else p + i) for i in range(4))

    def _fast_read(self, s: int, e: int) -> bytes | int:
        if s > e or e >= self.pages or self._read_blocked(e):
            return Nak(NAK_ARGUMENT)
        self._count_read()
        return b"".join(self._page(p) for p in range(s, e + 1))

    def _pwd_auth(self, pwd: bytes) -> bytes | int:
        at = self._pwd_at()
        assert at is not None
        limit = self.access & 0x07
        if limit and self.failed_auths >= limit:
            return Nak(NAK_COUNTER)
        stored = bytes(self.memory[at:at + 4])
        if stored not in (bytes(4), pwd):
            self.failed_auths += 1
            return Nak(NAK_ARGUMENT)
        self.failed_auths = 0
        self.authenticated = True
        return bytes(self.memory[at + 4:at + 6])

    def _read_cnt(self, n: int) -> bytes | int:
        if self.is_ev1:
            if n > 2:
                return Nak(NAK_ARGUMENT)
        elif n != 2 or (self.access & NFC_CNT_PWD_PROT and not self.authenticated):
            return Nak(NAK_ARGUMENT)
        return self.counters[n].to_bytes(3, "little")

    def _incr_cnt(self, n: int, value: int) -> bytes | int:
        if n > 2:
            return Nak(NAK_ARGUMENT)
        if self.counters[n] + value > COUNTER_MAX:
            return Nak(NAK_COUNTER)
        self.counters[n] += value
        return ACK

    def _locked(self, p: int) -> bool:
        """Static and dynamic lock bits, read as tagd.ndef.type2 reads them (one table of lock layouts per kind)."""
        return p in type2.Type2Memory(bytes(self.memory), None, self.kind.name if self.kind else None).locked_pages

    def _write_refused(self, p: int) -> Nak | None:
        if p < 2 or p >= self.pages or self._locked(p):
            return Nak(NAK_ARGUMENT)
        if p >= self.auth0 and not self.authenticated:  # writes need the password from AUTH0 on
            return Nak(NAK_ARGUMENT)
        k = self.kind
        if k and k.cfg_page is not None and p in (k.cfg_page, k.cfg_page + 1) and self.access & CFGLCK:
            return Nak(NAK_ARGUMENT)  # CFGLCK: the configuration is frozen for good
        return None

    def _write_page(self, p: int, data: bytes) -> bytes | int:
        refused = self._write_refused(p)
        if refused is not None:
            return refused
        old = self.memory[p * 4:(p + 1) * 4]
        if p == 2:  # the lock bytes are one-time programmable; bytes 0-1 (BCC1, internal) are read-only
            data = bytes([old[0], old[1], old[2] | data[2], old[3] | data[3]])
        elif p == 3:  # the CC too: bits can only be set
            data = bytes(a | b for a, b in zip(old, data))
        elif self.kind and p == self.kind.dyn_lock_page:
            data = bytes([old[0] | data[0], old[1] | data[1], old[2] | data[2], old[3]])
        self.memory[p * 4:(p + 1) * 4] = data
        self.writes += 1
        return ACK
