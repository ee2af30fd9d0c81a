"""Outboxes and their WakePacer: a broadcast wakes a few writers per loop turn, none while a tap's launch is on its
way, and every client still gets every message in the order it was produced."""

from __future__ import annotations

import asyncio

from tagd.web.intake import Priority
from tagd.web.outbox import Outbox, WakePacer


class Clients:
    """Outboxes with a writer each (in its own task, waiting), and a count of event-loop turns."""

    def __init__(self, n: int, pacer: WakePacer) -> None:
        self.outboxes = [Outbox(pacer=pacer) for _ in range(n)]
        self.got: list[list[str]] = [[] for _ in range(n)]
        self.woke: list[int] = []  # the turn each message was taken
        self.turn = 0
        self.tasks = [asyncio.ensure_future(self._writer(i)) for i in range(n)]
        self.tasks.append(asyncio.ensure_future(self._ticker()))

    async def _ticker(self) -> None:
        while True:
            await asyncio.sleep(0)
            self.turn += 1

    async def _writer(self, i: int) -> None:
        while (text := await self.outboxes[i].get()) is not None:
            self.got[i].append(text)
            self.woke.append(self.turn)

    async def __aenter__(self) -> Clients:
        await asyncio.sleep(0)  # the writers wait
        return self

    async def __aexit__(self, *exc: object) -> None:
        for t in self.tasks:
            t.cancel()


async def turns(n: int) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


async def test_a_broadcast_wakes_at_most_per_turn_writers_a_turn_and_reaches_everyone() -> None:
    async with Clients(50, WakePacer(per_turn=8)) as clients:
        for outbox in clients.outboxes:
            assert outbox.put("tokens.added", paced=True)
        await turns(30)
        assert clients.got == [["tokens.added"]] * 50
        per_turn: dict[int, int] = {}
        for turn in clients.woke:
            per_turn[turn] = per_turn.get(turn, 0) + 1
        assert max(per_turn.values()) <= 8 and len(per_turn) >= 7


async def test_a_client_gets_answers_and_notifications_in_the_order_they_were_produced() -> None:
    async with Clients(5, WakePacer(per_turn=1)) as clients:
        for outbox in clients.outboxes:
            outbox.put("note 1", paced=True)
        clients.outboxes[4].put("answer")  # not paced: the writer wakes now, and takes the notification first
        for outbox in clients.outboxes:
            outbox.put("note 2", paced=True)
        await turns(20)
        assert clients.got[4] == ["note 1", "answer", "note 2"]
        assert clients.got[:4] == [["note 1", "note 2"]] * 4


async def test_no_writer_is_woken_for_a_broadcast_while_a_tap_launch_is_on_its_way() -> None:
    priority = Priority(max_hold=5.0)
    pacer = WakePacer(priority=priority)
    async with Clients(3, pacer) as clients:
        launch = asyncio.get_running_loop().create_future()
        priority.during(launch)
        for outbox in clients.outboxes:
            outbox.put("tokens.added", paced=True)
        await turns(10)
        assert clients.got == [[], [], []] and len(pacer) == 3
        launch.set_result(None)
        await turns(5)
        assert clients.got == [["tokens.added"]] * 3
