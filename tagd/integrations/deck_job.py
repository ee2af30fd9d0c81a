"""Writing a deck inside the daemon (``decks.write``): one background job, card after card, through the daemon's
own write path, with pause, resume and cancel — the page's counterpart of `tagd deck write`.

The state that matters survives the daemon: the deck and which of its cards are written are in SQLite
(``deck_cards``, the CLI's table), committed card by card, so ``decks.write`` with the same catalog and filters
after a restart (or `tagd deck write` with the same options) carries on where it stopped. What lives only here is
the sitting: its state, the card in hand and the pace for the ETA.

States: ``waiting`` (a write is out: place a blank tag for ``current``), ``writing`` (between cards: recording one,
preparing the next), ``paused``, and the ends ``done``, ``error`` (no reader to write with), ``cancelled``.
Each change is announced with ``decks.progress`` (the shape :meth:`DeckJob.progress` returns).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from typing import Any, Awaitable, Callable

from tagd.integrations.decks import Progress
from tagd.readers.base import TagExcluded, WriteCancelled, WriteError

log = logging.getLogger(__name__)

WRITE_TIMEOUT = 600.0  # one write request's wait for a tag; the job asks again after it (the user may be slow)
RETRY_PAUSE = 0.25  # after a failed attempt (the last card still on the reader, a torn write)
RUNNING = ("waiting", "writing", "paused")

# write(text, exclude uids, cancel event) → the token read back from the tag
Write = Callable[[str, frozenset[str], threading.Event], Awaitable[Any]]


class DeckJob:
    def __init__(self, name: str, store: Any, write: Write, notify: Callable[[str, Any], None],
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
                 fatal: tuple[type[BaseException], ...] = ()) -> None:
        self.name = name
        self.store = store
        self.write = write
        self.notify = notify
        self.clock = clock
        self.sleep = sleep
        self.fatal = fatal  # errors that end the job (the daemon's RpcError: no reader can write)
        self.state = "writing"
        self.current: dict[str, Any] | None = None
        self.error = ""
        self.progress_: Progress | None = None
        self._running = asyncio.Event()
        self._running.set()
        self._cancel = threading.Event()  # the write out now
        self._paused_write: threading.Event | None = None  # the write pause() ended (not someone else)
        self._cancelled = False
        self.task: asyncio.Task[Any] | None = None

    # --- what the API sees -----------------------------------------------------------------------

    def progress(self) -> dict[str, Any]:
        p = self.progress_
        eta = p.eta(self.clock()) if p is not None else None
        out: dict[str, Any] = {"done": p.done if p else 0, "total": p.total if p else 0, "state": self.state,
                               "current": {"title": self.current["title"]} if self.current else None,
                               "etaSeconds": None if eta is None else round(eta, 1)}
        if self.error:
            out["error"] = self.error
        return out

    @property
    def running(self) -> bool:
        return self.state in RUNNING

    def _announce(self) -> None:
        self.notify("decks.progress", self.progress())

    def start(self, cards: list[dict[str, Any]]) -> None:
        """Write the deck's ``cards`` (as the store lists them) that are not written yet."""
        todo = [c for c in cards if not c["written_at"]]
        self.progress_ = Progress(len(cards), len(cards) - len(todo), self.clock())
        self.task = asyncio.ensure_future(self._run(todo))

    def pause(self) -> None:
        if not self.running:
            raise ValueError(f"no deck is being written (the last one is {self.state})")
        if self.state != "paused":
            self._running.clear()
            self._paused_write = self._cancel
            self._cancel.set()  # the write waiting for a tag ends; resume asks again
            self.state = "paused"
            self._announce()

    def resume(self) -> None:
        if self.state != "paused":
            raise ValueError(f"the deck is not paused (it is {self.state})")
        self.state = "writing"
        self._running.set()
        self._announce()

    def cancel(self) -> None:
        if not self.running:
            raise ValueError(f"no deck is being written (the last one is {self.state})")
        self._cancelled = True
        self._cancel.set()
        self._running.set()

    async def stop(self) -> None:
        """Daemon stop: end the write out now; the deck's progress is already in SQLite."""
        self._cancelled = True
        self._cancel.set()
        self._running.set()
        if self.task is not None:
            await asyncio.gather(self.task, return_exceptions=True)

    # --- the sitting -------------------------------------------------------------------------------

    async def _run(self, todo: list[dict[str, Any]]) -> None:
        try:
            for card in todo:
                if not await self._write_card(card):
                    return
            self.current = None
            self._end("done")
        except self.fatal as exc:
            self._end("error", getattr(exc, "message", None) or str(exc))
        except Exception as exc:  # the job must end with a state the page can show, never silently
            log.exception("writing deck %s failed", self.name)
            self._end("error", str(exc))

    def _end(self, state: str, error: str = "") -> None:
        self.state, self.error = state, error
        self._announce()

    async def _write_card(self, card: dict[str, Any]) -> bool:
        """Until this card is on a tag (True) or the job is cancelled (False)."""
        assert self.progress_ is not None
        self.current = card
        while True:
            await self._running.wait()
            if self._cancelled:
                self._end("cancelled")
                return False
            if self.state != "waiting":
                self.state = "waiting"
                self._announce()
            cards = await asyncio.to_thread(self.store.deck, self.name)
            exclude = frozenset(c["uid"] for c in cards if c["uid"] and c["item"] != card["item"])
            cancel = self._cancel = threading.Event()
            try:
                token = await self.write(card["text"], exclude, cancel)
            except WriteCancelled:
                if not self._cancelled and cancel is not self._paused_write:  # readers.write.cancel: a pause
                    self._running.clear()
                    self.state = "paused"
                    self._announce()
                continue
            except TagExcluded:  # the last card (or another of this deck's) is still on the reader
                await self.sleep(RETRY_PAUSE)
                continue
            except WriteError as exc:
                if not str(exc).startswith("no tag within"):
                    self.error = str(exc)
                    self._announce()
                    await self.sleep(RETRY_PAUSE)
                continue
            if token.text != card["text"]:
                self.error = "the tag did not read back as written; place it again"
                self._announce()
                continue
            self.state, self.error = "writing", ""
            await asyncio.to_thread(self.store.card_written, self.name, card["item"], token.uid)
            self.progress_.card_done()
            log.info("deck %s: %s written (%d/%d)", self.name, card["title"], self.progress_.done, self.progress_.total)
            self._announce()
            return True
