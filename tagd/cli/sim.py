"""`tagd sim …`: virtual hardware for development with no reader.

`tagd sim pn532` prints the pty path (or the --link path) on its first stdout line, then takes commands
on stdin (:mod:`tagd.sim.control`): `place FILE`, `remove`, `unplug`, `replug`, `stats`, `quit`. It
stops on `quit`, SIGTERM or SIGINT (not at the end of stdin, so it can run as a background job) and
prints its byte counts on stderr: one line for people, one JSON line for scripts. `tagd sim acr122`
inserts a virtual card into vpcd (pcscd's virtual reader). The simulators are library code in
``tagd.sim``; only this module knows about the command line.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from typing import Any

from tagd.sim.control import STDIN_HELP, serve_in_background


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
    faults.add_argument("--unplug-after", type=int, metavar="N", help="unplug once, at the Nth frame from the host (replug works)")
    pn.set_defaults(func=cmd_pn532)
    acr = simsub.add_parser("acr122", help="a virtual ACR122U card for vpcd (pcscd's virtual reader)")
    acr.add_argument("--tag", required=True, help="dump file of the card to insert")
    acr.add_argument("--port", type=int, default=35963, help="vpcd's port (see /etc/reader.conf.d/vpcd)")
    acr.add_argument("--script", help="timeline file to play (place FILE / wait S / remove / loop)")
    acr.add_argument("--save", help="on exit, write the (possibly written) tag to this file")
    acr.set_defaults(func=cmd_acr122)


def run_until_stopped(sim: Any, steps: list | None, label: str) -> None:
    """Play the timeline (if any) and serve stdin until `quit`, SIGTERM or SIGINT; timeline errors are
    printed with ``label`` and the step's line, and the simulator stays up."""
    from tagd.sim import timeline

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())

    def report(step: timeline.Step, exc: Exception) -> None:
        print(f"{label}: line {step.line}: {exc}", file=sys.stderr, flush=True)

    if steps is not None:
        threading.Thread(target=timeline.run, args=(steps, sim, stop, report), daemon=True).start()
    serve_in_background(sim, stop)
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass


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
    run_until_stopped(emu, steps, f"tagd sim pn532: {args.script}")
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


def cmd_acr122(args: argparse.Namespace) -> int:
    """Insert the card, then follow the timeline and/or stdin (`place FILE`, `remove`, `quit`) until quit or
    SIGTERM; stdin reaching its end (a background job) does not stop the card."""
    from tagd.ndef.dumps import DumpError, save
    from tagd.sim import timeline
    from tagd.sim.acr122 import VirtualAcr122

    try:
        steps = timeline.load(args.script) if args.script else None
    except timeline.TimelineError as exc:
        print(f"tagd sim acr122: {exc}", file=sys.stderr)
        return 2
    if steps and any(step.command in ("unplug", "replug") for step in steps):
        print("tagd sim acr122: vpcd's reader cannot be unplugged; use place/remove/wait/loop", file=sys.stderr)
        return 2
    sim = VirtualAcr122(args.port)
    try:
        sim.place(args.tag)
    except (DumpError, OSError) as exc:
        print(f"tagd sim acr122: {exc} (is pcscd running with vsmartcard-vpcd on port {args.port}?)", file=sys.stderr)
        return 2
    print(f"card inserted into vpcd at 127.0.0.1:{args.port}; stdin: place FILE, remove, quit", flush=True)
    run_until_stopped(sim, steps, "timeline")
    tag = sim.tag or sim.last_tag
    sim.remove()
    if args.save and tag is not None:
        save(tag.snapshot(), args.save)
    print(json.dumps({"apdus": sim.apdus}), file=sys.stderr)
    return 0
