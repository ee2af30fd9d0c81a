"""The launch guard, in tagd's own pipeline: while media plays, a tap is staged instead of launched.

Zaparoo Core applies its guard to the scans of its own readers; the taps tagd forwards reach Core as API ``run``
calls, which Core's guard never sees — so tagd guards its taps itself, with Core's keys
(``[readers.scan.launch_guard]``) and Core's rules (service/readers.go):

- only while media plays (the core's ``media.started`` … ``media.stopped``) and only a reader's tap is staged
  (an API ``run`` is a deliberate launch); staging announces ``tokens.staged`` (the token);
- only a tap whose script (mapped, as it would launch) changes or stops the media is staged: coins, keys,
  ``**execute`` and other utility commands pass at once and leave a staged token staged
  (:func:`tagd.daemon.zapscript.media_disrupting`);
- after ``delay`` seconds the staged token is ready (``tokens.staged.ready``): tapping the same token again
  launches it. A re-tap before then restarts both the delay and the timeout. With ``require_confirm`` a re-tap
  does nothing: only the API's ``confirm`` launches (``confirm`` needs no delay);
- a staged token lapses after ``timeout`` seconds (0 = Core's 15, negative = never), when media stops, or when
  another token is staged in its place.

:class:`LaunchGuard` holds the staged token and its timers; the pipeline asks :meth:`decide` per tap.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Callable

from tagd.token import Token

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 15.0  # Core's, when launch_guard.timeout is 0

STAGE, LAUNCH, WAIT, PASS = "stage", "launch", "wait", "pass"


class LaunchGuard:
    def __init__(self, notify: Callable[[str, Any], None]) -> None:
        self.notify = notify
        self.staged: Token | None = None
        self.ready = False
        self._timers: list[asyncio.TimerHandle] = []

    def decide(self, settings: Any, media_playing: bool, token: Token, disrupting: bool = True) -> str:
        """What to do with a reader's tap: PASS (launch as usual), STAGE (staged now), WAIT (a re-tap of the
        staged token before it is ready, or with require_confirm: nothing launches) or LAUNCH (the staged token,
        confirmed by the re-tap: launch it). ``disrupting``: the tap's script would change or stop the media."""
        if not settings.enabled or not media_playing:
            self.clear()
            return PASS
        if not disrupting:
            return PASS  # a utility command: it runs, and a staged token stays staged
        if self.staged is not None and token.key == self.staged.key:
            if settings.require_confirm:
                return WAIT
            if self.ready:
                self.clear()
                return LAUNCH
            log.info("launch guard: re-tap before the delay ended: waiting again")
            self._start(settings, token)
            return WAIT
        log.info("launch guard: staging %r while media plays", token.text)
        self._start(settings, token)
        self.notify("tokens.staged", token.to_json())
        return STAGE

    def confirm(self) -> Token:
        """The API's ``confirm``: the staged token, now unstaged (LookupError with Core's words if none)."""
        token = self.staged
        if token is None:
            raise LookupError("no staged token to confirm")
        self.clear()
        return token

    def clear(self) -> None:
        for timer in self._timers:
            timer.cancel()
        self._timers, self.staged, self.ready = [], None, False

    def _start(self, settings: Any, token: Token) -> None:
        self.clear()
        self.staged = token
        loop = asyncio.get_running_loop()
        delay = float(settings.delay)
        if delay > 0:
            self._timers.append(loop.call_later(delay, self._ready, token))
        else:
            self.ready = True
        timeout = float(settings.timeout) or DEFAULT_TIMEOUT
        if timeout > 0:
            self._timers.append(loop.call_later(timeout, self._lapse, token))

    def _ready(self, token: Token) -> None:
        if self.staged is token:
            self.ready = True
            self.notify("tokens.staged.ready", token.to_json())

    def _lapse(self, token: Token) -> None:
        if self.staged is token:
            log.info("launch guard: the staged token lapsed")
            self.clear()
