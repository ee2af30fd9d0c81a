"""PN532 command codes, status codes and RFConfiguration items (UM0701-02 §7), named once.

The driver (:mod:`tagd.readers.pn532.chip`) sends these and the emulator (:mod:`tagd.sim.pn532`)
dispatches on them, so a code can never mean one thing to the host and another to the chip
(as nfcpy's ``Chipset.CMD``/``ERR`` tables). A response code is the command code + 1.
"""

from __future__ import annotations

import enum


class Command(enum.IntEnum):
    DIAGNOSE = 0x00
    GET_FIRMWARE_VERSION = 0x02
    GET_GENERAL_STATUS = 0x04
    READ_REGISTER = 0x06
    WRITE_REGISTER = 0x08
    SET_SERIAL_BAUDRATE = 0x10
    SET_PARAMETERS = 0x12
    SAM_CONFIGURATION = 0x14
    POWER_DOWN = 0x16
    RF_CONFIGURATION = 0x32
    IN_DATA_EXCHANGE = 0x40
    IN_COMMUNICATE_THRU = 0x42
    IN_DESELECT = 0x44
    IN_LIST_PASSIVE_TARGET = 0x4A
    IN_RELEASE = 0x52
    IN_SELECT = 0x54
    IN_AUTO_POLL = 0x60

    @property
    def response(self) -> int:
        """The code of this command's response frame."""
        return self + 1


class Status(enum.IntEnum):
    """The error half (bits 5..0) of the status byte of InDataExchange, InCommunicateThru, InSelect …"""

    OK = 0x00
    TIMEOUT = 0x01  # the target did not answer within the RetryTimeout (RFConfiguration item 02)
    CRC = 0x02
    PARITY = 0x03
    FRAMING = 0x05
    RF_FIELD = 0x0A  # RF field not switched on in time
    RF_PROTOCOL = 0x0B
    FORMAT = 0x13
    MIFARE_AUTH = 0x14  # also how InDataExchange reports a Type 2 tag's 4-bit NAK
    UID_BCC = 0x23
    WRONG_CONTEXT = 0x27  # unknown target number, or a command the chip cannot do in this state
    RELEASED = 0x29
    CARD_DISAPPEARED = 0x2B


class RfItem(enum.IntEnum):
    """RFConfiguration (``D4 32 item …``) items."""

    FIELD = 0x01  # bit 0: RF field on
    TIMINGS = 0x02  # RFU, fATR_RES_Timeout, fRetryTimeout
    MAX_RTY_COM = 0x04
    MAX_RETRIES = 0x05  # MxRtyATR, MxRtyPSL, MxRtyPassiveActivation


class BrTy(enum.IntEnum):
    """InListPassiveTarget's baud rate and modulation."""

    TYPE_A_106 = 0x00
    FELICA_212 = 0x01
    FELICA_424 = 0x02
    TYPE_B_106 = 0x03
    JEWEL_106 = 0x04


def timeout_seconds(code: int) -> float | None:
    """RFConfiguration item 02 timeout code → seconds: 00 none (None), 01 = 100 µs, each next code doubles."""
    return None if code == 0 else 100e-6 * 2 ** (min(code, 0x10) - 1)
