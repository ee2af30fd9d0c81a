"""The PN532's host interface, sans-I/O: bytes from the host in, bytes to send (and when) out.

:class:`Pn532Link` decodes the host's frames with the driver's own codec, ACKs them, runs them on a
:class:`~tagd.sim.pn532_core.Pn532Core` and returns :class:`Outgoing` chunks with the earliest time
each may start leaving the chip. It keeps what the UART side of a chip keeps: the last response (for
a host NACK), a command still running (a waiting or retrying InListPassiveTarget, which a host ACK
aborts), the baud rate (a SetSerialBaudrate applies after the host's ACK), byte and frame counts,
and the fault knobs. The pty emulator (:mod:`tagd.sim.pn532`) and the in-memory transport
(:mod:`tagd.sim.memory`) are two thin shells over it, so both behave identically.

ACK and NACK from the host (UM0701-02 §6.2.1.3–6.2.1.5): an ACK while a command runs aborts it — no
response is ever sent for it. A NACK asks for the last response frame again; while a command is still
running (an InListPassiveTarget waiting for a tag) the chip has no response for it yet, so a NACK
repeats nothing — in particular not the previous command's answer, which would show a tag that has
left as a "ghost" — and the command goes on and answers once, when it completes.

Timing: a command is complete when its bytes would have arrived at the line speed (10 bit times a
byte); the ACK leaves then (plus ``ack_delay``), the response after the chip's own time for the
command (:meth:`Pn532Core.wait_time`); a finite MaxRetries list with no tag answers after its tries
(:meth:`Pn532Core.retry_time`) and takes a tag placed meanwhile. Without ``baud`` no wire time applies.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from tagd.readers.pn532.commands import Command
from tagd.readers.pn532.frames import ACK, ERROR_FRAME, NACK, TFI_CHIP, TFI_HOST, Ack, BadFrame, ErrorFrame, \
    Frame, FrameDecoder, Nack, encode_frame
from tagd.sim.pn532_core import UNKNOWN, Pn532Core

NOT_FOUND = bytes([Command.IN_LIST_PASSIVE_TARGET.response, 0x00])


@dataclass
class Faults:
    """Fault knobs for tests. Byte indexes count the emulator's whole outgoing stream from 0."""

    drop_byte: int | None = None  # index in the outgoing byte stream to drop
    corrupt_byte: int | None = None  # index in the outgoing byte stream to flip (XOR 0x5A)
    ack_delay: float = 0.0  # seconds before each ACK
    late_ack_every: int | None = None  # every Nth command's ACK leaves 0.15 s late: a chip the host starved
    remove_after: int | None = None  # remove the tag after this many tag commands
    unplug_after: int | None = None  # unplug once, at the Nth frame from the host


LATE_ACK = 0.15  # past the driver's 100 ms ACK timeout


@dataclass(frozen=True)
class Outgoing:
    """Bytes for the host: they start leaving at ``not_before`` or ``delay`` after the previous chunk,
    whichever is later. ``code`` is the command they answer (per-command byte counts)."""

    data: bytes
    not_before: float = 0.0
    delay: float = 0.0
    code: int | None = None


