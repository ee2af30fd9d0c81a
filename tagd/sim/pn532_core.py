"""The PN532's command logic, sans-I/O: command data (after TFI D4) in, response data (after TFI D5) out.

:class:`Pn532Core` answers for whatever :class:`EmulatedTag` lies on the antenna and keeps the state a
real chip keeps — RF settings and MaxRetries, the listed target, registers (CIU_RxMode's CRC bit,
which nfcpy clears), the baud rate asked for — and a "waiting" list command: with
MxRtyPassiveActivation FF an InListPassiveTarget waits until a tag is placed, exactly as the chip does
after power-up. A tag's 4-bit ACK/NAK reaches the host as the chip reports it: InDataExchange knows
MIFARE (ACK = status 00, NAK = 14), InCommunicateThru with CRC checking on sees a CRC error (02), with it
off (nfcpy) the 4 bits arrive as one byte and every other answer carries its CRC_A.

Commands are dispatched from one table keyed by :class:`~tagd.readers.pn532.commands.Command`, the
codes the driver sends. The host interface around it (frames, ACK/NACK, faults) is
:mod:`tagd.sim.pn532_link`; the pty it lives on, :mod:`tagd.sim.pn532`.
"""

from __future__ import annotations

from typing import Callable

from tagd.readers.pn532.commands import BrTy, Command, RfItem, Status
from tagd.sim.tags import ACK as TAG_ACK, NO_ANSWER, EmulatedTag, Nak, crc_a

FIRMWARE = {"1.6": bytes([0x32, 0x01, 0x06, 0x07]), "1.4": bytes([0x32, 0x01, 0x04, 0x07])}
BAUD_CODES = {0x00: 9600, 0x01: 19200, 0x02: 38400, 0x03: 57600, 0x04: 115200, 0x05: 230400,
              0x06: 460800, 0x07: 921600, 0x08: 1288000}
REG_CIU_TXMODE = 0x6302
REG_CIU_RXMODE = 0x6303  # bit 7: check and strip the tag's CRC_A (nfcpy clears it for Type 2 tags)
REG_CIU_FIFODATA = 0x6339
REGISTER_DEFAULTS = {REG_CIU_TXMODE: 0x80, REG_CIU_RXMODE: 0x80}
TAG_COMMAND_TIME = 0.005  # what an NTAG takes to execute one command, RF included
TRY_TIME = 0.002  # one passive activation try (REQA/WUPA and its wait) with nothing in the field
UNKNOWN = object()  # handle() result: answer with the application error frame


def uid_from_cascade(data: bytes) -> bytes:
    """InitiatorData carries the UID as the anticollision sends it: 7- and 10-byte UIDs behind 0x88
    cascade tags (``88 u0 u1 u2 u3 … u6``)."""
    if len(data) == 8 and data[0] == 0x88:
        return data[1:]
    if len(data) == 12 and data[0] == 0x88 and data[4] == 0x88:
        return data[1:4] + data[5:]
    return data


