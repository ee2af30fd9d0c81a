"""At most so many API requests start per turn of the event loop, so a tap never waits behind thousands of them;
and none start while a tap's launch is on its way to the cores.

asyncio runs every ready callback of a turn before it looks at the sockets again. With a thousand WebSocket
clients each sending a request, one turn held a thousand requests' work, and a tap — a reader event, the
pipeline, a forwarder's connect, write and read, each a step in a later turn — waited seconds behind them
(bench/stress.py: tap → forward p50 7.5 s while 1000 clients loaded the API). Requests beyond ``per_turn``
in a turn wait (a future, no polling) for the next turn, so a turn is short and the tap's steps come round
quickly. Throughput hardly changes: a saturated loop does the same work in more, shorter turns.

Short turns were not enough: a tap's launch takes some ten turns (a connect alone is four), and in each the API's
work and the fan-out of the tap's own ``tokens.added`` to a thousand clients came first (p99 76 ms). While a
tap's launch is on its way (:meth:`Priority.during`), :class:`Intake` starts no request and the outboxes'
:class:`~tagd.web.outbox.WakePacer` wakes no writer, so each of the launch's turns holds little else: the
requests already running and the socket reads. The pause ends when the launch has reached every core, and after
``MAX_HOLD`` seconds at the latest, so a slow core (or a command that runs for seconds) never stalls the API.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Callable

PER_TURN = 8
MAX_HOLD = 0.1  # seconds a tap's launch may hold back new API work


class Priority:
    """Whether new API work may start now: not while a tap's launch is on its way (see the module doc)."""

    def __init__(self, max_hold: float = MAX_HOLD) -> None:
        self.max_hold = max_hold
        self._holding = 0  # launches on their way
        self._until = 0.0  # loop time the pause ends at the latest
        self._timer: asyncio.TimerHandle | None = None
        self._resume: list[Callable[[], None]] = []

    @property
    def paused(self) -> bool:
        return self._holding > 0 and asyncio.get_running_loop().time() < self._until

    def during(self, launch: asyncio.Future) -> None:
        """Pause new API work until ``launch`` is done, or for ``max_hold`` seconds from now."""
        loop = asyncio.get_running_loop()
        self._holding += 1
        self._until = max(self._until, loop.time() + self.max_hold)
        if self._timer is not None:
            self._timer.cancel()
        self._timer = loop.call_at(self._until, self._expired)
        launch.add_done_callback(self._done)

    def when_resumed(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` once the pause ends (the caller asks only while :attr:`paused`)."""
        self._resume.append(callback)

    def _done(self, _launch: asyncio.Future) -> None:
        self._holding -= 1
        if not self._holding:
            self._resumed()

    def _expired(self) -> None:
        self._timer = None
        self._until = 0.0
        self._resumed()

    def _resumed(self) -> None:
        if self._timer is not None and not self._holding:
            self._timer.cancel()
            self._timer = None
        callbacks, self._resume = self._resume, []
        for callback in callbacks:
            callback()


class PerTurn:
    """Runs :meth:`_step` once per event-loop turn while it says there is more to do, and not while ``priority``
    is paused (the turn then comes when the pause ends). The shared part of :class:`Intake` and the outboxes'
    :class:`~tagd.web.outbox.WakePacer`."""

    def __init__(self, priority: Priority | None) -> None:
        self.priority = priority if priority is not None else Priority()
        self._turn_scheduled = False  # a turn is due (soon, or when the pause ends)

    def _schedule_turn(self) -> None:
        if not self._turn_scheduled:
            self._turn_scheduled = True
            asyncio.get_running_loop().call_soon(self._turn)

    def _resume(self) -> None:
        self._turn_scheduled = False
        self._schedule_turn()

    def _turn(self) -> None:
        if self.priority.paused:
            self.priority.when_resumed(self._resume)
            return
        self._turn_scheduled = False
        if self._step():
            self._schedule_turn()

    def _step(self) -> bool:
        """This turn's work; True if another turn is needed."""
        raise NotImplementedError


class Intake(PerTurn):
    def __init__(self, per_turn: int = PER_TURN, priority: Priority | None = None) -> None:
        super().__init__(priority)
        self.per_turn = per_turn
        self._started = 0  # admitted in this turn
        self._waiting: deque[asyncio.Future[None]] = deque()

    async def admit(self) -> None:
        """Return when this request may start: at once while the turn has room, else in a later turn, in order."""
        self._schedule_turn()
        if self._started < self.per_turn and not self._waiting and not self.priority.paused:
            self._started += 1
            return
        future = asyncio.get_running_loop().create_future()
        self._waiting.append(future)
        await future

    def _step(self) -> bool:
        """A new turn: room for ``per_turn`` more, given first to the oldest waiting."""
        self._started = 0
        while self._waiting and self._started < self.per_turn:
            future = self._waiting.popleft()
            if not future.done():
                future.set_result(None)
                self._started += 1
        return bool(self._waiting or self._started)
