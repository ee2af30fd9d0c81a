"""`tagd run` (the daemon) and `tagd demo` (the daemon with an emulated PN532 and scripted taps)."""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import threading
import time


def register(sub: argparse._SubParsersAction) -> None:
    r = sub.add_parser("run", help="run the daemon")
    r.add_argument("--config", metavar="FILE", help="TOML config (default: ~/.config/tagd/config.toml)")
    r.add_argument("--listen", metavar="HOST:PORT", help="API address (overrides [api] listen)")
    r.add_argument("--reader", action="append", default=[], metavar="CONNECT", help="open this reader too")
    r.set_defaults(func=cmd_run)

    d = sub.add_parser("demo", help="the daemon with an emulated PN532 and scripted taps (no hardware)")
    d.add_argument("--port", type=int, default=7497, help="API port on 127.0.0.1 (0 = any free port)")
    d.add_argument("--once", action="store_true", help="play the taps once, then exit")
    d.add_argument("--baud", type=int, default=115200, help="emulated UART speed (0 = unpaced)")
    d.set_defaults(func=cmd_demo)


def cmd_run(args: argparse.Namespace) -> int:
    from tagd.daemon.config import ConfigError, default_config_path, load_config
    from tagd.daemon.service import Daemon
    from tagd.daemon.store import StoreError

    path = args.config or default_config_path()
    try:
        config = load_config(path)
    except ConfigError as exc:
        print(f"tagd run: {exc}", file=sys.stderr)
        return 2
    daemon = Daemon(config, path, extra_readers=args.reader, listen=args.listen)
    try:
        asyncio.run(daemon.run_until_signalled())
    except (StoreError, OSError) as exc:
        print(f"tagd run: {exc}", file=sys.stderr)
        return 2
    return 0


DEMO_TAGS = (
    ("ntag215", "**launch.system:snes", "04a1b2c3d4e5f6"),
    ("ntag213", "@SNES/Super Mario World", "0416c6c2d73881"),
    ("classic1k", "**launch.random:genesis", "a1b2c3d4"),
)


def _demo_taps(emu, tags, stop: threading.Event, once: bool, say) -> None:
    stop.wait(1.0)
    while not stop.is_set():
        for tag, label in tags:
            if stop.is_set():
                return
            say(f"demo: placing a {label} on the reader")
            emu.place(tag)
            stop.wait(1.5)
            say("demo: removing it")
            emu.remove()
            stop.wait(1.0)
        if once:
            stop.set()


def cmd_demo(args: argparse.Namespace) -> int:
    from tagd.cli.tags import make_dump
    from tagd.daemon.config import Config
    from tagd.daemon.service import Daemon
    from tagd.ndef.records import text_message
    from tagd.sim.pn532 import Pn532Emulator
    from tagd.sim.tags import EmulatedTag

    def say(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    tags = [(EmulatedTag(make_dump(kind, text_message(text), bytes.fromhex(uid))), f"{kind} holding {text!r}")
            for kind, text, uid in DEMO_TAGS]
    emu = Pn532Emulator(baud=args.baud or None)
    pty = emu.start()
    workdir = tempfile.mkdtemp(prefix="tagd-demo-")
    config = Config.model_validate({
        "readers": {"auto_detect": False},
        "core": [{"type": "stdout"}],
        "database": f"{workdir}/tagd.db",
        "mappings": {"entry": [{"token_key": "", "match_pattern": "a1b2c3d4",
                                "zapscript": "@Genesis/Sonic the Hedgehog"}]},
        "api": {"listen": f"127.0.0.1:{args.port}"},
    })
    say(f"tagd demo: emulated PN532 on {pty} ({args.baud or 'unpaced'} baud), launches go to stdout as JSON")
    say("tagd demo: the Classic card's UID a1b2c3d4 is mapped to '@Genesis/Sonic the Hedgehog'")
    daemon = Daemon(config, f"{workdir}/config.toml", extra_readers=[f"pn532uart:{pty}"])
    stop = threading.Event()

    async def main() -> None:
        import signal

        await daemon.start()
        say(f"tagd demo: API at ws://127.0.0.1:{daemon.api.port}/api/v0.1 — try: "
            f"curl -s -d '{{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tokens.history\"}}' "
            f"http://127.0.0.1:{daemon.api.port}/api")
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        threading.Thread(target=_demo_taps, args=(emu, tags, stop, args.once, say), daemon=True).start()
        while not stop.is_set():
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.2)
        entries = daemon.store.history(10)
        say(f"tagd demo: {sum(e.success for e in entries)} launch(es) recorded in {workdir}/tagd.db")
        await daemon.stop()

    started = time.monotonic()
    try:
        asyncio.run(main())
    except OSError as exc:
        print(f"tagd demo: {exc} (is port {args.port} in use? try --port 0)", file=sys.stderr)
        return 2
    finally:
        emu.stop()
    say(f"tagd demo: done after {time.monotonic() - started:.1f} s")
    return 0
