"""A PN532 that lives on a pty: the chip's command logic (sans-I/O) and the UART around it.

:class:`Pn532Core` maps command data (after TFI D4) to response data (after TFI D5) for whatever
:class:`EmulatedTag` lies on the antenna. It keeps the state a real chip keeps — RF settings and
MaxRetries, the listed target, registers (CIU_RxMode's CRC bit, which nfcpy clears), baud rate — and
a "waiting" list command: with MxRtyPassiveActivation FF an InListPassiveTarget waits until a tag is
placed, exactly as the chip does after power-up. A tag's 4-bit ACK/NAK reaches the host as the chip
reports it: InDataExchange knows MIFARE (ACK = status 00, NAK = 14), InCommunicateThru with CRC
checking on sees a CRC error (02), with it off (nfcpy) the 4 bits arrive as one byte and every other
answer carries its CRC_A.

:class:`Pn532Emulator` puts a core on a pty in its own thread: it decodes frames with the same codec as
the driver, ACKs, answers, resends on NACK, aborts a waiting command on a host ACK, counts bytes both
ways (and per command), and has fault knobs for tests. Timing: a command is complete when its bytes
would have arrived at the line speed (10 bit times a byte); the ACK and the response leave at line
speed; a command the tag executes adds TAG_COMMAND_TIME (one FAST_READ is one command); a finite
MaxRetries list with no tag answers after (n + 1) × TRY_TIME and takes a tag placed meanwhile. Without
``baud`` only the chip's own times apply. ``unplug()`` closes the pty (the host's reads see end of
file, writes EIO); ``replug()`` makes a new one, with a power-cycled chip, and re-points the link.

Not modelled: PowerDown sleep and the wake-up it needs, SAMConfiguration being mandatory after
power-up, InAutoPoll, ISO 14443-4 targets and other baud-rate/type targets (BrTy ≠ 00 finds none).

Why it is long: the chip core (one handler per command the drivers and nfcpy send) and its pty shell (framing,
the timing model above, faults, unplug) are described and tested as one device; they are two classes that could
become two modules if either grows.
"""

from __future__ import annotations

import logging
import os
import select
import threading
import time
import tty
from collections import Counter
from dataclasses import dataclass
from typing import Callable

from tagd.readers.pn532.frames import ACK, ERROR_FRAME, NACK, TFI_CHIP, TFI_HOST, Ack, BadFrame, ErrorFrame, \
    Frame, FrameDecoder, Nack, encode_frame
from tagd.sim.tags import ACK as TAG_ACK, NO_ANSWER, EmulatedTag, Nak, crc_a  # noqa: F401 (crc_a re-exported)

