"""PlayRen partner API (seeds/002, SPEC §6): games, one game's details, sync status — sans-I/O.

Errors come as ``{"error": "<snake_case>", "message": …}`` and are surfaced as they are (the typed error carries
the code; the message is PlayRen's). The partner key allows 100 requests a minute: :class:`TokenBucket` spends
one token per request client-side so tagd stays under it, and a 429's ``Retry-After`` is obeyed by the client.

A game becomes a card through a template (``{slug}``, ``{launcher}``, ``{renpyDir}``, ``{title}``, ``{id}``):
the default text is the game's launcher path, which the exec core runs (README: PlayRen).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from tagd.integrations.http import BadResponse, Request, Response, build, decipher

SERVICE = "PlayRen"
DEFAULT_BASE_URL = "https://play.ren.bd/api/partners"
RATE = 100  # requests per minute per key
PER = 60.0
DEFAULT_TEMPLATE = "{renpyDir}/{launcher}"
TEMPLATE_FIELDS = ("slug", "launcher", "renpyDir", "title", "id")
_SLUG = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")


class TokenBucket:
    """At most ``rate`` requests in any ``per`` seconds, with bursts of ``burst``; pure (the caller passes the clock).

    A plain bucket of ``rate`` tokens refilled at rate/per allows nearly twice ``rate`` in a sliding minute
    (a full bucket, then the refill). Here burst + refill × per = rate, so no window of ``per`` seconds ever
    holds more than ``rate`` requests — whichever way the server counts its minute."""

    def __init__(self, rate: int = RATE, per: float = PER, now: float = 0.0, burst: int = 10) -> None:
        burst = max(1, min(burst, rate))
        self.capacity = float(burst)
        self.fill_rate = (rate - burst) / per if rate > burst else rate / per
        self.tokens = float(burst)
        self.stamp = now

    def take(self, now: float) -> float:
        """Spend a token: 0 if one was there, else how many seconds to wait before sending (the token is taken)."""
        self.tokens = min(self.capacity, self.tokens + max(0.0, now - self.stamp) * self.fill_rate)
        self.stamp = now
        self.tokens -= 1.0
        if self.tokens >= 0:
            return 0.0
        wait = -self.tokens / self.fill_rate
        self.tokens, self.stamp = 0.0, now + wait  # the wait is spent refilling the token just taken
        return wait


@dataclass(frozen=True)
class Game:
    id: str
    slug: str
    title: str
    developer: str = ""
    status: str = ""
    tags: tuple[str, ...] = ()
    launcher: str = ""
    renpy_dir: str = ""
    thumbnail: str = ""
    servers: int | None = None  # cacheStatus, when the details were fetched
    cached: int | None = None

    @property
    def cached_nowhere(self) -> bool:
        return self.cached is not None and self.cached == 0

    def card_text(self, template: str = DEFAULT_TEMPLATE) -> str:
        values = {"slug": self.slug, "launcher": self.launcher, "renpyDir": self.renpy_dir, "title": self.title,
                  "id": self.id}
        return re.sub(r"\{(" + "|".join(TEMPLATE_FIELDS) + r")\}", lambda m: values[m.group(1)], template)


@dataclass(frozen=True)
class SyncStatus:
    slug: str
    total_servers: int
    cached_on: int
    pending: int


def check_slug(slug: str) -> str:
    if not _SLUG.fullmatch(slug) or len(slug) > 100:
        raise ValueError(f"{slug[:40]!r} is not a PlayRen slug (lower-case letters, digits and hyphens)")
    return slug


def games_request(base: str, key: str) -> Request:
    return build("GET", base, "/games", token=key)


def game_request(base: str, key: str, slug: str) -> Request:
    return build("GET", base, f"/games/{check_slug(slug)}", token=key)


def sync_status_request(base: str, key: str, slug: str) -> Request:
    return build("GET", base, f"/games/{check_slug(slug)}/sync", token=key)


def _game(obj: Any) -> Game:
    if not isinstance(obj, dict) or not isinstance(obj.get("slug"), str):
        raise BadResponse(SERVICE, "a game without a slug")
    cache = obj.get("cacheStatus") if isinstance(obj.get("cacheStatus"), dict) else {}

    def s(key: str) -> str:
        v = obj.get(key)
        return v if isinstance(v, str) else ""

    def n(key: str) -> int | None:
        v = cache.get(key)
        return v if isinstance(v, int) and not isinstance(v, bool) else None

    tags = tuple(t for t in obj.get("tags", []) if isinstance(t, str)) if isinstance(obj.get("tags"), list) else ()
    return Game(s("id"), obj["slug"], s("title") or obj["slug"], s("developer"), s("status"), tags, s("launcher"),
                s("renpyDir"), s("thumbnail"), n("servers"), n("cached"))


def parse_games(resp: Response, now: float) -> list[Game]:
    obj = decipher(SERVICE, resp, now)
    if not isinstance(obj, dict) or not isinstance(obj.get("games"), list):
        raise BadResponse(SERVICE, "games answer has no games list", resp.status)
    return [_game(g) for g in obj["games"]]


def parse_game(resp: Response, now: float) -> Game:
    return _game(decipher(SERVICE, resp, now))


def parse_sync_status(resp: Response, now: float) -> SyncStatus:
    obj = decipher(SERVICE, resp, now)
    if not isinstance(obj, dict):
        raise BadResponse(SERVICE, "sync answer is not an object", resp.status)

    def n(key: str) -> int:
        v = obj.get(key, 0)
        return v if isinstance(v, int) and not isinstance(v, bool) else 0

    return SyncStatus(str(obj.get("slug", "")), n("totalServers"), n("cachedOn"), n("pendingSync"))
