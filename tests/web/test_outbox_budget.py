"""What an outbox counts: the message being written until the writer asks for the next, and — shared by every
client — the answers waiting for all of them (AnswerBudget), so clients that never read cannot add up."""

from __future__ import annotations

import asyncio

from tagd.web.outbox import AnswerBudget, Outbox, wire_size


async def test_the_message_being_written_counts_until_the_writer_asks_for_the_next() -> None:
    outbox = Outbox(limit=100)
    assert outbox.put("a" * 60)
    assert await outbox.get() == "a" * 60
    assert outbox.bytes == 60  # still in the socket's buffer, as far as anyone knows
    assert outbox.put("b" * 30) and not outbox.put("c" * 20)  # 60 + 30 + 20 > 100
    assert await outbox.get() == "b" * 30
    assert outbox.bytes == 30


async def test_past_the_shared_budget_a_client_with_answers_waiting_gets_no_more_but_a_reading_one_does() -> None:
    budget = AnswerBudget(limit=100)
    stuck, reading = Outbox(limit=1000, budget=budget), Outbox(limit=1000, budget=budget)
    assert stuck.put("a" * 80)
    await stuck.get()  # being written, and never done
    assert not stuck.put("b" * 30)  # 80 + 30 > 100, and it has one waiting: refused (the server drops it)
    assert reading.put("c" * 50)  # nothing waiting for this one: it gets its answer, even past the budget
    assert budget.total == 130
    assert await reading.get() == "c" * 50
    waiting = asyncio.ensure_future(reading.get())  # its writer asks for the next: that answer was written
    await asyncio.sleep(0)
    assert budget.total == 80
    assert stuck.put("d" * 10)  # within the budget again: queued
    waiting.cancel()


async def test_broadcasts_do_not_count_toward_the_budget_and_a_closed_outbox_gives_its_share_back() -> None:
    budget = AnswerBudget(limit=100)
    outbox = Outbox(limit=1000, budget=budget)
    assert outbox.put("note" * 10, paced=True)
    assert budget.total == 0
    assert outbox.put("x" * 70)
    assert await outbox.get() == "note" * 10
    assert await outbox.get() == "x" * 70
    assert budget.total == 70
    outbox.close()
    assert budget.total == 0 and outbox.bytes == 0
    assert await outbox.get() is None and budget.total == 0


def test_wire_size_is_the_utf8_length_with_or_without_non_ascii_text() -> None:
    assert wire_size("abc") == 3
    assert wire_size("é€😀") == 2 + 3 + 4
    assert wire_size("\ud800") == 3
