"""`tagd sim …`: virtual hardware for development with no reader.

`tagd sim pn532` prints the pty path (or the --link path) on its first stdout line, then takes commands
on stdin: `place FILE`, `remove`, `unplug`, `replug`, `stats`, `quit`. It stops on `quit`, SIGTERM or
SIGINT (not at the end of stdin, so it can run as a background job) and prints its byte counts on
stderr: one line for people, one JSON line for scripts. Other simulators add themselves with
:func:`add_simulator` (``tagd sim acr122`` does).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from typing import Any, Callable

_extra: list[Callable[[argparse._SubParsersAction], None]] = []
STDIN_HELP = "place FILE, remove, unplug, replug, stats, quit"


def add_simulator(register_fn: Callable[[argparse._SubParsersAction], None]) -> None:
    """Let another module (e.g. tagd.sim.acr122) add a `tagd sim <name>` subcommand."""
    _extra.append(register_fn)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sim", help="emulated readers (no hardware needed)")
    simsub = p.add_subparsers(dest="sim_command", metavar="DEVICE", required=True)
    pn = simsub.add_parser("pn532", help="a PN532 on a pty",
                           description=f"A PN532 on a pty. Stdin commands: {STDIN_HELP}.")
    pn.add_argument("--tag", help="dump file of the tag on the antenna at start (any format tagd reads)")
    pn.add_argument("--link", help="make this path a symlink to the pty (kept across unplug/replug)")
    pn.add_argument("--baud", type=int, help="pace both directions at this line speed (e.g. 115200)")
    pn.add_argument("--firmware", choices=("1.6", "1.4"), default="1.6")
    pn.add_argument("--script", help="timeline file to play (place/wait/remove/unplug/replug/loop)")
    pn.add_argument("--save", help="on exit, write the (possibly written) tag to this file (format from its extension)")
    faults = pn.add_argument_group("fault knobs (for tests)")
    faults.add_argument("--remove-after", type=int, metavar="N", help="remove the tag after N tag commands")
    faults.add_argument("--ack-delay", type=float, default=0.0, metavar="S", help="delay every ACK by S seconds")
    faults.add_argument("--drop-byte", type=int, metavar="I", help="drop byte I of the outgoing stream (from 0)")
    faults.add_argument("--corrupt-byte", type=int, metavar="I", help="flip byte I of the outgoing stream (from 0)")
    faults.add_argument("--unplug-after", type=int, metavar="N", help="unplug after N frames from the host")
    pn.set_defaults(func=cmd_pn532)
    try:
        import tagd.sim.acr122  # noqa: F401  (registers `tagd sim acr122` when present)
    except ImportError:
        pass
    for fn in _extra:
        fn(simsub)


def serve_stdin(emulator: Any, stop: threading.Event) -> None:
    """Read control commands from stdin until EOF/quit; answer `ok CMD` or an error on stderr."""
    for line in sys.stdin:
        cmd, _, arg = line.strip().partition(" ")
        try:
            if cmd == "place" and arg:
                emulator.place(arg.strip())
            elif cmd in ("remove", "unplug", "replug"):
                getattr(emulator, cmd)()
            elif cmd == "stats":
                print(json.dumps(emulator.stats()), flush=True)
            elif cmd in ("quit", "exit"):
                stop.set()
                return
            elif cmd:
                print(f"unknown command {cmd!r} ({STDIN_HELP})", file=sys.stderr, flush=True)
                continue
            else:
                continue
            print(f"ok {cmd}", flush=True)
        except Exception as exc:  # noqa: BLE001 - a bad dump file must not end the emulator
            print(f"error: {cmd}: {exc}", file=sys.stderr, flush=True)
    # end of input (e.g. started in the background): keep emulating until a signal or `quit`


def print_stats(name: str, stats: dict[str, Any]) -> None:
    print(f"tagd sim {name}: {stats['bytes_in']} bytes in, {stats['bytes_out']} bytes out, "
          f"{stats['frames_in']} commands, {stats['tag_commands']} tag commands", file=sys.stderr)
    print(json.dumps(stats), file=sys.stderr, flush=True)


def cmd_pn532(args: argparse.Namespace) -> int:
    from tagd.ndef.dumps import DumpError, save
    from tagd.sim import timeline
    from tagd.sim.pn532 import Faults, Pn532Emulator

    faults = Faults(remove_after=args.remove_after, ack_delay=args.ack_delay, drop_byte=args.drop_byte,
                    corrupt_byte=args.corrupt_byte, unplug_after=args.unplug_after)
    try:
        emu = Pn532Emulator(args.tag, baud=args.baud, firmware=args.firmware, faults=faults)
        steps = timeline.load(args.script) if args.script else None
    except (DumpError, timeline.TimelineError) as exc:
        print(f"tagd sim pn532: {exc}", file=sys.stderr)
        return 2
    path = emu.start()
    if args.link:
        try:
            emu.link(args.link)
        except OSError as exc:
            print(f"tagd sim pn532: --link {args.link}: {exc.strerror or exc}", file=sys.stderr)
            emu.stop()
            return 2
    print(args.link or path, flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())

    def report(step: timeline.Step, exc: Exception) -> None:
        print(f"tagd sim pn532: {args.script}: line {step.line}: {exc}", file=sys.stderr, flush=True)

    if steps is not None:
        threading.Thread(target=timeline.run, args=(steps, emu, stop, report), daemon=True).start()
    threading.Thread(target=serve_stdin, args=(emu, stop), daemon=True).start()
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    tag = emu.tag
    emu.stop()
    status = 0
    if args.save and tag is not None:
        try:
            save(tag.snapshot(), args.save)
        except (OSError, ValueError) as exc:
            print(f"tagd sim pn532: --save {args.save}: {exc}", file=sys.stderr)
            status = 1
    print_stats("pn532", emu.stats())
    return status