class Pn532Link:
    def __init__(self, core: Pn532Core | None = None, faults: Faults | None = None, baud: int | None = None) -> None:
        self.core = core or Pn532Core()
        self.faults = faults or Faults()
        self.baud = baud
        self.decoder = FrameDecoder()
        self.bytes_in = self.bytes_out = self.frames_in = 0
        self.commands: Counter[int] = Counter()  # frames per command code
        self.command_bytes: dict[int, list[int]] = {}  # code -> [bytes in, bytes out] (ACK + response)
        self.hang_up = False  # the unplug fault fired: the shell closes its end
        self._unplugged = False  # ... once: a replugged board works
        self._last_response: bytes | None = None
        self._out_index = 0
        self._rx_done = 0.0  # when the bytes received so far would have finished arriving at line speed
        self._retrying: tuple[float, bytes] | None = None  # (deadline, InListPassiveTarget data)
        self.core.on_tag_command = self._on_tag_command

    # --- state the shells use ----------------------------------------------
    def byte_time(self) -> float:
        return 10.0 / self.baud if self.baud else 0.0

    def next_due(self) -> float | None:
        """When :meth:`due` must be called next without new input (a finite list's last try)."""
        return self._retrying[0] if self._retrying else None

    def power_cycle(self, core: Pn532Core) -> None:
        """The board was replugged: a fresh chip (keeping the tag), nothing in flight."""
        core.on_tag_command = self._on_tag_command
        core.place(self.core.tag)
        self.core = core
        self.drop_in_flight()

    def drop_in_flight(self) -> None:
        """The line went down: half-received frames, a running command and the last response are gone."""
        self.decoder.reset()
        self._retrying = None
        self._last_response = None

    def count_out(self, n: int, code: int | None) -> None:
        """The shell wrote ``n`` bytes (negative: a write it had counted failed)."""
        self.bytes_out += n
        if code is not None:
            self.command_bytes.setdefault(code, [0, 0])[1] += n

    def reset_stats(self) -> None:
        self.bytes_in = self.bytes_out = self.frames_in = 0
        self.core.tag_commands = 0
        self.commands.clear()
        self.command_bytes.clear()

    def stats(self) -> dict[str, object]:
        return {"bytes_in": self.bytes_in, "bytes_out": self.bytes_out, "frames_in": self.frames_in,
                "tag_commands": self.core.tag_commands,
                "commands": {f"{k:02X}": v for k, v in sorted(self.commands.items())},
                "command_bytes": {f"{k:02X}": {"in": v[0], "out": v[1]} for k, v in sorted(self.command_bytes.items())}}

    # --- input ----------------------------------------------------------------
    def receive(self, data: bytes, now: float) -> list[Outgoing]:
        """Bytes from the host (a pty hands over a whole write at once; on a UART its last byte comes
        n byte-times later, so the frames in it are complete then)."""
        self.bytes_in += len(data)
        self._rx_done = max(self._rx_done, now) + len(data) * self.byte_time()
        out: list[Outgoing] = []
        for item in self.decoder.feed(data):
            out += self._on_item(item, self._rx_done, now)
            if self.hang_up:
                break
        return out

    def due(self, now: float) -> list[Outgoing]:
        """A tag placed while InListPassiveTarget waits (FF) or still retries (finite) is found; a
        finite list whose tries ran out answers "none"."""
        response = self.core.complete_wait()
        if response is None and self._retrying is not None:
            deadline, data = self._retrying
            found = self.core.handle(data) if self.core.tag is not None else NOT_FOUND
            if found != NOT_FOUND or now >= deadline:
                response = found
        if response is None:
            return []
        self._retrying = None
        delay = self.core.rf_time if response != NOT_FOUND else 0.0  # the activation of the tag found
        return [self._respond(response, Command.IN_LIST_PASSIVE_TARGET, delay=delay)]

    # --- internals ------------------------------------------------------------
    def _on_tag_command(self) -> None:
        n = self.faults.remove_after
        if n is not None and self.core.tag_commands >= n and self.core.tag is not None:
            self.core.remove()

    def _out(self, data: bytes, code: int | None, not_before: float = 0.0, delay: float = 0.0) -> Outgoing:
        """Bytes to send, with the drop/corrupt faults applied by their index in the outgoing stream."""
        kept = bytearray()
        for b in data:
            i = self._out_index
            self._out_index += 1
            if i == self.faults.drop_byte:
                continue
            if i == self.faults.corrupt_byte:
                b ^= 0x5A
            kept.append(b)
        return Outgoing(bytes(kept), not_before, delay, code)

    def _respond(self, data: bytes, code: int | None, delay: float = 0.0) -> Outgoing:
        frame = encode_frame(TFI_CHIP, data)
        self._last_response = frame
        return self._out(frame, code, delay=delay)

    def _abort(self) -> None:
        self.core.abort()
        self._retrying = None

    def _on_item(self, item: object, arrived: float, now: float) -> list[Outgoing]:
        if isinstance(item, Ack):  # a host ACK aborts the running command (and confirms a baud change)
            self._abort()  # no response will come for it, and none is left to repeat
            self._last_response = None
            if self.core.new_baud:
                self.baud = self.core.new_baud if self.baud else None
                self.core.new_baud = None
            return []
        if isinstance(item, Nack):
            return [self._out(self._last_response, None)] if self._last_response else []
        if isinstance(item, BadFrame):
            return [self._out(NACK, None)]
        if isinstance(item, ErrorFrame) or not isinstance(item, Frame):
            return []
        if item.tfi != TFI_HOST or not item.data:
            return [self._out(ERROR_FRAME, None)]
        self.frames_in += 1
        self.commands[item.code] += 1
        size = len(item.data) + (11 if item.extended else 8)
        self.command_bytes.setdefault(item.code, [0, 0])[0] += size
        n = self.faults.unplug_after
        if n is not None and not self._unplugged and self.frames_in >= n:
            self._unplugged = self.hang_up = True
            return []
        late = self.faults.late_ack_every
        delay = self.faults.ack_delay + (LATE_ACK if late and self.frames_in % late == 0 else 0.0)
        out = [self._out(ACK, item.code, not_before=arrived + delay)]
        self._abort()  # a new command ends a waiting one
        self._last_response = None  # until this command answers, a NACK has nothing to repeat (no ghost)
        response = self.core.handle(item.data)
        if response is UNKNOWN:
            return out + [self._out(ERROR_FRAME, item.code)]
        if response is None:  # waiting for a tag (MaxRetries FF)
            return out
        if item.code == Command.IN_LIST_PASSIVE_TARGET and response == NOT_FOUND and self.core.retry_time() > 0:
            self._retrying = (now + self.core.retry_time(), item.data)
            return out
        return out + [self._respond(response, item.code, delay=self.core.wait_time(item.data))]