class Pn532Core:
    """The chip's command logic. Not thread-safe: the emulator calls it from one thread.

    ``handle()`` answers at once: a finite MaxRetries InListPassiveTarget with no tag answers
    ``4B 00`` (all tries failed; :meth:`retry_time` says how long the tries take, the emulator waits
    that long and takes a tag placed meanwhile); with PassiveActivation FF it returns None and
    ``waiting`` stays set until :meth:`complete_wait` can answer or :meth:`abort` (a host ACK) ends it.
    """

    def __init__(self, firmware: str = "1.6") -> None:
        self.firmware = FIRMWARE[firmware]
        self.tag: EmulatedTag | None = None
        self.listed = False  # a target is activated (Tg 1), as far as the chip knows
        self.listed_uid = b""
        self.max_retries = (0xFF, 0x01, 0xFF)  # power-up default: PassiveActivation FF waits forever
        self.rf_on = True
        self.registers: dict[int, int] = dict(REGISTER_DEFAULTS)
        self.waiting = False  # an InListPassiveTarget is waiting for a tag
        self.wanted_uid = b""  # ... for this one (its InitiatorData), or any
        self.new_baud: int | None = None  # set by SetSerialBaudrate; applied after the host's ACK
        self.tag_commands = 0
        self.on_tag_command: Callable[[], None] | None = None

    # --- the antenna ------------------------------------------------------
    def place(self, tag: EmulatedTag | None) -> None:
        """A tag enters the field. It is idle: the host's commands to its old target get no answer
        until the host lists (selects) again."""
        self.tag = tag
        if tag:
            tag.active = False
            tag.reset_auth()

    def remove(self) -> None:
        """The tag leaves the field. The chip does not know until its next command to it times out."""
        self.tag = None

    @property
    def crc_checked(self) -> bool:
        return bool(self.registers.get(REG_CIU_RXMODE, 0x80) & 0x80)

    def complete_wait(self) -> bytes | None:
        """If a waiting InListPassiveTarget can now be answered, its response."""
        if self.waiting and self.tag is not None and (not self.wanted_uid or self.wanted_uid == self.tag.uid):
            self.waiting = False
            return self._listed_response()
        return None

    def abort(self) -> None:
        self.waiting = False

    def retry_time(self) -> float:
        """How long a finite MaxRetries InListPassiveTarget keeps trying: (n + 1) tries."""
        return TRY_TIME * (self.max_retries[2] + 1)

    def _listed_response(self) -> bytes:
        assert self.tag is not None
        self.listed, self.listed_uid = True, self.tag.uid
        self.tag.select()
        return bytes([0x4B, 0x01, 0x01]) + self.tag.target_data()

    def _tag_command(self, cmd: bytes) -> bytes | int:
        self.tag_commands += 1
        if self.on_tag_command:
            self.on_tag_command()  # may remove the tag (fault knob)
        if self.tag is None or not self.rf_on:
            return NO_ANSWER
        return self.tag.transceive(cmd)

    # --- commands ---------------------------------------------------------
    def handle(self, data: bytes):  # -> bytes | None | UNKNOWN
        if not data or data[0] not in HANDLERS:
            return UNKNOWN
        code, p = data[0], data[1:]
        try:
            return HANDLERS[code](self, p)
        except IndexError:  # too few parameters: the chip answers a syntax error
            if code in (Command.IN_DATA_EXCHANGE, Command.IN_COMMUNICATE_THRU):
                return bytes([code + 1, Status.WRONG_CONTEXT])
            return UNKNOWN

    def _diagnose(self, p: bytes) -> bytes:
        if p[0] == 0x00:  # communication line test: echo
            return bytes([0x01]) + p
        return bytes([0x01, 0x00])

    def _get_firmware_version(self, p: bytes) -> bytes:
        return bytes([0x03]) + self.firmware

    def _get_general_status(self, p: bytes) -> bytes:
        n = 1 if self.listed and self.tag else 0
        return bytes([0x05, 0x00, 0x01 if self.rf_on else 0x00, n]) + (bytes([1, 0, 0, 0]) if n else b"") + b"\x00"

    def _read_register(self, p: bytes) -> bytes:
        out = bytearray([0x07])
        for i in range(0, len(p) - 1, 2):
            addr = (p[i] << 8) | p[i + 1]
            if addr == REG_CIU_FIFODATA:  # what is left of the last REQA: 26 when nothing answered
                out.append(0x26 if self.tag is None else 0x00)
            else:
                out.append(self.registers.get(addr, 0x00))
        return bytes(out)

    def _write_register(self, p: bytes) -> bytes:
        for i in range(0, len(p) - 2, 3):
            self.registers[(p[i] << 8) | p[i + 1]] = p[i + 2]
        return b"\x09"

    def _set_serial_baudrate(self, p: bytes) -> bytes:
        self.new_baud = BAUD_CODES.get(p[0], 115200)
        return b"\x11"

    def _set_parameters(self, p: bytes) -> bytes:
        return b"\x13"

    def _sam_configuration(self, p: bytes) -> bytes:
        return b"\x15"

    def _power_down(self, p: bytes) -> bytes:
        return b"\x17\x00"

    def _rf_configuration(self, p: bytes) -> bytes:  # items 02, 04, 0A-0D: analog settings, accepted
        if p[0] == RfItem.FIELD:
            self.rf_on = bool(p[1] & 0x01)
            if not self.rf_on:
                self.listed = False
                if self.tag:
                    self.tag.active = False  # no field, no power: the tag resets
        elif p[0] == RfItem.MAX_RETRIES:
            self.max_retries = (p[1], p[2], p[3])
        return b"\x33"

    def _in_list_passive_target(self, p: bytes):
        if p[1] != BrTy.TYPE_A_106:  # only 106 kbps type A
            return b"\x4b\x00"
        self.rf_on = True  # the chip switches the field on for an initiator command
        wanted = uid_from_cascade(bytes(p[2:]))  # InitiatorData for 106A: only that tag is selected
        if self.tag is not None and (not wanted or wanted == self.tag.uid):
            return self._listed_response()
        self.listed = False
        if self.max_retries[2] == 0xFF:
            self.waiting, self.wanted_uid = True, wanted
            return None
        return b"\x4b\x00"

    def _exchange(self, code: int, cmd: bytes, through: bool) -> bytes:
        if not self.listed:
            return bytes([code, Status.WRONG_CONTEXT])
        answer = self._tag_command(cmd)
        if isinstance(answer, Nak) or answer == TAG_ACK:
            # a 4-bit ACK/NAK: InDataExchange knows MIFARE (ACK = done, NAK = error 14); raw with CRC
            # checking on, it is a CRC error; with it off (nfcpy) the host gets the 4 bits as one byte
            if through:
                if self.crc_checked:
                    return bytes([code, Status.CRC])
                return bytes([code, 0x00, answer.code if isinstance(answer, Nak) else answer[0]])
            return bytes([code, int(answer)]) if isinstance(answer, Nak) else bytes([code, 0x00])
        if isinstance(answer, int):
            return bytes([code, answer])
        if through and not self.crc_checked:
            answer += crc_a(answer)
        return bytes([code, 0x00]) + answer

    def _in_data_exchange(self, p: bytes) -> bytes:
        if p[0] != 0x01:
            return b"\x41\x27"
        return self._exchange(Command.IN_DATA_EXCHANGE.response, p[1:], through=False)

    def _in_communicate_thru(self, p: bytes) -> bytes:
        return self._exchange(Command.IN_COMMUNICATE_THRU.response, p, through=True)

    def _in_deselect(self, p: bytes) -> bytes:  # the tag is halted but stays listed for InSelect
        if self.tag and self.listed:
            self.tag.active = False
        return b"\x45\x00"

    def _in_release(self, p: bytes) -> bytes:
        self.listed = False
        if self.tag:
            self.tag.active = False  # HLTA
        return b"\x53\x00"

    def _in_select(self, p: bytes) -> bytes:  # WUPA + select of the listed UID
        if not self.listed:
            return b"\x55\x27"
        if self.tag is None or self.tag.uid != self.listed_uid:
            return b"\x55\x01"  # nothing (or another tag) answers that UID
        self.tag.select()
        return b"\x55\x00"

    def wait_time(self, data: bytes) -> float:
        """Extra time the chip spends on a command beyond the wire: the tag executing it."""
        code = data[0] if data else 0
        if code in (Command.IN_DATA_EXCHANGE, Command.IN_COMMUNICATE_THRU) or (
                code == Command.IN_LIST_PASSIVE_TARGET and self.tag):
            return TAG_COMMAND_TIME
        return 0.0


