"""RomM's library copied into the local ``romm_roms`` table, incrementally.

The first sync pages through everything (cheap pages, SPEC §6); each later one asks only for ROMs
``updated_after`` the newest ``updated_at`` already stored, so a library of 10,000 ROMs costs one small request
when nothing changed. The cursor is stored after the pages it covers, so an interrupted sync starts again
from where the last complete one ended (rows are upserts: a page fetched twice changes nothing).
"""

from __future__ import annotations

import asyncio
from typing import Any, Iterable

from tagd.integrations.romm import Rom
from tagd.integrations.store import ROM_COLUMNS, IntegrationStore

CURSOR_KEY = "romm.updated_after"


def rom_row(rom: Rom) -> dict[str, Any]:
    return {c: getattr(rom, c) for c in ROM_COLUMNS}


async def sync_catalog(account: Any, store: IntegrationStore, platform_ids: Iterable[int] = (),
                       full: bool = False) -> int:
    """Fetch new and changed ROMs into the store; returns how many rows were written."""
    cursor = "" if full else await asyncio.to_thread(store.get_state, CURSOR_KEY)
    newest = cursor
    written = 0
    async for page in account.pages(platform_ids=list(platform_ids), updated_after=cursor):
        written += await asyncio.to_thread(store.upsert_roms, page.items)
        newest = max([newest, *(r.updated_at for r in page.items if r.updated_at)])
    if newest and newest != cursor and not list(platform_ids):  # a filtered sync says nothing about the rest
        await asyncio.to_thread(store.set_state, CURSOR_KEY, newest)
    return written
