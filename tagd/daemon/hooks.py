"""``[readers.scan] on_scan`` and ``on_remove``: a command tagd runs on a tap and on a hold-mode removal.

In Zaparoo Core these keys hold ZapScript that Core runs; tagd forwards ZapScript and runs none, so here they
name a command: ``on_scan = "/usr/local/bin/may-launch --quiet"`` (split like a shell would split words, but
never run by a shell: tag text cannot become code), or Core's own forms: ``**execute:COMMAND``, and a script of
``**execute`` and ``**delay:MS`` commands joined by ``||`` (``**delay:2000||**execute:/usr/bin/save-state``:
wait two seconds, then run the command), run in order. Other ZapScript in a hook (``**echo:…``) is the core's and
is skipped, with a warning. The token is passed in the environment: ``TAGD_HOOK`` (on_scan/on_remove),
``TAGD_TOKEN_UID``, ``TAGD_TOKEN_TEXT``, ``TAGD_TOKEN_DATA``, ``TAGD_READER_ID``.

As in Core, a hook can say no: a command of ``on_scan`` exiting non-zero (or not finishing within
:data:`HOOK_TIMEOUT` seconds, or not starting) vetoes the launch, and the commands after it do not run;
``on_remove`` doing so keeps the media running. Delays add up to :data:`MAX_DELAY` seconds at most per hook.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shlex
from typing import Any

from tagd.daemon.zapscript import split_commands
from tagd.token import Token

log = logging.getLogger(__name__)

HOOK_TIMEOUT = 5.0  # seconds; a hook command still running then is killed and counts as a "no"
MAX_DELAY = 60.0  # seconds of **delay a hook may add up to

Step = tuple[str, Any]  # ("run", argv) | ("delay", seconds) | ("skip", the ZapScript command tagd leaves alone)


def _argv(text: str) -> list[str] | None:
    try:
        return shlex.split(text) or None
    except ValueError:
        return None


def hook_steps(value: str) -> list[Step]:
    """What a hook value asks for, in order: commands to run, delays, and ZapScript skipped. A value that is not
    ZapScript (does not start with ``**``) is one command, ``||`` and all (it never meets a shell)."""
    text = value.strip()
    if not text:
        return []
    if not text.startswith("**"):
        argv = _argv(text)
        return [("run", argv)] if argv else [("skip", text)]
    steps: list[Step] = []
    for part in split_commands(text) or [text]:
        part = part.strip()
        name = part[2:].split(":", 1)[0].strip().lower() if part.startswith("**") else ""
        arg = part.split(":", 1)[1] if ":" in part else ""
        if name == "execute" and (argv := _argv(arg)):
            steps.append(("run", argv))
        elif name == "delay" and (seconds := _milliseconds(arg)) is not None:
            steps.append(("delay", seconds))
        elif part:
            steps.append(("skip", part))
    return steps


def _milliseconds(arg: str) -> float | None:
    try:
        ms = float(arg.strip())
    except ValueError:
        return None
    return ms / 1000 if 0 <= ms < float("inf") else None


async def run_hook(name: str, value: str, token: Token | None, timeout: float = HOOK_TIMEOUT) -> bool:
    """Run the hook's steps; True if there are none or every command exited 0, False at the first that did not
    (the log says why; later steps do not run)."""
    steps = hook_steps(value)
    if not steps:
        return True  # no hook (every tap passes here: nothing to build)
    env = dict(os.environ, TAGD_HOOK=name)
    if token is not None:
        env.update(TAGD_TOKEN_UID=token.uid, TAGD_TOKEN_TEXT=token.text, TAGD_TOKEN_DATA=token.data,
                   TAGD_READER_ID=token.reader_id or "")
    delayed = 0.0
    for kind, what in steps:
        if kind == "skip":
            _warn_skipped(name, what)
        elif kind == "delay":
            wait = min(what, MAX_DELAY - delayed)
            delayed += wait
            await asyncio.sleep(wait)
        else:
            code = await run_command(name, what, env, timeout)
            if code != 0:
                if code:
                    log.info("%s %s said no (exit %d)", name, what[0], code)
                return False
    return True


_skipped_warned: set[tuple[str, str]] = set()


def _warn_skipped(hook: str, command: str) -> None:
    """Once per hook and command: only its name, since Core's hooks may carry secrets in arguments
    (``**http.get:https://host/hook?token=…``) and a log line per tap would spread them."""
    shown = command.split(":", 1)[0].split("?", 1)[0].strip()[:40] if command.startswith("**") else "a command"
    if (hook, command) in _skipped_warned:
        return
    _skipped_warned.add((hook, command))
    log.warning("%s: %s is ZapScript tagd does not run (it runs a command, **execute: and **delay:): skipped",
                hook, shown)


async def run_command(name: str, argv: list[str], env: dict[str, str] | None = None,
                      timeout: float = HOOK_TIMEOUT) -> int | None:
    """Run ``argv`` without a shell, stdin and stdout closed: its exit status, or None when it could not start or
    did not finish within ``timeout`` seconds (then it is killed; the log says which). Killed too if the caller
    is cancelled, so a daemon that stops leaves none behind."""
    try:
        proc = await asyncio.create_subprocess_exec(*argv, env=env, stdin=asyncio.subprocess.DEVNULL,
                                                    stdout=asyncio.subprocess.DEVNULL)
    except (OSError, ValueError) as exc:
        log.warning("%s %s could not start: %s", name, argv[0], exc)
        return None
    try:
        return await asyncio.wait_for(proc.wait(), timeout)
    except asyncio.TimeoutError:
        proc.kill()
        await proc.wait()
        log.warning("%s %s did not finish within %g s: killed", name, argv[0], timeout)
        return None
    except asyncio.CancelledError:
        proc.kill()
        raise
