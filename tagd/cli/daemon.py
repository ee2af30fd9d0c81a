"""`tagd run` (the daemon) and `tagd demo` (the daemon with an emulated PN532 and scripted taps)."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import threading
import time
from typing import Any, Callable


def register(sub: argparse._SubParsersAction) -> None:
    r = sub.add_parser("run", help="run the daemon")
    r.add_argument("--config", metavar="FILE", help="TOML config (default: ~/.config/tagd/config.toml)")
    r.add_argument("--listen", metavar="HOST:PORT", help="API address (overrides [api] listen)")
    r.add_argument("--reader", action="append", default=[], metavar="CONNECT", help="open this reader too")
    r.set_defaults(func=cmd_run)

    d = sub.add_parser("demo", help="the daemon with an emulated PN532 and scripted taps (no hardware)")
    d.add_argument("--port", type=_port, default=7497, help="API port on 127.0.0.1 (0 = any free port)")
    d.add_argument("--once", action="store_true", help="play the taps once, then exit")
    d.add_argument("--baud", type=int, default=115200, help="emulated UART speed (0 = unpaced)")
    d.add_argument("--script", metavar="TIMELINE", help="play this timeline (place/wait/remove lines) instead")
    d.set_defaults(func=cmd_demo)


def _port(text: str) -> int:
    """A TCP port 0-65535 in ASCII digits (argparse then says what is wrong and exits 2, not a traceback)."""
    if not (text.isascii() and text.isdigit()) or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"must be a port 0-65535, not {text!r}")
    return int(text)


def cmd_run(args: argparse.Namespace) -> int:
    from tagd.daemon.config import ConfigError, check_connect, default_config_path, load_config, parse_listen
    from tagd.daemon.service import Daemon
    from tagd.daemon.store import StoreError

    path = args.config or default_config_path()
    try:
        config = load_config(path, required=args.config is not None)  # a file the user names must exist
    except ConfigError as exc:
        print(f"tagd run: {exc}", file=sys.stderr)
        return 2
    if args.listen is not None:
        try:
            parse_listen(args.listen)
        except ValueError as exc:
            print(f"tagd run: --listen {args.listen!r}: {exc}", file=sys.stderr)
            return 2
    for connect in args.reader:
        try:
            check_connect(connect)
        except ValueError as exc:
            print(f"tagd run: --reader {connect!r}: {exc}", file=sys.stderr)
            return 2
    daemon = Daemon(config, path, extra_readers=args.reader, listen=args.listen)
    try:
        asyncio.run(daemon.run_until_signalled())
    except (StoreError, OSError) as exc:
        print(f"tagd run: {_start_error(daemon, args, path, exc)}", file=sys.stderr)
        return 2
    return 0


def _start_error(daemon: Any, args: argparse.Namespace, path: Any, exc: BaseException) -> str:
    """The error that stopped start-up; a failure to listen names the key or flag that gave the address."""
    api = getattr(daemon, "api", None)  # made just before it listens: a port still 0 means listening failed
    if isinstance(exc, OSError) and api is not None and not api.port:
        where = "--listen" if args.listen is not None else f"{path}: [api] listen"
        return f"{where}: cannot listen on {daemon.listen}: {exc.strerror or exc}"
    return str(exc)


# The demo's taps: fixture dumps when tagd runs from a checkout, else the same tags made in memory.
# (file name, kind, text, uid) — the UID a1b2c3d4 is mapped, to show a mapping at work.
DEMO_TAGS = (
    ("snes-ntag215.nfc", "ntag215", "**launch.system:snes", "04a1b2c3d4e5f6"),
    ("smw-ntag213.nfc", "ntag213", "@SNES/Super Mario World", "0416c6c2d73881"),
    ("genesis-classic1k.nfc", "classic1k", "**launch.random:genesis", "a1b2c3d4"),
)
DEMO_MAPPING = {"token_key": "", "match_pattern": "a1b2c3d4", "zapscript": "@Genesis/Sonic the Hedgehog"}
ON_SECONDS, OFF_SECONDS = 1.2, 0.6


def demo_timeline(tag_dir: str, loop: bool) -> str:
    """The scripted taps in tagd.sim.timeline's format: each tag placed, held, removed."""
    lines = ["# tagd demo: tap each tag in turn", f"wait {OFF_SECONDS}"]
    for name, *_ in DEMO_TAGS:
        lines += [f"place {os.path.join(tag_dir, name)}", f"wait {ON_SECONDS}", "remove", f"wait {OFF_SECONDS}"]
    if loop:
        lines.append("loop")
    return "\n".join(lines) + "\n"