log = logging.getLogger(__name__)

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
        if not data:
            return UNKNOWN
        code, p = data[0], data[1:]
        handler = getattr(self, f"_cmd_{code:02x}", None)
        if handler is None:
            return UNKNOWN
        try:
            return handler(p)
        except IndexError:  # too few parameters: the chip answers a syntax error
            return bytes([code + 1, 0x27]) if code in (0x40, 0x42) else UNKNOWN

    def _cmd_00(self, p: bytes) -> bytes:  # Diagnose
        if p[0] == 0x00:  # communication line test: echo
            return bytes([0x01]) + p
        return bytes([0x01, 0x00])

    def _cmd_02(self, p: bytes) -> bytes:  # GetFirmwareVersion
        return bytes([0x03]) + self.firmware

    def _cmd_04(self, p: bytes) -> bytes:  # GetGeneralStatus
        n = 1 if self.listed and self.tag else 0
        return bytes([0x05, 0x00, 0x01 if self.rf_on else 0x00, n]) + (bytes([1, 0, 0, 0]) if n else b"") + b"\x00"

    def _cmd_06(self, p: bytes) -> bytes:  # ReadRegister
        out = bytearray([0x07])
        for i in range(0, len(p) - 1, 2):
            addr = (p[i] << 8) | p[i + 1]
            if addr == REG_CIU_FIFODATA:  # what is left of the last REQA: 26 when nothing answered
                out.append(0x26 if self.tag is None else 0x00)
            else:
                out.append(self.registers.get(addr, 0x00))
        return bytes(out)

    def _cmd_08(self, p: bytes) -> bytes:  # WriteRegister
        for i in range(0, len(p) - 2, 3):
            self.registers[(p[i] << 8) | p[i + 1]] = p[i + 2]
        return b"\x09"

    def _cmd_10(self, p: bytes) -> bytes:  # SetSerialBaudrate
        self.new_baud = BAUD_CODES.get(p[0], 115200)
        return b"\x11"

    def _cmd_12(self, p: bytes) -> bytes:  # SetParameters
        return b"\x13"

    def _cmd_14(self, p: bytes) -> bytes:  # SAMConfiguration
        return b"\x15"

    def _cmd_16(self, p: bytes) -> bytes:  # PowerDown
        return b"\x17\x00"

    def _cmd_32(self, p: bytes) -> bytes:  # RFConfiguration (items 02, 04, 0A-0D: analog settings, accepted)
        if p[0] == 0x01:
            self.rf_on = bool(p[1] & 0x01)
            if not self.rf_on:
                self.listed = False
                if self.tag:
                    self.tag.active = False  # no field, no power: the tag resets
        elif p[0] == 0x05:
            self.max_retries = (p[1], p[2], p[3])
        return b"\x33"

    def _cmd_4a(self, p: bytes):  # InListPassiveTarget
        if p[1] != 0x00:  # only 106 kbps type A
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
            return bytes([code, 0x27])
        answer = self._tag_command(cmd)
        if isinstance(answer, Nak) or answer == TAG_ACK:
            # a 4-bit ACK/NAK: InDataExchange knows MIFARE (ACK = done, NAK = error 14); raw with CRC
            # checking on, it is a CRC error; with it off (nfcpy) the host gets the 4 bits as one byte
            if through:
                if self.crc_checked:
                    return bytes([code, 0x02])
                return bytes([code, 0x00, answer.code if isinstance(answer, Nak) else answer[0]])
            return bytes([code, int(answer)]) if isinstance(answer, Nak) else bytes([code, 0x00])
        if isinstance(answer, int):
            return bytes([code, answer])
        if through and not self.crc_checked:
            answer += crc_a(answer)
        return bytes([code, 0x00]) + answer

    def _cmd_40(self, p: bytes) -> bytes:  # InDataExchange
        if p[0] != 0x01:
            return b"\x41\x27"
        return self._exchange(0x41, p[1:], through=False)

    def _cmd_42(self, p: bytes) -> bytes:  # InCommunicateThru
        return self._exchange(0x43, p, through=True)

    def _cmd_44(self, p: bytes) -> bytes:  # InDeselect: the tag is halted but stays listed for InSelect
        if self.tag and self.listed:
            self.tag.active = False
        return b"\x45\x00"

    def _cmd_52(self, p: bytes) -> bytes:  # InRelease
        self.listed = False
        if self.tag:
            self.tag.active = False  # HLTA
        return b"\x53\x00"

    def _cmd_54(self, p: bytes) -> bytes:  # InSelect: WUPA + select of the listed UID
        if not self.listed:
            return b"\x55\x27"
        if self.tag is None or self.tag.uid != self.listed_uid:
            return b"\x55\x01"  # nothing (or another tag) answers that UID
        self.tag.select()
        return b"\x55\x00"

    def wait_time(self, data: bytes) -> float:
        """Extra time the chip spends on a command beyond the wire: the tag executing it."""
        code = data[0] if data else 0
        if code in (0x40, 0x42) or (code == 0x4A and self.tag):
            return TAG_COMMAND_TIME
        return 0.0


@dataclass
class Faults:
    """Fault knobs for tests. Byte indexes count the emulator's whole outgoing stream from 0."""

    drop_byte: int | None = None  # index in the outgoing byte stream to drop
    corrupt_byte: int | None = None  # index in the outgoing byte stream to flip (XOR 0x5A)
    ack_delay: float = 0.0  # seconds before each ACK
    remove_after: int | None = None  # remove the tag after this many tag commands
    unplug_after: int | None = None  # unplug after this many frames from the host


