"""Scripted taps: a timeline file places and removes tags with delays, for demos, tests and replay.

    # comments and blank lines are ignored
    place snes.nfc        # a dump file (any format), relative to the timeline's folder
    wait 1.5              # seconds
    remove
    unplug / replug       # the reader disappears / comes back (emulators only)
    loop                  # start again from the top (last line only)

Parsing is sans-I/O (:func:`parse`); :func:`load` reads a file and checks that every placed dump exists,
so a typo is reported with its line before anything runs; :func:`run` drives any object with
place/remove/unplug/replug (the PN532 and ACR122 emulators, the replay reader).
A ``#`` starts a comment anywhere on a line, so dump file names cannot contain one.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from typing import Any, Callable

log = logging.getLogger(__name__)
COMMANDS = {"place": 1, "remove": 0, "wait": 1, "unplug": 0, "replug": 0, "loop": 0}


class TimelineError(ValueError):
    def __init__(self, path: str, line: int, reason: str) -> None:
        super().__init__(f"{path}: line {line}: {reason}")
        self.path, self.line, self.reason = path, line, reason


@dataclass(frozen=True)
class Step:
    line: int
    command: str
    arg: str | float | None = None


def parse(text: str, path: str = "<timeline>", base: str | None = None) -> list[Step]:
    base = base if base is not None else os.path.dirname(os.path.abspath(path))
    steps: list[Step] = []
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        cmd, _, arg = line.partition(" ")
        cmd, arg = cmd.lower(), arg.strip()
        if cmd not in COMMANDS:
            raise TimelineError(path, n, f"unknown command {cmd!r} (place, remove, wait, unplug, replug, loop)")
        if COMMANDS[cmd] and not arg:
            raise TimelineError(path, n, f"{cmd} needs an argument")
        if not COMMANDS[cmd] and arg:
            raise TimelineError(path, n, f"{cmd} takes no argument")
        if cmd == "wait":
            try:
                seconds = float(arg)
            except ValueError:
                raise TimelineError(path, n, f"wait needs seconds, got {arg!r}") from None
            if not 0 <= seconds <= 86400:
                raise TimelineError(path, n, f"wait {seconds} is out of range (0 to 86400 s)")
            steps.append(Step(n, cmd, seconds))
        elif cmd == "place":
            steps.append(Step(n, cmd, arg if os.path.isabs(arg) else os.path.join(base, arg)))
        else:
            if cmd == "loop" and any(True for _ in text.splitlines()[n:] if _.split("#", 1)[0].strip()):
                raise TimelineError(path, n, "loop must be the last command")
            steps.append(Step(n, cmd))
    return steps


def load(path: str | os.PathLike[str], check_files: bool = True) -> list[Step]:
    path = os.fspath(path)
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise TimelineError(path, 0, f"cannot read: {exc}") from None
    steps = parse(text, path)
    if check_files:
        for step in steps:
            if step.command == "place" and not os.path.isfile(str(step.arg)):
                raise TimelineError(path, step.line, f"place: no such dump file {step.arg}")
    return steps


def run(steps: list[Step], target: Any, stop: threading.Event | None = None,
        on_error: Callable[[Step, Exception], None] | None = None) -> None:
    """Play the steps against ``target`` (place(path)/remove()/unplug()/replug()) until done or stopped.

    A step that fails (a dump that became unreadable, say) goes to ``on_error`` — by default it is
    logged — and the timeline goes on: a demo or a test run should not die in a background thread."""
    stop = stop or threading.Event()
    while not stop.is_set():
        for step in steps:
            if stop.is_set():
                return
            try:
                if step.command == "wait":
                    stop.wait(float(step.arg))  # type: ignore[arg-type]
                elif step.command == "place":
                    target.place(step.arg)
                elif step.command == "loop":
                    break
                else:
                    getattr(target, step.command)()
            except Exception as exc:  # noqa: BLE001 - reported, the timeline goes on
                (on_error or _log_error)(step, exc)
        else:
            return


def _log_error(step: Step, exc: Exception) -> None:
    log.warning("timeline line %d (%s): %s", step.line, step.command, exc)
