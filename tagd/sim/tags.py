"""Emulated tags: what a Type 2 tag or a MIFARE Classic card answers to raw ISO14443-3 commands.

An :class:`EmulatedTag` holds a live :class:`TagDump` (writes change it; ``--save`` writes it back) and
answers the commands a reader sends through the PN532 (InDataExchange / InCommunicateThru) or the
ACR122U's pseudo-APDUs. ``transceive()`` returns the tag's answer bytes, or an int PN532 error status
(0x01 no answer, 0x14 authentication error) so both chip emulators can report it their own way.
"""

from __future__ import annotations

import os

from tagd.ndef import classic, type2
from tagd.ndef.dumps import TagDump, load

ACK = b"\x0a"  # the 4-bit ACK of a Type 2 WRITE, as nfcpy sees it with CRC checking off
NO_ANSWER = 0x01
AUTH_ERROR = 0x14


class EmulatedTag:
    def __init__(self, dump: TagDump, name: str = "") -> None:
        self.dump = dump
        self.name = name
        self.memory = bytearray(dump.memory)
        self.auth_sector: int | None = None
        self.writes = 0

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> "EmulatedTag":
        return cls(load(path), os.fspath(path))

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

    # --- commands ---------------------------------------------------------
    def transceive(self, cmd: bytes) -> bytes | int:
        if not cmd:
            return NO_ANSWER
        if self.is_classic:
            return self._classic(cmd)
        return self._type2(cmd)

    def _type2(self, cmd: bytes) -> bytes | int:
        pages = len(self.memory) // 4
        op = cmd[0]
        if op == 0x30 and len(cmd) >= 2:  # READ: 4 pages, wrapping at the end
            p = cmd[1]
            if p >= pages:
                return NO_ANSWER
            return bytes(self.memory[((p + i) % pages) * 4 + j] for i in range(4) for j in range(4))
        if op == 0x3A and len(cmd) >= 3:  # FAST_READ
            s, e = cmd[1], cmd[2]
            if s > e or e >= pages:
                return NO_ANSWER
            return bytes(self.memory[s * 4:(e + 1) * 4])
        if op == 0xA2 and len(cmd) >= 6:  # WRITE
            p, data = cmd[1], cmd[2:6]
            if p < 2 or p >= pages:
                return NO_ANSWER
            if p in (2, 3):  # lock bytes and CC are one-time programmable: bits can only be set
                old = self.memory[p * 4:(p + 1) * 4]
                data = bytes(old[i] | data[i] if (p == 3 or i >= 2) else old[i] for i in range(4))
            self.memory[p * 4:(p + 1) * 4] = data
            self.writes += 1
            return ACK
        if op == 0x60:  # GET_VERSION: every NTAG answers (dumps may not have recorded it); a plain Ultralight does not
            kind = type2.TYPE2_KINDS.get(self.dump.kind)
            version = self.dump.version or (kind.version if kind else None)
            return version if version else NO_ANSWER
        if op == 0x3C:  # READ_SIG
            return self.dump.signature or bytes(32)
        if op == 0x1B and len(cmd) >= 5:  # PWD_AUTH: answer the PACK (no protection is modelled)
            return b"\x00\x00"
        return NO_ANSWER

    def _classic(self, cmd: bytes) -> bytes | int:
        op = cmd[0]
        blocks = len(self.memory) // 16
        if op in (0x60, 0x61) and len(cmd) >= 8:  # AUTH: block, key(6), uid(4)
            block, key = cmd[1], bytes(cmd[2:8])
            self.auth_sector = None
            if block >= blocks:
                return AUTH_ERROR
            sector = classic.sector_of(block)
            t = classic.trailer_block(sector) * 16
            stored = bytes(self.memory[t:t + 6]) if op == 0x60 else bytes(self.memory[t + 10:t + 16])
            key_range = range(t, t + 6) if op == 0x60 else range(t + 10, t + 16)
            if any(a in self.dump.unknown for a in key_range) or stored != key:
                return AUTH_ERROR
            self.auth_sector = sector
            return b""
        if op == 0x30 and len(cmd) >= 2:  # READ
            block = cmd[1]
            if block >= blocks or self.auth_sector != classic.sector_of(block):
                return AUTH_ERROR
            data = bytearray(self.memory[block * 16:(block + 1) * 16])
            if block == classic.trailer_block(self.auth_sector):
                data[0:6] = bytes(6)  # key A never reads back
            return bytes(data)
        if op == 0xA0 and len(cmd) >= 18:  # WRITE: block + 16 bytes in one exchange (as the PN532 does it)
            block = cmd[1]
            if block == 0 or block >= blocks or self.auth_sector != classic.sector_of(block):
                return AUTH_ERROR
            self.memory[block * 16:(block + 1) * 16] = cmd[2:18]
            self.writes += 1
            return b""
        return NO_ANSWER