# Command → handler: the commands this chip knows (anything else gets the application error frame).
HANDLERS: dict[int, Callable[[Pn532Core, bytes], object]] = {
    Command.DIAGNOSE: Pn532Core._diagnose,
    Command.GET_FIRMWARE_VERSION: Pn532Core._get_firmware_version,
    Command.GET_GENERAL_STATUS: Pn532Core._get_general_status,
    Command.READ_REGISTER: Pn532Core._read_register,
    Command.WRITE_REGISTER: Pn532Core._write_register,
    Command.SET_SERIAL_BAUDRATE: Pn532Core._set_serial_baudrate,
    Command.SET_PARAMETERS: Pn532Core._set_parameters,
    Command.SAM_CONFIGURATION: Pn532Core._sam_configuration,
    Command.POWER_DOWN: Pn532Core._power_down,
    Command.RF_CONFIGURATION: Pn532Core._rf_configuration,
    Command.IN_DATA_EXCHANGE: Pn532Core._in_data_exchange,
    Command.IN_COMMUNICATE_THRU: Pn532Core._in_communicate_thru,
    Command.IN_DESELECT: Pn532Core._in_deselect,
    Command.IN_LIST_PASSIVE_TARGET: Pn532Core._in_list_passive_target,
    Command.IN_RELEASE: Pn532Core._in_release,
    Command.IN_SELECT: Pn532Core._in_select,
}
