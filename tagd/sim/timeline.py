"""Scripted taps: a timeline file places and removes tags with delays, for demos, tests and replay.

    # comments and blank lines are ignored
    place snes.nfc        # a dump file (any format), relative to the timeline's folder
    wait 1.5              # seconds
    remove
    unplug / replug       # the reader disappears / comes back (emulators only)
    loop                  # start again from the top (last line only)

Parsing is sans-I/O (:func:`parse`); :func:`run` drives any object with place/remove/unplug/replug.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from typing import Any

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


def load(path: str) -> list[Step]:
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise TimelineError(path, 0, f"cannot read: {exc}") from None
    return parse(text, path)


def run(steps: list[Step], target: Any, stop: threading.Event | None = None) -> None:
    """Play the steps against ``target`` (place(path)/remove()/unplug()/replug()) until done or stopped."""
    stop = stop or threading.Event()
    while not stop.is_set():
        for step in steps:
            if stop.is_set():
                return
            if step.command == "wait":
                stop.wait(float(step.arg))  # type: ignore[arg-type]
            elif step.command == "place":
                target.place(step.arg)
            elif step.command == "loop":
                break
            else:
                getattr(target, step.command)()
        else:
            return
