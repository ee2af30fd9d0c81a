"""The intake: at most per_turn requests start per event-loop turn, in arrival order, none lost."""

from __future__ import annotations

import asyncio

from tagd.web.intake import Intake, Priority


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


# --- a tap's launch goes first (Priority) ------------------------------------------------------------------------

async def test_no_request_starts_while_a_tap_launch_is_on_its_way_and_all_start_after_it() -> None:
    priority = Priority(max_hold=5.0)
    intake = Intake(per_turn=4, priority=priority)
    launch = asyncio.get_running_loop().create_future()
    priority.during(launch)
    started: list[int] = []

    async def request(i: int) -> None:
        await intake.admit()
        started.append(i)

    requests = [asyncio.ensure_future(request(i)) for i in range(10)]
    for _ in range(20):
        await asyncio.sleep(0)
    assert started == [] and priority.paused
    launch.set_result(None)
    await asyncio.wait_for(asyncio.gather(*requests), 1)
    assert started == list(range(10)) and not priority.paused


async def test_a_launch_that_takes_long_holds_the_api_back_for_max_hold_only() -> None:
    priority = Priority(max_hold=0.05)
    intake = Intake(priority=priority)
    slow_launch = asyncio.get_running_loop().create_future()  # a core that never answers
    priority.during(slow_launch)
    t0 = asyncio.get_running_loop().time()
    await asyncio.wait_for(intake.admit(), 1)
    assert 0.04 <= asyncio.get_running_loop().time() - t0 < 0.5
    assert not priority.paused
    slow_launch.cancel()
    await asyncio.sleep(0)  # its done callback finds nothing left to resume


async def test_a_second_tap_extends_the_pause_from_its_own_start() -> None:
    loop = asyncio.get_running_loop()
    priority = Priority(max_hold=0.1)
    first, second = loop.create_future(), loop.create_future()
    priority.during(first)
    await asyncio.sleep(0.06)
    priority.during(second)
    first.set_result(None)
    await asyncio.sleep(0.06)  # 0.12 s after the first: past its hold, within the second's
    assert priority.paused
    second.set_result(None)
    await asyncio.sleep(0)  # its done callback runs
    assert not priority.paused
