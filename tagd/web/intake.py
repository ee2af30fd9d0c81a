"""At most so many API requests start per turn of the event loop, so a tap never waits behind thousands of them.

asyncio runs every ready callback of a turn before it looks at the sockets again. With a thousand WebSocket
clients each sending a request, one turn held a thousand requests' work, and a tap — a reader event, the
pipeline, a forwarder's connect, write and read, each a step in a later turn — waited seconds behind them
(bench/stress.py: tap → forward p50 7.5 s while 1000 clients loaded the API). Requests beyond ``per_turn``
in a turn wait (a future, no polling) for the next turn, so a turn is short and the tap's steps come round
quickly. Throughput hardly changes: a saturated loop does the same work in more, shorter turns.
"""

from __future__ import annotations

import asyncio
from collections import deque

PER_TURN = 8


class Intake:
    def __init__(self, per_turn: int = PER_TURN) -> None:
        self.per_turn = per_turn
        self._started = 0  # admitted in this turn
        self._waiting: deque[asyncio.Future[None]] = deque()
        self._turn_scheduled = False

    async def admit(self) -> None:
        """Return when this request may start: at once while the turn has room, else in a later turn, in order."""
        self._schedule_turn()
        if self._started < self.per_turn and not self._waiting:
            self._started += 1
            return
        future = asyncio.get_running_loop().create_future()
        self._waiting.append(future)
        await future

    def _schedule_turn(self) -> None:
        if not self._turn_scheduled:
            self._turn_scheduled = True
            asyncio.get_running_loop().call_soon(self._turn)

    def _turn(self) -> None:
        """A new turn: room for ``per_turn`` more, given first to the oldest waiting."""
        self._turn_scheduled = False
        self._started = 0
        while self._waiting and self._started < self.per_turn:
            future = self._waiting.popleft()
            if not future.done():
                future.set_result(None)
                self._started += 1
        if self._waiting or self._started:
            self._schedule_turn()
