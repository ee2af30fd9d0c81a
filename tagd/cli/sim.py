"""`tagd sim …`: virtual hardware for development with no reader.

`tagd sim pn532` prints the pty path on its first line, then takes commands on stdin:
`place FILE`, `remove`, `unplug`, `replug`, `stats`, `quit`. Other simulators add themselves with
:func:`add_simulator`.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from typing import Callable

_extra: list[Callable[[argparse._SubParsersAction], None]] = []


def add_simulator(register_fn: Callable[[argparse._SubParsersAction], None]) -> None:
    """Let another module (e.g. tagd.sim.acr122) add a `tagd sim <name>` subcommand."""
    _extra.append(register_fn)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sim", help="emulated readers (no hardware needed)")
    simsub = p.add_subparsers(dest="sim_command", metavar="DEVICE", required=True)
    pn = simsub.add_parser("pn532", help="a PN532 on a pty")
    pn.add_argument("--tag", help="dump file of the tag on the antenna at start")
    pn.add_argument("--link", help="make this path a symlink to the pty (kept across unplug/replug)")
    pn.add_argument("--baud", type=int, help="pace both directions at this line speed (e.g. 115200)")
    pn.add_argument("--firmware", choices=("1.6", "1.4"), default="1.6")
    pn.add_argument("--script", help="timeline file to play (place/wait/remove/unplug/replug)")
    pn.add_argument("--save", help="on exit, write the (possibly written) tag to this file")
    pn.add_argument("--remove-after", type=int, help="fault: remove the tag after N tag commands")
    pn.add_argument("--ack-delay", type=float, default=0.0, help="fault: delay every ACK by S seconds")
    pn.set_defaults(func=cmd_pn532)
    try:
        import tagd.sim.acr122  # noqa: F401  (registers `tagd sim acr122` when present)
    except ImportError:
        pass
    for fn in _extra:
        fn(simsub)


def serve_stdin(emulator, stop: threading.Event) -> None:
    """Read control commands from stdin until EOF/quit."""
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
                print(f"unknown command {cmd!r} (place FILE, remove, unplug, replug, stats, quit)", file=sys.stderr)
                continue
            print(f"ok {cmd}", flush=True)
        except Exception as exc:  # a bad dump file must not end the emulator
            print(f"error: {exc}", file=sys.stderr, flush=True)
    # end of input (e.g. started in the background): keep emulating until a signal or `quit`


def cmd_pn532(args: argparse.Namespace) -> int:
    from tagd.ndef.dumps import DumpError, save
    from tagd.sim import timeline
    from tagd.sim.pn532 import Faults, Pn532Emulator

    faults = Faults(remove_after=args.remove_after, ack_delay=args.ack_delay)
    try:
        emu = Pn532Emulator(args.tag, baud=args.baud, firmware=args.firmware, faults=faults)
        steps = timeline.load(args.script) if args.script else None
    except (DumpError, timeline.TimelineError) as exc:
        print(f"tagd sim pn532: {exc}", file=sys.stderr)
        return 2
    path = emu.start()
    if args.link:
        emu.link(args.link)
    print(args.link or path, flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    if steps is not None:
        threading.Thread(target=timeline.run, args=(steps, emu, stop), daemon=True).start()
    threading.Thread(target=serve_stdin, args=(emu, stop), daemon=True).start()
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    tag = emu.tag
    emu.stop()
    if args.save and tag is not None:
        save(tag.snapshot(), args.save)
    print(json.dumps(emu.stats()), file=sys.stderr)
    return 0
