"""``[readers.scan] on_scan`` and ``on_remove``: a command tagd runs on a tap and on a hold-mode removal.

In Zaparoo Core these keys hold ZapScript that Core runs; tagd forwards ZapScript and runs none, so here they
name a command: ``on_scan = "/usr/local/bin/may-launch --quiet"`` (split like a shell would split words, but
never run by a shell: tag text cannot become code), or Core's own form ``**execute:COMMAND``. Other ZapScript
(``**echo:…``) is the core's and is ignored, with a warning at start. The token is passed in the environment:
``TAGD_HOOK`` (on_scan/on_remove), ``TAGD_TOKEN_UID``, ``TAGD_TOKEN_TEXT``, ``TAGD_TOKEN_DATA``,
``TAGD_READER_ID``.

As in Core, a hook can say no: ``on_scan`` exiting non-zero (or not finishing within :data:`HOOK_TIMEOUT`
seconds, or not starting) vetoes the launch; ``on_remove`` doing so keeps the media running.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shlex

from tagd.token import Token

log = logging.getLogger(__name__)

HOOK_TIMEOUT = 5.0  # seconds; a hook still running then is killed and counts as a "no"


def hook_argv(value: str) -> list[str] | None:
    """The command a hook value names, or None (no hook, or ZapScript only the core can run)."""
    text = value.strip()
    if not text:
        return None
    if text[:10].lower() == "**execute:":
        text = text[10:]
    elif text.startswith("**"):
        return None
    try:
        return shlex.split(text) or None
    except ValueError:
        return None


async def run_hook(name: str, value: str, token: Token | None, timeout: float = HOOK_TIMEOUT) -> bool:
    """Run the hook; True if there is none or it exited 0, False otherwise (the log says why)."""
    argv = hook_argv(value)
    if argv is None:
        if value.strip():
            log.warning("%s %r is ZapScript tagd does not run (use a command or **execute:): ignored", name, value)
        return True
    env = dict(os.environ, TAGD_HOOK=name)
    if token is not None:
        env.update(TAGD_TOKEN_UID=token.uid, TAGD_TOKEN_TEXT=token.text, TAGD_TOKEN_DATA=token.data,
                   TAGD_READER_ID=token.reader_id or "")
    code = await run_command(name, argv, env, timeout)
    if code:
        log.info("%s %s said no (exit %d)", name, argv[0], code)
    return code == 0


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
