"""The intake: at most per_turn requests start per event-loop turn, in arrival order, none lost."""

from __future__ import annotations

import asyncio

from tagd.web.intake import Intake


async def test_no_more_than_per_turn_start_in_one_turn_and_all_start_in_order() -> None:
    intake = Intake(per_turn=4)
    started: list[tuple[int, int]] = []  # (request, turn)
    turn = 0

    async def ticker() -> None:
        nonlocal turn
        while True:
            await asyncio.sleep(0)
            turn += 1

    tick = asyncio.ensure_future(ticker())

    async def request(i: int) -> None:
        await intake.admit()
        started.append((i, turn))

    await asyncio.gather(*(request(i) for i in range(20)))
    tick.cancel()
    assert [i for i, _ in started] == list(range(20))
    per_turn: dict[int, int] = {}
    for _, t in started:
        per_turn[t] = per_turn.get(t, 0) + 1
    assert max(per_turn.values()) <= 4 and len(per_turn) >= 5


async def test_a_cancelled_waiter_does_not_take_a_place() -> None:
    intake = Intake(per_turn=1)
    await intake.admit()
    waiters = [asyncio.ensure_future(intake.admit()) for _ in range(3)]
    await asyncio.sleep(0)
    waiters[0].cancel()
    await asyncio.wait_for(asyncio.gather(*waiters[1:]), 1)
