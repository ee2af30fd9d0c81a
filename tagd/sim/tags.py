"""Emulated tags: what a Type 2 tag or a MIFARE Classic card answers to raw ISO14443-3 commands.

An :class:`EmulatedTag` holds a live :class:`TagDump` (writes change it; ``--save`` writes it back) and
answers the commands a reader sends through the PN532 (InDataExchange / InCommunicateThru) or the
ACR122U's pseudo-APDUs. ``transceive()`` returns the tag's answer bytes, or an int PN532 error status
(0x01 no answer, 0x14 authentication error) so both chip emulators can report it their own way.

Like a real tag, it goes back to IDLE after a command it refuses or does not know (a NAK, no answer, a
failed authentication) and answers nothing until a reader selects it again (:meth:`select`, which the
PN532's InListPassiveTarget/InSelect do): a driver that forgets to reselect fails here as on hardware.

What the tag enforces, from the datasheets: for Type 2 tags, everything :mod:`tagd.sim.type2_tag` says
(the NTAG21x/EV1 command set with its NAKs, password protection, counters, lock bits). MIFARE Classic:
keys and access conditions from each sector trailer (data blocks and trailer parts), Key A reading back
as zeros.
"""

from __future__ import annotations

import dataclasses
import logging
import os

from tagd.ndef import classic, type2
from tagd.ndef.dumps import TagDump, load
from tagd.sim.felica_tag import FelicaCard
from tagd.sim.type2_tag import ACK, AUTH_ERROR, NO_ANSWER, Nak, Type2Tag

log = logging.getLogger(__name__)

# the tag-answer vocabulary is the Type 2 tag's (re-exported: the chip emulators import it from here)
__all__ = ["ACK", "NO_ANSWER", "AUTH_ERROR", "Nak", "EmulatedTag", "crc_a"]


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
        self.classic_writes = 0
        self.kind = type2.TYPE2_KINDS.get(dump.kind)
        # a FeliCa dump (kind "felica": uid = IDm, version = PMm, memory = Lite-S blocks) answers as a FeliCa card
        self.felica = FelicaCard(dump.uid, dump.version or bytes(8), bytes(dump.memory), dump.systems) \
            if dump.is_felica else None
        self.t2 = None if dump.is_classic or self.felica else Type2Tag(self.memory, self.kind, dump.version,
                                                                       dump.signature)

    @property
    def writes(self) -> int:
        return self.classic_writes + (self.t2.writes if self.t2 else 0)

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
        return dataclasses.replace(self.dump, memory=bytes(self.memory), notes=())

    def reset_auth(self) -> None:
        self.auth_sector = None
        self.auth_key = ""
        if self.t2:
            self.t2.reset()

    def enter_field(self) -> None:
        """Placed on a reader: powered up, idle until selected."""
        self.active = False
        self.reset_auth()
        if self.t2:
            self.t2.power_on()

    def select(self) -> None:
        """A reader activated the tag (WUPA + anticollision + SELECT): it answers again, unauthenticated."""
        self.active = True
        self.reset_auth()

    # --- commands ---------------------------------------------------------
    def transceive(self, cmd: bytes) -> bytes | int:
        if not cmd or not self.active:
            return NO_ANSWER
        if self.felica:
            return self.felica.transceive(cmd)  # FeliCa has no halt: a refused command leaves it as it was
        answer = self._classic(cmd) if self.is_classic else self._type2(cmd)
        if isinstance(answer, int):  # refused: the tag drops back to IDLE until selected again
            self.active = False
            self.reset_auth()
        return answer

    def _type2(self, cmd: bytes) -> bytes | int:
        assert self.t2 is not None
        return self.t2.transceive(cmd)

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
        self.classic_writes += 1
        return b""
