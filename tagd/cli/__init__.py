"""`tagd …` — the command line. Each module in this package adds its own subcommands.

Command modules keep heavy imports inside their handlers so that `tagd --help` and
the daemon start fast.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

from tagd import __version__

if TYPE_CHECKING:
    import argparse

# Every module here defines register(subparsers); each subcommand sets func=handler(args) -> int.
COMMAND_MODULES = (
    "tagd.cli.tags",  # decode, fixture
    "tagd.cli.readers",  # readers, scan, write, dump
    "tagd.cli.sim",  # sim pn532 | acr122
    "tagd.cli.daemon",  # run, demo
    "tagd.cli.system",  # doctor, install-udev
    "tagd.cli.services",  # link, unlink, sessions, romm
    "tagd.cli.decks",  # deck write, deck labels
    "tagd.cli.clients",  # pair, clients
)


# Which module serves each subcommand, so that `tagd run` does not import the simulators and the rest.
COMMANDS = {
    "decode": "tagd.cli.tags", "fixture": "tagd.cli.tags",
    "readers": "tagd.cli.readers", "scan": "tagd.cli.readers", "write": "tagd.cli.readers", "dump": "tagd.cli.readers",
    "sim": "tagd.cli.sim", "run": "tagd.cli.daemon", "demo": "tagd.cli.daemon",
    "doctor": "tagd.cli.system", "install-udev": "tagd.cli.system",
    "link": "tagd.cli.services", "unlink": "tagd.cli.services", "sessions": "tagd.cli.services",
    "romm": "tagd.cli.services", "deck": "tagd.cli.decks",
    "pair": "tagd.cli.clients", "clients": "tagd.cli.clients",
}


SYSTEM_MALLOC = {"PYTHONMALLOC": "malloc", "MALLOC_ARENA_MAX": "1"}
OWN_MALLOC_ENV = "TAGD_MALLOC_ENV"  # names the variables above that tagd set for itself, so children do not get them


def exec_with_system_malloc() -> None:
    """Start this process again (same pid, same command line) with Python's small objects on glibc's malloc.

    Python's own allocator hands back memory a whole 1 MiB arena at a time, and an arena goes back only once every
    object in it is gone. After a burst (1000 WebSocket clients come and go) a few hundred long-lived objects made
    meanwhile — caches, free lists, a thread — sit one or two to an arena and keep ~12 MB mapped for good. glibc's
    malloc gives back any free 4 KiB page (malloc_trim, see tagd.daemon.heap), so the same burst leaves almost
    nothing (with the give-backs of tagd.daemon.heap, bench/stress.py's RSS 5 s after the hostile cases went from 62
    to 47 MB). One malloc arena: with the GIL, threads seldom allocate at once, and each arena more holds memory of
    its own (idle RSS 0.3 MB lower than with two).

    Nothing is done where PYTHONMALLOC is already set (``PYTHONMALLOC=pymalloc tagd run`` keeps Python's allocator),
    where Python ignores it (``-E``, ``-I``), off glibc, or when the command line is not known; if the exec fails,
    tagd goes on as it is. The variables tagd sets are named in TAGD_MALLOC_ENV, and :func:`forget_own_malloc_env`
    takes them out again, so hooks and command cores start with the user's environment."""
    if ("PYTHONMALLOC" in os.environ or sys.flags.ignore_environment or not sys.platform.startswith("linux")
            or not getattr(sys, "orig_argv", None)):
        return
    try:
        if not os.confstr("CS_GNU_LIBC_VERSION"):
            return
    except (ValueError, OSError):
        return
    added = [name for name in SYSTEM_MALLOC if name not in os.environ]  # a MALLOC_ARENA_MAX of the user's wins
    env = {**os.environ, **{name: SYSTEM_MALLOC[name] for name in added}, OWN_MALLOC_ENV: ",".join(added)}
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execve(sys.executable, sys.orig_argv, env)
    except OSError:
        return


def forget_own_malloc_env() -> None:
    """Take the allocator variables tagd set for itself (TAGD_MALLOC_ENV) out of the environment children get."""
    for name in os.environ.pop(OWN_MALLOC_ENV, "").split(","):
        if name in SYSTEM_MALLOC:
            os.environ.pop(name, None)


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    import argparse
    import importlib

    parser = argparse.ArgumentParser(prog="tagd", description="NFC reader driver and token daemon")
    parser.add_argument("--version", action="version", version=f"tagd {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv for debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    first = next((a for a in (argv or []) if not a.startswith("-")), None)
    wanted = [COMMANDS[first]] if first in COMMANDS else list(COMMAND_MODULES)
    for name in wanted:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    if argv is None and next((a for a in sys.argv[1:] if not a.startswith("-")), None) == "run":
        exec_with_system_malloc()  # the process's own `tagd run` (not a caller's list), before the command modules load
        forget_own_malloc_env()
    import logging  # argparse and logging load after the exec above, not twice

    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=(logging.WARNING, logging.INFO, logging.DEBUG)[min(args.verbose, 2)],
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