def demo_tag_dir(workdir: str) -> str:
    """fixtures/ next to the package (a checkout), else the demo tags written to ``workdir`` (an installed wheel)."""
    import tagd

    fixtures = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(tagd.__file__))), "fixtures")
    if all(os.path.isfile(os.path.join(fixtures, name)) for name, *_ in DEMO_TAGS):
        return fixtures
    write_demo_tags(workdir)
    return workdir


def write_demo_tags(directory: str) -> None:
    """The demo tags as fresh dumps, written with the same plan a reader uses."""
    from tagd.cli.tags import make_dump
    from tagd.ndef.dumps import save
    from tagd.ndef.records import text_message

    for name, kind, text, uid in DEMO_TAGS:
        save(make_dump(kind, text_message(text), bytes.fromhex(uid)), os.path.join(directory, name))


class DemoHand:
    """Places and removes the tags on the emulated reader, saying what it does (stderr: stdout is the launches)."""

    def __init__(self, emulator: Any, say: Callable[[str], None]) -> None:
        self.emulator, self.say = emulator, say

    def place(self, path: str) -> None:
        try:
            tag = self.emulator.place(path)
        except (OSError, ValueError) as exc:  # a user's --script naming a missing or broken dump
            self.say(f"demo: cannot place {path}: {exc}")
            return
        self.say(f"demo: tap   {os.path.basename(path)} ({tag.dump.kind}, UID {tag.uid.hex()})")

    def remove(self) -> None:
        self.emulator.remove()
        self.say("demo: lift  the tag")

    def unplug(self) -> None:
        self.emulator.unplug()

    def replug(self) -> None:
        self.emulator.replug()


def cmd_demo(args: argparse.Namespace) -> int:
    import tempfile

    from tagd.sim import timeline
    from tagd.sim.pn532 import Pn532Emulator

    def say(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    with tempfile.TemporaryDirectory(prefix="tagd-demo-") as workdir:
        try:
            if args.script:
                steps = timeline.load(args.script)
            else:
                steps = timeline.parse(demo_timeline(demo_tag_dir(workdir), loop=not args.once), "<demo>")
        except (timeline.TimelineError, ValueError, OSError) as exc:
            print(f"tagd demo: {exc}", file=sys.stderr)
            return 2
        emu = Pn532Emulator(baud=args.baud or None)
        pty = emu.start()
        try:
            return _serve_demo(args, emu, pty, steps, workdir, say)
        finally:
            emu.stop()


def _serve_demo(args: argparse.Namespace, emu: Any, pty: str, steps: list[Any], workdir: str,
                say: Callable[[str], None]) -> int:
    from tagd.daemon.config import Config
    from tagd.daemon.service import Daemon
    from tagd.sim import timeline

    config = Config.model_validate({
        "readers": {"auto_detect": False},
        "core": [{"type": "stdout"}],
        "database": os.path.join(workdir, "tagd.db"),
        "mappings": {"entry": [DEMO_MAPPING]},
        "api": {"listen": f"127.0.0.1:{args.port}"},
    })
    daemon = Daemon(config, os.path.join(workdir, "config.toml"), extra_readers=[f"pn532uart:{pty}"])
    stop = threading.Event()
    started = time.monotonic()

    async def main() -> None:
        import signal

        await daemon.start()
        port = daemon.api.port
        say(f"tagd demo: an emulated PN532 on {pty}; each launch is printed on stdout as one JSON line")
        say(f"tagd demo: the card with UID a1b2c3d4 is mapped to {DEMO_MAPPING['zapscript']!r}")
        say(f"tagd demo: API on ws://127.0.0.1:{port}/api — e.g. curl -s http://127.0.0.1:{port}/api "
            "-d '{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tokens.history\"}'")
        say("tagd demo: " + ("playing the taps once" if args.once else "looping the taps; Ctrl-C stops"))
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        player = threading.Thread(target=timeline.run, args=(steps, DemoHand(emu, say), stop), daemon=True)
        player.start()
        while not stop.is_set() and player.is_alive():
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.3)  # let the last removal reach the pipeline
        entries = daemon.store.history(100)
        ok = sum(e.success for e in entries)
        say(f"tagd demo: {ok} of {len(entries)} launch(es) went through, in {time.monotonic() - started:.1f} s")
        stop.set()
        await daemon.stop()

    try:
        asyncio.run(main())
    except OSError as exc:
        print(f"tagd demo: {exc} (is port {args.port} in use? try --port 0)", file=sys.stderr)
        return 2
    return 0
