"""Run a command per launch: an argv template, never a shell.

Each argument of ``argv`` may contain ``{text}``, ``{uid}``, ``{data}``, ``{type}`` and ``{reader_id}``; they are
replaced in one pass (a token text containing ``{uid}`` stays literal) and the result is passed to
``create_subprocess_exec`` as is: tag text is data, so ``$(touch /tmp/x); rm -rf`` reaches the program as
those very characters. The same values are in the environment as ``TAGD_TEXT``, ``TAGD_UID``, ``TAGD_DATA``,
``TAGD_TYPE``, ``TAGD_READER_ID`` (plus ``TAGD_EVENT`` = launch|stop, and ``TAGD_UNSAFE`` = 1 for a launch
that came from the API or the web rather than a tapped tag, else 0).

A value that starts with ``-`` and would begin an argument is refused (ForwardError) unless ``--`` comes
before that argument in ``argv``: otherwise a tag reading ``--exec=…`` is an option to the program, not text.
Write ``argv = ["launcher", "--", "{text}"]`` for programs that take ``--`` (most do).

A non-zero exit status, a timeout (the process is killed) or a program that cannot start is a ForwardError
that quotes the end of its stderr. ``stop_argv`` (optional) runs on a hold-mode exit.
"""

from __future__ import annotations

import asyncio
import os
import re
from typing import Any

from tagd.daemon.forwarders import Forwarder, ForwardError
from tagd.token import Token

PLACEHOLDER = re.compile(r"\{(text|uid|data|type|reader_id)\}")


def token_values(token: Token | None) -> dict[str, str]:
    if token is None:
        return {"text": "", "uid": "", "data": "", "type": "", "reader_id": ""}
    return {"text": token.text, "uid": token.uid, "data": token.data, "type": token.type,
            "reader_id": token.reader_id or ""}


def expand_argv(template: list[str], values: dict[str, str]) -> list[str]:
    """Substitute the placeholders in each argument, in a single pass."""
    return [PLACEHOLDER.sub(lambda m: values[m.group(1)], arg) for arg in template]


def option_like(template: list[str], argv: list[str]) -> str | None:
    """The first argument a placeholder's value made start with ``-`` before any ``--``; None if there is none."""
    for arg, expanded in zip(template[1:], argv[1:]):
        if arg == "--":
            return None
        if expanded.startswith("-") and not arg.startswith("-"):
            return expanded


class ExecForwarder(Forwarder):
    kind = "exec"

    def __init__(self, config: Any, name: str = "exec") -> None:
        super().__init__(name)
        self.argv = list(config.argv)
        self.stop_argv = list(config.stop_argv)
        self.timeout = float(config.timeout)

    async def launch(self, token: Token) -> None:
        await self._run(self.argv, token, "launch")

    async def stop_media(self) -> None:
        if self.stop_argv:
            await self._run(self.stop_argv, None, "stop")

    async def _run(self, template: list[str], token: Token | None, event: str) -> None:
        values = token_values(token)
        argv = expand_argv(template, values)
        if (option := option_like(template, argv)) is not None:
            raise ForwardError(f"{self.name}: not run: {option[:40]!r} would be taken as an option by "
                               f"{argv[0]!r}; put \"--\" before the placeholder in argv")
        env = dict(os.environ)
        env.update({f"TAGD_{k.upper()}": v for k, v in values.items()})
        env["TAGD_EVENT"] = event
        env["TAGD_UNSAFE"] = "1" if token is not None and token.unsafe else "0"
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv, env=env, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
            )
        except (OSError, ValueError) as exc:  # ValueError: a NUL byte in an argument or the environment
            raise ForwardError(f"{self.name}: cannot run {argv[0]!r}: {exc}") from None
        try:
            _, stderr = await asyncio.wait_for(proc.communicate(), self.timeout)
        except asyncio.TimeoutError:
            proc.kill()
            await proc.wait()
            raise ForwardError(f"{self.name}: {argv[0]!r} did not finish within {self.timeout:g} s (killed)") from None
        except asyncio.CancelledError:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
            raise
        if proc.returncode != 0:
            tail = stderr.decode("utf-8", "replace").strip()[-300:]
            raise ForwardError(f"{self.name}: {argv[0]!r} exited with status {proc.returncode}"
                               + (f": {tail}" if tail else ""))
