"""FeliCa cards as tokens, sans-I/O: the IDm is the card's stable ID (arcade access cards — Aime, Banapass,
AIC — are known by it), and a FeliCa Lite-S formatted for NDEF (NFC Forum Type 3) carries a message too.

Type 3 Tag memory (NFC Forum T3T): block 0 is the Attribute Information Block — Ver, Nbr (blocks per
read), Nbw (per write), Nmaxb (2 bytes, data blocks), 4 RFU, WriteF, RWFlag, Ln (3 bytes, the message
length), checksum (2 bytes, the sum of bytes 0–13) — and the message follows from block 1. A FeliCa
dump here is a :class:`~tagd.ndef.tagdump.TagDump` of kind ``felica``: ``uid`` the IDm, ``version`` the
PMm, ``memory`` the Lite-S blocks from block 0 (empty for a card whose memory needs keys).

The FeliCa commands both sides build and parse are here too (Polling, Read Without Encryption), so the
driver and the emulated card agree on them byte for byte.
"""

from __future__ import annotations

from tagd.ndef.decode import DecodedTag, _fill_from_message
from tagd.ndef.tagdump import TagDump
from tagd.token import TYPE_FELICA

KIND = "felica"
BLOCK = 16
POLLING, POLLING_RES, READ_WO_ENC, READ_WO_ENC_RES = 0x00, 0x01, 0x06, 0x07
SYSTEM_NDEF, SYSTEM_LITE_S, SYSTEM_ANY = 0x12FC, 0x88B4, 0xFFFF
SERVICE_NDEF_READ = 0x000B  # Lite-S: the NDEF data, read without encryption
LITE_S_PMM = bytes.fromhex("00F1000000014300")  # IC code F1: FeliCa Lite-S
STANDARD_PMM = bytes.fromhex("0120220427674EFF")  # a FeliCa Standard card (its memory needs keys)
LITE_S_DATA_BLOCKS = 13
MAX_BLOCKS_PER_READ = 4


class FelicaError(ValueError):
    pass


def attribute_block(message_len: int, data_blocks: int = LITE_S_DATA_BLOCKS, writable: bool = True) -> bytes:
    aib = bytearray([0x10, MAX_BLOCKS_PER_READ, 1]) + data_blocks.to_bytes(2, "big") + bytes(4)
    aib += bytes([0x00, 0x01 if writable else 0x00]) + message_len.to_bytes(3, "big")
    return bytes(aib) + (sum(aib) & 0xFFFF).to_bytes(2, "big")


def message_length(aib: bytes) -> int | None:
    """Ln from a valid Attribute Information Block; None when it is not one."""
    if len(aib) < BLOCK or (sum(aib[:14]) & 0xFFFF) != int.from_bytes(aib[14:16], "big") or aib[0] >> 4 != 1:
        return None
    return int.from_bytes(aib[11:14], "big")


def blocks_from_zero(blocks: dict[int, bytes]) -> bytes:
    """Blocks 0, 1, 2… up to the first one ``blocks`` lacks: the memory as a reader reads it, in order."""
    memory = bytearray()
    while len(memory) // BLOCK in blocks:
        memory += blocks[len(memory) // BLOCK]
    return bytes(memory)


def cut_short(memory: bytes) -> str | None:
    """Why ``memory`` cannot be a whole card's dump: its attribute block announces an NDEF message that runs past
    the blocks it has (a truncated file). None when it does not."""
    n = message_length(memory[:BLOCK])
    if n is None or BLOCK + n <= len(memory):
        return None
    return f"block {len(memory) // BLOCK:04X} missing: the attribute block says the NDEF message is {n} bytes, " \
           f"up to block {-(-n // BLOCK):04X}"


def lite_s_dump(idm: bytes, message: bytes | None) -> TagDump:
    """A FeliCa Lite-S holding ``message`` (NDEF), or a FeliCa Standard card (no readable memory) for None."""
    if len(idm) != 8:
        raise FelicaError(f"an IDm is 8 bytes, not {len(idm)}")
    if message is None:
        return TagDump(kind=KIND, uid=idm, atqa=0, sak=0, memory=b"", version=STANDARD_PMM, systems=(SYSTEM_LITE_S,))
    if len(message) > LITE_S_DATA_BLOCKS * BLOCK:
        raise FelicaError(f"the message needs {len(message)} bytes but a FeliCa Lite-S holds "
                          f"{LITE_S_DATA_BLOCKS * BLOCK}")
    data = message + bytes(LITE_S_DATA_BLOCKS * BLOCK - len(message))
    return TagDump(kind=KIND, uid=idm, atqa=0, sak=0, memory=attribute_block(len(message)) + data,
                   version=LITE_S_PMM, systems=(SYSTEM_NDEF,))


def decode_felica(idm: bytes, memory: bytes | None) -> DecodedTag:
    """The token of a FeliCa card: uid = IDm, type FeliCa; text and data from NDEF when the memory (from
    block 0) holds a Type 3 message."""
    out = DecodedTag(kind=KIND, uid=idm.hex(), token_type=TYPE_FELICA)
    if not memory:
        out.errors.append("no NDEF (the card's memory is not readable without keys)")
        return out
    n = message_length(memory[:BLOCK])
    if n is None:
        out.errors.append("no NDEF attribute block")
        return out
    out.is_ndef = True
    out.capacity = int.from_bytes(memory[3:5], "big") * BLOCK
    out.read_only = memory[10] == 0x00

    def read() -> bytes | None:
        body = memory[BLOCK:BLOCK + n]
        return body if len(body) == n and n else None

    _fill_from_message(out, read, "" if n else "empty NDEF message")
    return out


# --- commands (with the FeliCa length byte first) ------------------------------------------------------
def polling(system: int = SYSTEM_ANY, request: int = 0x01) -> bytes:
    return bytes([6, POLLING]) + system.to_bytes(2, "big") + bytes([request, 0x00])


def read_without_encryption(idm: bytes, blocks: range, service: int = SERVICE_NDEF_READ) -> bytes:
    body = bytes([READ_WO_ENC]) + idm + b"\x01" + service.to_bytes(2, "little") + bytes([len(blocks)])
    body += b"".join(bytes([0x80, b]) for b in blocks)
    return bytes([len(body) + 1]) + body


def parse_read_response(answer: bytes, idm: bytes) -> bytes:
    """The block data of a Read Without Encryption answer; FelicaError with the status flags if refused."""
    if len(answer) < 12 or answer[1] != READ_WO_ENC_RES or answer[2:10] != idm:
        raise FelicaError("not a Read Without Encryption answer from this card")
    if answer[10] != 0x00:
        raise FelicaError(f"read refused: status flags {answer[10]:02X} {answer[11]:02X}")
    n = answer[12]
    return bytes(answer[13:13 + n * BLOCK])
