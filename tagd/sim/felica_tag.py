"""What a FeliCa card answers (212/424 kbps), sans-I/O: Polling and Read Without Encryption.

A card answers Polling for FFFF (any) and for each of its system codes (a dump's, the first being the one
it reports when asked with request code 01); a FeliCa Lite-S (PMm IC code F1) also answers for its own
88B4, and any card holding an NDEF attribute block for the NFC Forum's 12FC. It reads up to 4 blocks of
service 000B (or 0009) without encryption — the blocks its dump holds, which are the ones a reader could
read without keys. A FeliCa Standard card whose memory needs keys (an arcade access card; its dump has no
blocks) refuses any read with status flags FF A6 (illegal service code). Commands and answers carry the
FeliCa length byte first, as InCommunicateThru passes them.
"""

from __future__ import annotations

from tagd.ndef import felica

NO_ANSWER = 0x01  # PN532 status "timeout"
ILLEGAL_SERVICE = bytes([0xFF, 0xA6])
ILLEGAL_BLOCK = bytes([0xFF, 0xA8])


class FelicaCard:
    def __init__(self, idm: bytes, pmm: bytes, memory: bytes, systems: tuple[int, ...] = ()) -> None:
        self.idm, self.pmm, self.memory, self.systems = idm, pmm, memory, systems

    @property
    def is_lite_s(self) -> bool:
        return len(self.pmm) > 1 and self.pmm[1] == 0xF1 and bool(self.memory)

    @property
    def is_ndef(self) -> bool:
        return felica.message_length(self.memory[:felica.BLOCK]) is not None

    @property
    def system(self) -> int:
        """The system code the card reports first: its dump's, else the NDEF one or the Lite-S's own."""
        if self.systems:
            return self.systems[0]
        return felica.SYSTEM_NDEF if self.is_ndef else felica.SYSTEM_LITE_S

    def polling_response(self, system: int, request: int) -> bytes | None:
        """POL_RES (with its length byte) when the card answers a Polling for ``system``, else None."""
        answers = {felica.SYSTEM_ANY, self.system, *self.systems}
        answers |= {felica.SYSTEM_LITE_S} if self.is_lite_s else set()
        answers |= {felica.SYSTEM_NDEF} if self.is_ndef else set()
        if system not in answers:
            return None
        body = bytes([felica.POLLING_RES]) + self.idm + self.pmm
        if request == 0x01:
            body += self.system.to_bytes(2, "big")
        return bytes([len(body) + 1]) + body

    def transceive(self, frame: bytes) -> bytes | int:
        if len(frame) < 2 or frame[0] != len(frame):
            return NO_ANSWER
        cmd = frame[1]
        if cmd == felica.POLLING and len(frame) >= 6:
            return self.polling_response(int.from_bytes(frame[2:4], "big"), frame[4]) or NO_ANSWER
        if cmd == felica.READ_WO_ENC and len(frame) >= 14 and frame[2:10] == self.idm:
            return self._read(frame)
        return NO_ANSWER

    def _read(self, frame: bytes) -> bytes:
        head = bytes([felica.READ_WO_ENC_RES]) + self.idm
        n_services = frame[10]
        service = int.from_bytes(frame[11:13], "little")
        at = 11 + 2 * n_services
        if not self.memory or n_services != 1 or service not in (0x0009, 0x000B) or at >= len(frame):
            return bytes([len(head) + 3]) + head + ILLEGAL_SERVICE
        n_blocks, blocks, i = frame[at], [], at + 1
        while len(blocks) < n_blocks and i + 1 < len(frame):
            blocks.append(frame[i + 1])
            i += 2
        if not 0 < n_blocks <= felica.MAX_BLOCKS_PER_READ or len(blocks) != n_blocks or \
                any((b + 1) * felica.BLOCK > len(self.memory) for b in blocks):
            return bytes([len(head) + 3]) + head + ILLEGAL_BLOCK
        data = b"".join(self.memory[b * felica.BLOCK:(b + 1) * felica.BLOCK] for b in blocks)
        body = head + b"\x00\x00" + bytes([n_blocks]) + data
        return bytes([len(body) + 1]) + body
