"""Emulated tags: what a Type 2 tag or a MIFARE Classic card answers to raw ISO14443-3 commands.

An :class:`EmulatedTag` holds a live :class:`TagDump` (writes change it; ``--save`` writes it back) and
answers the commands a reader sends through the PN532 (InDataExchange / InCommunicateThru) or the
ACR122U's pseudo-APDUs. ``transceive()`` returns the tag's answer bytes, or an int PN532 error status
(0x01 no answer, 0x14 authentication error) so both chip emulators can report it their own way.

Like a real tag, it goes back to IDLE after a command it refuses or does not know (a NAK, no answer, a
failed authentication) and answers nothing until a reader selects it again (:meth:`select`, which the
PN532's InListPassiveTarget/InSelect do): a driver that forgets to reselect fails here as on hardware.

What the tag enforces, from the datasheets: Type 2 static lock bits (pages 3–15) and NTAG21x dynamic
lock bits, one-time-programmable lock and CC bytes (bits only set), READ wrapping at the end, GET_VERSION/READ_SIG only on tags that have them. MIFARE Classic: keys and
access conditions from each sector trailer (data blocks and trailer parts), Key A reading back as zeros.
"""

from __future__ import annotations

import logging
import os

from tagd.ndef import classic, type2
from tagd.ndef.dumps import TagDump, load

log = logging.getLogger(__name__)

ACK = b"\x0a"  # the 4-bit ACK of a WRITE, as a host sees it with the chip's CRC checking off
NO_ANSWER = 0x01  # PN532 status "timeout": the tag said nothing
AUTH_ERROR = 0x14  # PN532 status "MIFARE authentication error"


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


def crc_a(data: bytes) -> bytes:
    """ISO/IEC 14443-3 CRC_A (preset 0x6363), low byte first: what a tag appends to each answer."""
    crc = 0x6363
    for b in data:
        b ^= crc & 0xFF
        b = (b ^ (b << 4)) & 0xFF
        crc = ((crc >> 8) ^ (b << 8) ^ (b << 3) ^ (b >> 4)) & 0xFFFF
    return bytes([crc & 0xFF, crc >> 8])


# MIFARE Classic access conditions (C1, C2, C3) → which key may do it: "" nobody, "A", "B", "AB".
DATA_READ = {(0, 0, 0): "AB", (0, 1, 0): "AB", (1, 0, 0): "AB", (1, 1, 0): "AB", (0, 0, 1): "AB",
             (0, 1, 1): "B", (1, 0, 1): "B", (1, 1, 1): ""}
DATA_WRITE = {(0, 0, 0): "AB", (1, 0, 0): "B", (1, 1, 0): "B", (0, 1, 1): "B"}
# trailer: (write key A, write access bits, read key B, write key B)
TRAILER = {(0, 0, 0): ("A", "", "A", "A"), (0, 1, 0): ("", "", "A", ""), (1, 0, 0): ("B", "", "", "B"),
           (1, 1, 0): ("", "", "", ""), (0, 0, 1): ("A", "A", "A", "A"), (0, 1, 1): ("B", "B", "", "B"),
           (1, 0, 1): ("", "B", "", ""), (1, 1, 1): ("", "", "", "")}


