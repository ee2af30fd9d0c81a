"""Messages waiting for one client, bounded in bytes (not in messages: one answer can be 10 MB, another 40 bytes).

A client that stops reading stops draining its outbox; counting messages let one that sent 30 requests and
read nothing hold 525 MB. Here a message that would take the outbox past ``limit`` bytes is refused
(:meth:`Outbox.put` returns False) and the server drops that client — except into an empty outbox, so one
answer larger than the limit still reaches a client that reads. The bytes are the UTF-8 length of the text,
what goes on the wire.
"""

from __future__ import annotations

import asyncio
from collections import deque

LIMIT = 4 << 20  # bytes queued for one client


def wire_size(text: str) -> int:
    """UTF-8 bytes of ``text`` (a lone surrogate counted as its 3 bytes, not an error: it is skipped later)."""
    return len(text.encode("utf-8", "surrogatepass"))


class Outbox:
    def __init__(self, limit: int = LIMIT) -> None:
        self.limit = limit
        self.bytes = 0
        self.closed = False
        self._items: deque[tuple[str, int]] = deque()
        self._ready = asyncio.Event()

    def __len__(self) -> int:
        return len(self._items)

    def put(self, text: str, size: int | None = None) -> bool:
        """Queue ``text`` (``size``: its :func:`wire_size`, when the caller knows it); False if it does not fit."""
        if self.closed:
            return False
        size = wire_size(text) if size is None else size
        if self._items and self.bytes + size > self.limit:
            return False
        self._items.append((text, size))
        self.bytes += size
        self._ready.set()
        return True

    def close(self) -> None:
        """No more messages: :meth:`get` returns None once the queue is empty (the writer ends)."""
        self.closed = True
        self._ready.set()

    async def get(self) -> str | None:
        """The next message, in order; None after :meth:`close` (what was queued is dropped)."""
        while not self._items:
            if self.closed:
                return None
            self._ready.clear()
            await self._ready.wait()
        if self.closed:
            return None
        text, size = self._items.popleft()
        self.bytes -= size
        return text
