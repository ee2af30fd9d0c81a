"""Messages waiting for one client, bounded in bytes (not in messages: one answer can be 10 MB, another 40 bytes).

A client that stops reading stops draining its outbox; counting messages let one that sent 30 requests and
read nothing hold 525 MB. Here a message that would take the outbox past ``limit`` bytes is refused
(:meth:`Outbox.put` returns False) and the server drops that client — except into an empty outbox, so one
answer larger than the limit still reaches a client that reads. The bytes are the UTF-8 length of the text,
what goes on the wire, and count the message being written until the writer asks for the next: a client that
does not read holds that one in the socket's buffer, not in the queue.

Ten such clients, each under its own limit, still held 200 MB together (bench/stress.py). An
:class:`AnswerBudget` shared by every client's outbox bounds the answers queued for all of them: past it, a
client with anything still waiting or being written is dropped too (one that reads gets its answer: its outbox
is empty). Broadcasts do not count toward it (one text shared by
every client; bounded per client by its limit).

A broadcast puts one message into every client's outbox; waking every client's writer at once made one turn of
the event loop hold a thousand socket writes (40-90 ms with 1000 WebSocket clients), and a tap's launch, queued
behind them, waited that long (bench/stress.py). A :class:`WakePacer` shared by the outboxes wakes at most
``per_turn`` writers per turn for such puts: the broadcast reaches everyone a few turns later, in the same order,
and the launch's steps run between. Each outbox stays one FIFO, so a client still gets its answers and
notifications in the order they were produced.
"""

from __future__ import annotations

import asyncio
from collections import deque

from tagd.web.intake import PerTurn, Priority

LIMIT = 2 << 20  # bytes queued for one client
ANSWER_BUDGET = 8 << 20  # bytes of answers queued for all clients together
WAKE_PER_TURN = 32  # writers a WakePacer wakes per event-loop turn


class WakePacer(PerTurn):
    """Wakes waiting writers a few per event-loop turn, in the order asked, none while ``priority`` is paused
    (a tap's launch is on its way: tagd.web.intake)."""

    def __init__(self, per_turn: int = WAKE_PER_TURN, priority: Priority | None = None) -> None:
        super().__init__(priority)
        self.per_turn = per_turn
        self._waiting: deque[Outbox] = deque()

    def __len__(self) -> int:
        return len(self._waiting)

    def wake(self, outbox: Outbox) -> None:
        self._waiting.append(outbox)
        self._schedule_turn()

    def _step(self) -> bool:
        for _ in range(min(self.per_turn, len(self._waiting))):
            self._waiting.popleft().wake()
        return bool(self._waiting)


def wire_size(text: str) -> int:
    """UTF-8 bytes of ``text`` (a lone surrogate counted as its 3 bytes, not an error: it is skipped later).
    ASCII text is measured without encoding it (a 2 MB answer made a 2 MB copy just to be counted)."""
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


class AnswerBudget:
    """Bytes of answers queued for (or being written to) every client together: a client with answers already
    waiting gets no more once the total would pass ``limit`` — it is dropped, as for its own limit."""

    def __init__(self, limit: int = ANSWER_BUDGET) -> None:
        self.limit = limit
        self.total = 0


class Outbox:
    def __init__(self, limit: int = LIMIT, pacer: WakePacer | None = None, budget: AnswerBudget | None = None) -> None:
        self.limit = limit
        self.pacer = pacer  # wakes the writer for paced puts (broadcasts); None: at once
        self.budget = budget  # shared by the clients' outboxes: answers (unpaced puts) count toward it
        self.waking = False  # in the pacer's queue
        self.bytes = 0  # queued, and the message being written (until the writer asks for the next)
        self.closed = False
        self._items: deque[tuple[str, int, bool]] = deque()  # (text, size, counted in the budget)
        self._writing = (0, False)  # the size of the message being written, and whether the budget counts it
        self._ready = asyncio.Event()

    def __len__(self) -> int:
        return len(self._items)

    def put(self, text: str, size: int | None = None, paced: bool = False) -> bool:
        """Queue ``text`` (``size``: its :func:`wire_size`, when the caller knows it); False if it does not fit.
        ``paced``: a broadcast — the writer is woken by the pacer, not at once, and the answer budget does not
        count it (one text shared by every client, bounded per client by ``limit``)."""
        if self.closed:
            return False
        size = wire_size(text) if size is None else size
        counted = not paced and self.budget is not None
        if self._items and self.bytes + size > self.limit:
            return False
        if counted and self.bytes and self.budget.total + size > self.budget.limit:  # type: ignore[union-attr]
            return False
        self._items.append((text, size, counted))
        self.bytes += size
        if counted:
            self.budget.total += size  # type: ignore[union-attr]
        if paced and self.pacer is not None:
            if not self._ready.is_set() and not self.waking:
                self.waking = True
                self.pacer.wake(self)
        else:
            self._ready.set()
        return True

    def wake(self) -> None:
        """Let the writer run (the pacer's turn for it came)."""
        self.waking = False
        self._ready.set()

    def close(self) -> None:
        """No more messages: :meth:`get` returns None once the queue is empty (the writer ends); what was queued
        is dropped."""
        self.closed = True
        self._release(self._writing)
        self._writing = (0, False)
        for _, size, counted in self._items:
            self._release((size, counted))
        self._items.clear()
        self._ready.set()

    def _release(self, item: tuple[int, bool]) -> None:
        size, counted = item
        self.bytes -= size
        if counted:
            self.budget.total -= size  # type: ignore[union-attr]

    async def get(self) -> str | None:
        """The next message, in order; None after :meth:`close`. Asking for the next means the last was written."""
        self._release(self._writing)
        self._writing = (0, False)
        while not self._items:
            if self.closed:
                return None
            self._ready.clear()
            await self._ready.wait()
        if self.closed:
            return None
        text, size, counted = self._items.popleft()
        self._writing = (size, counted)
        return text