class EmulatedTag:
    def __init__(self, dump: TagDump, name: str = "") -> None:
        self.dump = dump
        self.name = name
        self.memory = bytearray(dump.memory)
        self.auth_sector: int | None = None
        self.auth_key = ""  # "A" or "B": the key the current sector was opened with
        self.active = True  # selected; False after a refused command (the tag went back to IDLE)
        self.writes = 0
        self.kind = type2.TYPE2_KINDS.get(dump.kind)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> "EmulatedTag":
        """The tag a dump file holds (DumpError if none); what the loader had to resolve (a UID line that is
        not the UID in the pages, a SAK that contradicts the memory) is logged, as it changes what is presented."""
        dump = load(path)
        for note in dump.notes:
            log.warning("%s: %s", os.fspath(path), note)
        return cls(dump, os.fspath(path))

    # --- identity ---------------------------------------------------------
    @property
    def uid(self) -> bytes:
        return self.dump.uid

    @property
    def atqa(self) -> int:
        return self.dump.atqa

    @property
    def sak(self) -> int:
        return self.dump.sak

    @property
    def is_classic(self) -> bool:
        return self.dump.is_classic

    def target_data(self) -> bytes:
        """SENS_RES (MSB first) SEL_RES NFCIDLength NFCID1, as InListPassiveTarget reports a 106A target."""
        return self.atqa.to_bytes(2, "big") + bytes([self.sak, len(self.uid)]) + self.uid

    def snapshot(self) -> TagDump:
        """The tag as it is now (after writes), as a dump."""
        d = self.dump
        return TagDump(kind=d.kind, uid=d.uid, atqa=d.atqa, sak=d.sak, memory=bytes(self.memory),
                       version=d.version, signature=d.signature, unknown=d.unknown)

    def reset_auth(self) -> None:
        self.auth_sector = None
        self.auth_key = ""

    def select(self) -> None:
        """A reader activated the tag (WUPA + anticollision + SELECT): it answers again, unauthenticated."""
        self.active = True
        self.reset_auth()

    # --- commands ---------------------------------------------------------
    def transceive(self, cmd: bytes) -> bytes | int:
        if not cmd or not self.active:
            return NO_ANSWER
        answer = self._classic(cmd) if self.is_classic else self._type2(cmd)
        if isinstance(answer, int):  # refused: the tag drops back to IDLE until selected again
            self.active = False
            self.reset_auth()
        return answer

    # Type 2 ---------------------------------------------------------------
    def _type2(self, cmd: bytes) -> bytes | int:
        pages = len(self.memory) // 4
        op = cmd[0]
        if op == 0x30 and len(cmd) >= 2:  # READ: 4 pages, wrapping at the end
            p = cmd[1]
            if p >= pages:
                return Nak(0)
            return b"".join(self._page((p + i) % pages) for i in range(4))
        if op == 0x3A and len(cmd) >= 3:  # FAST_READ
            s, e = cmd[1], cmd[2]
            if s > e or e >= pages:
                return Nak(0)
            return b"".join(self._page(p) for p in range(s, e + 1))
        if op == 0xA2 and len(cmd) >= 6:  # WRITE
            return self._write_page(cmd[1], bytes(cmd[2:6]))
        has_ev1_commands = self.kind is not None and self.kind.version is not None
        if op == 0x60:  # GET_VERSION: NTAG/EV1 answer (dumps may not have recorded it); a plain Ultralight does not
            version = self.dump.version or (self.kind.version if self.kind else None)
            return version if version else NO_ANSWER
        if op == 0x3C and (has_ev1_commands or self.dump.signature):  # READ_SIG
            return self.dump.signature or bytes(32)
        if op == 0x1B and len(cmd) >= 5 and self.kind and self.kind.cfg_page:  # PWD_AUTH
            pwd_at = (self.kind.cfg_page + 2) * 4
            stored = bytes(self.memory[pwd_at:pwd_at + 4])
            # a dump reads PWD as zeros (the real one is unknown): then any password is taken
            if stored not in (bytes(4), bytes(cmd[1:5])):
                return Nak(0)
            return bytes(self.memory[pwd_at + 4:pwd_at + 6])
        return NO_ANSWER

    def _page(self, p: int) -> bytes:
        # A real NTAG reads PWD/PACK back as zeros; the dump's bytes are returned instead, so a dump that
        # recorded them (amiibo tools do) reads back unchanged.
        return bytes(self.memory[p * 4:(p + 1) * 4])

    def _locked(self, p: int) -> bool:
        """Static and dynamic lock bits, read as tagd.ndef.type2 reads them (one table of lock layouts per kind)."""
        return p in type2.Type2Memory(bytes(self.memory), None, self.kind.name if self.kind else None).locked_pages

    def _write_page(self, p: int, data: bytes) -> bytes | int:
        pages = len(self.memory) // 4
        if p < 2 or p >= pages:
            return Nak(0)
        if self._locked(p):
            return Nak(0)
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

    # MIFARE Classic --------------------------------------------------------
    def _conditions(self, block: int) -> tuple[int, int, int]:
        sector = classic.sector_of(block)
        t = classic.trailer_block(sector) * 16
        groups = classic.access_conditions(bytes(self.memory[t + 6:t + 9]))
        if groups is None:  # inconsistent access bits: the card blocks the sector
            return (1, 1, 1)
        index = block - classic.first_block(sector)
        if block == classic.trailer_block(sector):
            return groups[3]
        return groups[index if classic.blocks_in(sector) == 4 else min(index // 5, 2)]

    def _classic(self, cmd: bytes) -> bytes | int:
        op = cmd[0]
        blocks = len(self.memory) // 16
        if op in (0x60, 0x61) and len(cmd) >= 8:  # AUTH: block, key(6), uid(4)
            block, key = cmd[1], bytes(cmd[2:8])
            self.reset_auth()
            if block >= blocks:
                return AUTH_ERROR
            t = classic.trailer_block(classic.sector_of(block)) * 16
            at = t if op == 0x60 else t + 10
            if any(a in self.dump.unknown for a in range(at, at + 6)) or bytes(self.memory[at:at + 6]) != key:
                return AUTH_ERROR
            self.auth_sector, self.auth_key = classic.sector_of(block), "A" if op == 0x60 else "B"
            return b""
        if op in (0x30, 0xA0) and len(cmd) >= 2:
            block = cmd[1]
            if block >= blocks or self.auth_sector != classic.sector_of(block):
                return Nak(4)
            if op == 0x30:
                return self._read_block(block)
            if len(cmd) >= 18:  # WRITE: block + 16 bytes in one exchange (as the PN532 does it)
                return self._write_block(block, bytes(cmd[2:18]))
        return NO_ANSWER

    def _read_block(self, block: int) -> bytes | int:
        cond = self._conditions(block)
        data = bytearray(self.memory[block * 16:(block + 1) * 16])
        if block == classic.trailer_block(self.auth_sector or 0):
            data[0:6] = bytes(6)  # key A never reads back
            if self.auth_key not in TRAILER[cond][2]:
                data[10:16] = bytes(6)  # key B only when the access conditions make it readable
        elif self.auth_key not in DATA_READ[cond]:
            return Nak(4)
        return bytes(data)

    def _write_block(self, block: int, data: bytes) -> bytes | int:
        cond, key = self._conditions(block), self.auth_key
        if block == 0:  # the manufacturer block is read-only
            return Nak(4)
        if block != classic.trailer_block(self.auth_sector or 0):
            if key not in DATA_WRITE.get(cond, ""):
                return Nak(4)
            self.memory[block * 16:(block + 1) * 16] = data
        else:
            write_a, write_access, _, write_b = TRAILER[cond]
            if not (key in write_a or key in write_access or key in write_b):
                return Nak(4)
            new = bytearray(self.memory[block * 16:(block + 1) * 16])
            for allowed, part in ((write_a, slice(0, 6)), (write_access, slice(6, 10)), (write_b, slice(10, 16))):
                if key in allowed and allowed:
                    new[part] = data[part]
            self.memory[block * 16:(block + 1) * 16] = new
        self.writes += 1
        return b""
