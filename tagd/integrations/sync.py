"""The retroshelf queue: pending sessions go out in batches, oldest first, until none are left.

- **Same values every time.** A batch is read from the rows as stored; nothing in it depends on when it is sent,
  so a batch that reached retroshelf but whose answer was lost (a crash, a reset, a malformed body) is sent again
  as it was and retroshelf's dedupe (sync client, romPath, devicePlayedAt, duration) keeps one copy.
- **Transient** (network, 5xx, 429, an answer that is not JSON): the rows stay pending; wait (``Retry-After`` or a
  backoff from 5 s doubling to 15 min) and go on.
- **401/403**: stop; the link needs renewing (``on_relink`` marks it and tells the user). Nothing is lost.
- **Any other 4xx**: the batch is split in halves until the session retroshelf refuses is alone; that one is
  quarantined (``failed``, shown by ``tagd sessions --failed``, back with ``tagd sessions retry``), the rest go.

Every database call runs in a thread, so a queue of 10,000 sessions never holds up the loop (taps).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any, Awaitable, Callable

from tagd.integrations.store import IntegrationStore

if TYPE_CHECKING:
    from tagd.integrations.accounts import Retroshelf

log = logging.getLogger(__name__)

BATCH = 50
IDLE_CHECK = 60.0  # look at the queue (and the link file) this often even when nothing pokes the worker


class SyncWorker:
    def __init__(self, store: IntegrationStore, account: Callable[[], Retroshelf | None], *, batch: int = BATCH,
                 sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep, clock: Callable[[], float] = time.time,
                 on_relink: Callable[[ServiceError], None] = lambda exc: None,
                 on_synced: Callable[[int], None] = lambda n: None) -> None:
        self.store = store
        self.account = account
        self.batch = max(1, min(batch, 100))
        self.sleep = sleep
        self.clock = clock
        self.on_relink = on_relink
        self.on_synced = on_synced
        self.last_error = ""
        self.last_sync: float | None = None
        self.sent_batches = 0
        self.synced = 0  # sessions synced since start
        self._wake = asyncio.Event()

    def poke(self) -> None:
        """Something changed (a session queued, a retry, a new link): look at the queue now."""
        self._wake.set()

    async def run(self) -> None:
        while True:
            try:
                await self.drain()
            except Exception:  # a bug must not end syncing for good: log it and look again later
                log.exception("retroshelf sync failed")
            # asyncio.wait, not wait_for: on 3.11 wait_for swallows a cancel that lands as the event is set
            # (stop() pokes the worker as it cancels it), and the worker would run on
            waiter = asyncio.ensure_future(self._wake.wait())
            try:
                await asyncio.wait([waiter], timeout=IDLE_CHECK)
            finally:
                waiter.cancel()
            self._wake.clear()

    async def drain(self) -> int:
        """Send everything pending; returns how many sessions were synced. Stops early when the link needs renewing
        or there is no link."""
        synced = 0
        account = self.account()
        if account is None:
            return synced
        # (here, not at the top: a daemon with nothing linked never loads the HTTP layer)
        from tagd.integrations.http import AuthError, BadResponse, ServiceError, backoff, retry_delay

        delays = backoff(5.0, 2.0, 900.0)
        while True:
            account = self.account()
            if account is None:
                return synced
            rows = await asyncio.to_thread(self.store.pending, self.batch)
            if not rows:
                return synced
            try:
                synced += await self._send(account, rows)
            except AuthError as exc:
                self.last_error = str(exc)
                log.warning("retroshelf: %s; link again with tagd link retroshelf (sessions stay queued)", exc.message)
                self.on_relink(exc)
                return synced
            except ServiceError as exc:
                if not (exc.transient or isinstance(exc, BadResponse)):
                    raise
                self.last_error = str(exc)
                delay = retry_delay(exc, next(delays))
                await asyncio.to_thread(self.store.note_attempt, [r["id"] for r in rows], str(exc))
                log.info("retroshelf: %s; %d session(s) stay queued, next try in %.0f s", exc.message, len(rows), delay)
                await self.sleep(delay)
            else:
                delays = backoff(5.0, 2.0, 900.0)
                self.last_error = ""

    async def _send(self, account: Retroshelf, rows: list[dict[str, Any]]) -> int:
        from tagd.integrations.http import RequestRejected
        from tagd.integrations.retroshelf import session_payload

        try:
            result = await account.sync([session_payload(r) for r in rows])
        except RequestRejected as exc:
            if len(rows) == 1:
                log.warning("retroshelf refused session %d (%s): %s; quarantined (tagd sessions --failed)",
                            rows[0]["id"], rows[0]["rom_path"], exc.message)
                await asyncio.to_thread(self.store.mark_failed, [rows[0]["id"]], str(exc))
                return 0
            half = len(rows) // 2  # find the session it refuses; the others still go
            return await self._send(account, rows[:half]) + await self._send(account, rows[half:])
        results = _align(rows, result.results)
        await asyncio.to_thread(self.store.mark_synced, [r["id"] for r in rows], results, self.clock())
        self.sent_batches += 1
        self.synced += len(rows)
        self.last_sync = self.clock()
        self.on_synced(len(rows))
        return len(rows)


def _align(rows: list[dict[str, Any]], results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """retroshelf's results in the rows' order: by position when the romPaths agree, else by romPath."""
    if len(results) == len(rows) and all(res.get("romPath") == row["rom_path"] for row, res in zip(rows, results)):
        return results
    by_path = {res.get("romPath"): res for res in results}
    return [by_path.get(row["rom_path"], {}) for row in rows]
