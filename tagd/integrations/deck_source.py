"""A deck's items from its catalog, and its cover art: what `tagd deck write|labels` and the daemon's ``decks.*``
methods both need, so the two front ends build the same deck (same name, same items, same ZapScript) and a deck
started in one carries on in the other.

The caller owns the I/O objects: it passes the RomM account (or None when RomM is not linked: the local catalog
is used), a function making a :class:`~tagd.integrations.client.ServiceClient` for PlayRen and covers, and where
warnings go (stderr for the CLI, the item's ``warning`` for the page).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, Callable, Iterable

from tagd.integrations import decks

Warn = Callable[[str], None]


class DeckError(Exception):
    """The deck cannot be built (a service not linked, nothing matching); the message says what to do."""


async def collect(source: str, store: Any, *, creds: Any, romm: Any = None, client: Callable[[str], Any],
                  platforms: Iterable[str] = (), search: str = "", template: str | None = None,
                  warn: Warn = lambda _: None) -> tuple[str, list[dict[str, Any]]]:
    """``(deck name, items)``; TemplateError, ServiceError or DeckError when it cannot be built.

    A PlayRen game not cached on any server yet is warned about and gets ``warning`` on its item."""
    platforms = sorted(p for p in platforms if p)
    name = decks.deck_name(source, platform=platforms, search=search, template=template or "")
    if source == "romm":
        roms = await _romm_roms(store, romm, platforms, search, warn)
        items = decks.romm_items(roms, template or decks.ROMM_TEMPLATE)
    elif source == "playren":
        games = await _playren_games(creds, client, search, warn)
        items = decks.playren_items(games, template or decks.PLAYREN_TEMPLATE)
        for item, game in zip(items, games):
            if game.cached_nowhere:
                item["warning"] = "not cached on any PlayRen server yet"
    else:
        raise DeckError(f"unknown catalog {source!r} (romm or playren)")
    if not items:
        raise DeckError("no games match")
    return name, items


async def _romm_roms(store: Any, account: Any, platforms: list[str], search: str, warn: Warn) -> list[dict[str, Any]]:
    from tagd.integrations.catalog import sync_catalog
    from tagd.integrations.http import ServiceError

    if account is not None:
        try:
            await sync_catalog(account, store)
        except ServiceError as exc:
            count = await asyncio.to_thread(store.rom_count)
            if not count:
                raise
            warn(f"{exc}; using the local catalog ({count} ROMs)")
    elif not await asyncio.to_thread(store.rom_count):
        raise DeckError("RomM is not linked (tagd link romm --url URL) and the local catalog is empty")
    out: list[dict[str, Any]] = []
    for p in platforms or [""]:
        out += await asyncio.to_thread(store.roms, search, p)
    return out


async def _playren_games(creds: Any, client: Callable[[str], Any], search: str, warn: Warn) -> list[Any]:
    from tagd.integrations.accounts import PlayRen

    record = creds.load("playren")
    if not record:
        raise DeckError("PlayRen is not linked (tagd link playren)")
    account = PlayRen(client("PlayRen"), record["base_url"], record["key"])
    try:
        listed = [g for g in await account.games() if search.lower() in g.title.lower()]
        games = []
        for g in listed:  # the launcher and cacheStatus are in the details (paced to 100 requests a minute)
            game = await account.game(g.slug)
            if game.cached_nowhere:
                warn(f"{game.title} is not cached on any PlayRen server yet; its card may not start until it is")
            games.append(game)
        return games
    finally:
        await account.http.aclose()


async def fetch_covers(record: dict[str, Any] | None, cache: Path, cards: list[dict[str, Any]],
                       client: Callable[..., Any]) -> dict[str, str]:
    """Cover art into ``cache`` (downloaded once); a card without one gets a blank frame. The service's token goes
    only to the service's own host."""
    from tagd.integrations.http import ServiceError, build

    record = record or {}
    base = record.get("url") or record.get("base_url") or ""
    token = record.get("access_token") or record.get("key") or ""
    cache.mkdir(parents=True, exist_ok=True)
    out: dict[str, str] = {}
    http = client("covers", timeout=10.0, retries=1)
    try:
        for card in cards:
            url = card["cover_url"]
            if not url:
                continue
            file = cache / (card["item"].replace(":", "_") + Path(url.split("?")[0]).suffix[:5])
            if not file.exists():
                absolute = url if "://" in url else base.rstrip("/") + "/" + url.lstrip("/")
                same_host = bool(base) and absolute.startswith(base)
                try:
                    resp = await http.send(build("GET", absolute, "", token=token if same_host else None))
                except ServiceError:
                    continue
                if resp.status != 200 or not resp.body:
                    continue
                file.write_bytes(resp.body)
            out[card["item"]] = str(file)
    finally:
        await http.aclose()
    return out