class Pn532Emulator:
    """A PN532 on a pty. ``start()`` returns the pty path the host opens.

    Host frames with a bad checksum get a NACK (the real chip ignores them or NACKs depending on the
    firmware; a NACK makes a driver's resend path testable), frames with a wrong TFI or an unknown
    command get the application error frame, a host NACK gets the last response again.
    """

    def __init__(self, tag: str | os.PathLike[str] | EmulatedTag | None = None, baud: int | None = None,
                 firmware: str = "1.6", faults: Faults | None = None) -> None:
        self.core = Pn532Core(firmware)
        self.core.on_tag_command = self._on_tag_command
        self.baud = baud
        self.faults = faults or Faults()
        self.bytes_in = 0
        self.bytes_out = 0
        self.commands: Counter[int] = Counter()  # frames per command code
        self.command_bytes: dict[int, list[int]] = {}  # code -> [bytes in, bytes out] (ACK + response)
        self.frames_in = 0
        self.path = ""
        self.link_path: str | None = None
        self.placed_at: float | None = None
        self._lock = threading.RLock()
        self._wake_r, self._wake_w = os.pipe()
        self._master = self._slave = -1
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._decoder = FrameDecoder()
        self._last_response: bytes | None = None
        self._out_index = 0
        self._code: int | None = None  # the command whose answer is being sent
        self._rx_done = 0.0  # when the bytes received so far would have finished arriving at line speed
        self._retrying: tuple[float, bytes] | None = None  # (deadline, InListPassiveTarget data)
        if tag is not None:
            self.place(tag)

    # --- control (thread-safe) -------------------------------------------
    def start(self) -> str:
        self._open_pty()
        self._thread = threading.Thread(target=self._run, name="pn532-emulator", daemon=True)
        self._thread.start()
        return self.path

    def link(self, path: str | os.PathLike[str]) -> None:
        """Make ``path`` a symlink to the pty; replug() re-points it at the new pty."""
        self.link_path = os.fspath(path)
        self._relink()

    def place(self, tag: str | os.PathLike[str] | EmulatedTag) -> EmulatedTag:
        t = tag if isinstance(tag, EmulatedTag) else EmulatedTag.from_file(tag)
        with self._lock:
            self.core.place(t)
            self.placed_at = time.monotonic()
        self._wake()
        return t

    def remove(self) -> None:
        with self._lock:
            self.core.remove()
        self._wake()

    @property
    def tag(self) -> EmulatedTag | None:
        return self.core.tag

    def unplug(self) -> None:
        """The board leaves the USB bus: the pty closes, the host's reads fail (EIO / hangup)."""
        with self._lock:
            self._close_pty()
        self._wake()

    def replug(self) -> str:
        """The board comes back, power-cycled, as a new pty (the link follows); the tag stays."""
        with self._lock:
            if self._master < 0:
                self._open_pty()
                self.core = self._fresh_core()
        self._wake()
        return self.path

    def stop(self) -> None:
        self._stop.set()
        self._wake()
        if self._thread:
            self._thread.join(5)
        with self._lock:
            self._close_pty()
        for fd in (self._wake_r, self._wake_w):
            try:
                os.close(fd)
            except OSError:
                pass
        if self.link_path and os.path.islink(self.link_path):
            os.unlink(self.link_path)

    def stats(self) -> dict[str, object]:
        return {"bytes_in": self.bytes_in, "bytes_out": self.bytes_out, "frames_in": self.frames_in,
                "tag_commands": self.core.tag_commands,
                "commands": {f"{k:02X}": v for k, v in sorted(self.commands.items())},
                "command_bytes": {f"{k:02X}": {"in": v[0], "out": v[1]} for k, v in sorted(self.command_bytes.items())}}

    def reset_stats(self) -> None:
        self.bytes_in = self.bytes_out = self.frames_in = 0
        self.core.tag_commands = 0
        self.commands.clear()
        self.command_bytes.clear()

    # --- internals --------------------------------------------------------
    def _fresh_core(self) -> Pn532Core:
        """A power-cycled chip (replug) that keeps the tag on its antenna."""
        core = Pn532Core("1.6" if self.core.firmware == FIRMWARE["1.6"] else "1.4")
        core.on_tag_command = self._on_tag_command
        core.place(self.core.tag)
        self._retrying = None
        return core

    def _open_pty(self) -> None:
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)
        self.path = os.ttyname(self._slave)
        self._decoder.reset()
        self._relink()

    def _relink(self) -> None:
        if self.link_path and self.path:
            tmp = f"{self.link_path}.tmp{os.getpid()}"
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
            os.symlink(self.path, tmp)
            os.replace(tmp, self.link_path)

    def _close_pty(self) -> None:
        for fd in (self._master, self._slave):
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self._master = self._slave = -1
        self._retrying = None

    def _wake(self) -> None:
        try:
            os.write(self._wake_w, b"x")
        except OSError:
            pass

    def _on_tag_command(self) -> None:
        n = self.faults.remove_after
        if n is not None and self.core.tag_commands >= n and self.core.tag is not None:
            self.core.remove()

    def _byte_time(self) -> float:
        return 10.0 / self.baud if self.baud else 0.0

    def _send(self, data: bytes, not_before: float = 0.0) -> None:
        """Write bytes to the host, at line speed when paced; apply drop/corrupt faults.

        Paced bytes are written when the last of them would have left the chip's UART, so the host can
        never have a frame earlier than the wire allows."""
        out = bytearray()
        for b in data:
            i = self._out_index
            self._out_index += 1
            if self.faults.drop_byte is not None and i == self.faults.drop_byte:
                continue
            if self.faults.corrupt_byte is not None and i == self.faults.corrupt_byte:
                b ^= 0x5A
            out.append(b)
        done = max(time.monotonic(), not_before) + len(out) * self._byte_time()
        delay = done - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        if self._master < 0:
            return
        # count before writing: once the host has the bytes it may read the counters at once
        self.bytes_out += len(out)
        if self._code is not None:
            self.command_bytes.setdefault(self._code, [0, 0])[1] += len(out)
        try:
            os.write(self._master, bytes(out))
        except OSError:  # unplugged meanwhile: nothing went out
            self.bytes_out -= len(out)
            if self._code is not None:
                self.command_bytes[self._code][1] -= len(out)

    def _respond(self, data: bytes, not_before: float = 0.0) -> None:
        frame = encode_frame(TFI_CHIP, data)
        self._last_response = frame
        self._send(frame, not_before)

    def _run(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                master = self._master
                timeout = 0.5 if self._retrying is None else max(0.0, self._retrying[0] - time.monotonic())
            fds = [self._wake_r] + ([master] if master >= 0 else [])
            try:
                ready, _, _ = select.select(fds, [], [], timeout)
            except (OSError, ValueError):
                continue
            if self._wake_r in ready:
                try:
                    os.read(self._wake_r, 4096)
                except OSError:
                    pass
            with self._lock:
                self._answer_waiting_list()
            if master >= 0 and master in ready:
                try:
                    chunk = os.read(master, 4096)
                except OSError:
                    chunk = b""
                if not chunk:
                    time.sleep(0.01)
                    continue
                self.bytes_in += len(chunk)
                # the pty hands over a whole write at once; on a UART its last byte comes n byte-times later
                self._rx_done = max(self._rx_done, time.monotonic()) + len(chunk) * self._byte_time()
                with self._lock:
                    for item in self._decoder.feed(chunk):
                        self._on_item(item, self._rx_done)

    def _answer_waiting_list(self) -> None:
        """A tag placed while InListPassiveTarget waits (FF) or still retries (finite) is found."""
        response = self.core.complete_wait()
        if response is None and self._retrying is not None:
            deadline, data = self._retrying
            found = self.core.handle(data) if self.core.tag is not None else b"\x4b\x00"
            if found != b"\x4b\x00" or time.monotonic() >= deadline:
                response = found
        if response is not None:
            self._retrying = None
            self._code = 0x4A
            self._respond(response)

    def _on_item(self, item: object, arrived: float) -> None:
        self._code = None
        if isinstance(item, Ack):  # a host ACK aborts the running command (and confirms a baud change)
            self.core.abort()
            self._retrying = None
            if self.core.new_baud:
                self.baud = self.core.new_baud if self.baud else None
                self.core.new_baud = None
            return
        if isinstance(item, Nack):
            if self._last_response:
                self._send(self._last_response)
            return
        if isinstance(item, BadFrame):
            self._send(NACK)
            return
        if isinstance(item, ErrorFrame) or not isinstance(item, Frame):
            return
        if item.tfi != TFI_HOST or not item.data:
            self._send(ERROR_FRAME)
            return
        self.frames_in += 1
        self.commands[item.code] += 1
        self._code = item.code
        size = len(item.data) + (11 if item.extended else 8)
        self.command_bytes.setdefault(item.code, [0, 0])[0] += size
        if self.faults.unplug_after is not None and self.frames_in >= self.faults.unplug_after:
            self._close_pty()
            return
        self._send(ACK, arrived + self.faults.ack_delay)
        self.core.abort()  # a new command ends a waiting one
        self._retrying = None
        response = self.core.handle(item.data)
        if response is UNKNOWN:
            self._send(ERROR_FRAME)
            return
        if response is None:  # waiting for a tag (MaxRetries FF)
            return
        if item.code == 0x4A and response == b"\x4b\x00" and self.core.retry_time() > 0:
            self._retrying = (time.monotonic() + self.core.retry_time(), item.data)
            return
        self._respond(response, time.monotonic() + self.core.wait_time(item.data))
