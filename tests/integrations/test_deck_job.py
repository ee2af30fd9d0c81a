"""The daemon's deck job (decks.write) with a scripted writer: card after card, pause/resume/cancel, a tag still on
the reader, a bad read-back — and the progress it announces."""

from __future__ import annotations

import asyncio
import threading
from types import SimpleNamespace

import pytest

from tagd.integrations.deck_job import DeckJob
from tagd.integrations.store import IntegrationStore
from tagd.readers.base import TagExcluded, WriteCancelled, WriteError

ITEMS = [{"item": f"romm:{i}", "title": f"Game {i}", "subtitle": "SNES", "text": f"@SNES/Game {i}"} for i in (1, 2, 3)]


class Writer:
    """Each call takes the next scripted outcome: a uid (written as asked), an exception, "wrong" (reads back
    other text), or "hold" (waits until cancelled, as a reader with no tag does)."""

    def __init__(self, script):
        self.script = list(script)
        self.calls: list[tuple[str, frozenset[str]]] = []
        self.holding = asyncio.Event()

    async def __call__(self, text: str, exclude: frozenset[str], cancel: threading.Event):
        self.calls.append((text, exclude))
        step = self.script.pop(0) if self.script else "hold"
        if step == "hold":
            self.holding.set()
            while not cancel.is_set():
                await asyncio.sleep(0.01)
            self.holding.clear()
            raise WriteCancelled("write cancelled")
        if isinstance(step, Exception):
            raise step
        if step == "wrong":
            return SimpleNamespace(uid="04ffffffffffff", text="something else")
        return SimpleNamespace(uid=step, text=text)


async def no_sleep(_: float) -> None:
    await asyncio.sleep(0)


def job_for(tmp_path, writer, items=ITEMS):
    store = IntegrationStore(tmp_path / "tagd.db")
    store.plan_deck("romm", items)
    seen: list[dict] = []
    job = DeckJob("romm", store, writer, lambda m, p: seen.append(p), sleep=no_sleep, fatal=(LookupError,))
    return job, store, seen


def start(job, store) -> None:
    job.start(store.deck("romm"))


async def finished(job) -> None:
    await asyncio.wait_for(job.task, 30)  # seconds only on a loaded machine: each card is a few store writes


async def test_each_card_is_written_recorded_and_announced_until_done(tmp_path):
    writer = Writer(["04000000000001", "04000000000002", "04000000000003"])
    job, store, seen = job_for(tmp_path, writer)
    start(job, store)
    await finished(job)
    assert [c["uid"] for c in store.deck("romm")] == ["04000000000001", "04000000000002", "04000000000003"]
    assert [(p["done"], p["state"]) for p in seen] == [(0, "waiting"), (1, "writing"), (1, "waiting"), (2, "writing"),
                                                      (2, "waiting"), (3, "writing"), (3, "done")]
    assert seen[1]["current"] == {"title": "Game 1"} and isinstance(seen[2]["etaSeconds"], float)
    assert seen[-1]["total"] == 3 and "error" not in seen[-1]
    # a card already written is never offered to the next item's write
    assert writer.calls[2] == ("@SNES/Game 3", frozenset({"04000000000001", "04000000000002"}))


async def test_a_second_sitting_skips_what_the_first_wrote(tmp_path):
    job, store, _ = job_for(tmp_path, Writer(["04000000000001"] + ["hold"]))
    start(job, store)
    await asyncio.wait_for(_until(lambda: job.progress()["done"] == 1), 30)
    job.cancel()
    await finished(job)
    assert job.progress()["state"] == "cancelled"
    again = DeckJob("romm", store, Writer(["04000000000002", "04000000000003"]), lambda *_: None, sleep=no_sleep)
    start(again, store)
    await asyncio.wait_for(again.task, 30)
    assert again.progress() | {"etaSeconds": None} == {"done": 3, "total": 3, "state": "done", "current": None,
                                                       "etaSeconds": None}


async def _until(cond) -> None:
    while not cond():
        await asyncio.sleep(0.01)


async def test_pause_ends_the_waiting_write_and_resume_asks_again(tmp_path):
    writer = Writer(["hold", "04000000000001", "04000000000002", "04000000000003"])
    job, store, seen = job_for(tmp_path, writer)
    start(job, store)
    await asyncio.wait_for(writer.holding.wait(), 30)
    job.pause()
    await _until(lambda: len(writer.calls) == 1 and not writer.holding.is_set())
    await asyncio.sleep(0.05)
    assert job.progress()["state"] == "paused" and len(writer.calls) == 1  # nothing asked while paused
    job.resume()
    with pytest.raises(ValueError, match="not paused"):
        job.resume()
    await finished(job)
    assert job.progress()["state"] == "done" and len(writer.calls) == 4


async def test_a_tag_still_on_the_reader_is_waited_out_and_a_write_error_is_shown_then_retried(tmp_path):
    writer = Writer([TagExcluded("tag 04 is excluded from writing"), WriteError("the tag left the reader"),
                     "wrong", WriteError("no tag within 600 s"), "04000000000001"])
    job, store, seen = job_for(tmp_path, writer, ITEMS[:1])
    start(job, store)
    await finished(job)
    errors = [p.get("error") for p in seen if p.get("error")]
    assert errors == ["the tag left the reader", "the tag did not read back as written; place it again"]
    assert seen[-1]["state"] == "done" and "error" not in seen[-1] and len(writer.calls) == 5


async def test_no_reader_to_write_with_ends_the_job_with_the_error(tmp_path):
    job, store, seen = job_for(tmp_path, Writer([LookupError("no connected reader can write tags")]))
    start(job, store)
    await finished(job)
    assert seen[-1]["state"] == "error" and seen[-1]["error"] == "no connected reader can write tags"
    with pytest.raises(ValueError, match="no deck is being written"):
        job.cancel()


async def test_a_write_cancelled_from_elsewhere_pauses_the_deck(tmp_path):
    """readers.write.cancel ends the deck's waiting write as it would any other: the deck pauses, not ends."""
    writer = Writer([WriteCancelled("write cancelled"), "04000000000001"])
    job, store, seen = job_for(tmp_path, writer, ITEMS[:1])
    start(job, store)
    await asyncio.wait_for(_until(lambda: job.state == "paused"), 30)
    await asyncio.sleep(0.05)
    assert len(writer.calls) == 1
    job.resume()
    await finished(job)
    assert [p["state"] for p in seen] == ["waiting", "paused", "writing", "waiting", "writing", "done"]
