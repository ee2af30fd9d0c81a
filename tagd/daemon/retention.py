"""How long tokens.history is kept: Zaparoo Core's ``[readers] scan_history`` days, pruned at start, then daily.

Unset keeps everything (tagd kept all history before it read Core's key), and so does 0, as in Core.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Callable

log = logging.getLogger(__name__)

DAY = 86_400.0


async def prune_history_daily(store: Any, days: Callable[[], int | None], every: float = DAY) -> None:
    """Run for the daemon's life: ``store.prune_history(days())`` now and every ``every`` seconds. ``days`` is
    asked each time, so a reloaded config applies at the next pass."""
    while True:
        keep = days()
        if keep:
            try:
                removed = await asyncio.to_thread(store.prune_history, keep)
            except Exception:  # a locked or full database must not end the daemon
                log.exception("pruning history failed")
            else:
                if removed:
                    log.info("history: %d launches older than %d days removed ([readers] scan_history)", removed, keep)
        await asyncio.sleep(every)
