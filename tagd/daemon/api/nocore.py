"""What tagd answers for Zaparoo Core's methods when no Zaparoo Core is configured.

With a ``[[core]]`` of type zaparoo, every method tagd does not serve goes to it. Without one, the methods the
Zaparoo App polls on connect or when a page opens get what is true, in the shapes the App checks (it validates
``media`` and ``systems`` strictly and shows an error toast for an error): no media database, nothing playing,
no systems, no launchers, no profiles, no playtime limits. These are read-only questions whose honest answer
is "none". Every other Core method (a search, a launch by title, a profile change) is an error that says why:
code -32601, which the App reads as "this server does not support it" and degrades quietly, with the message
"no Zaparoo Core configured: …". A name Core does not have either is plain "Method not found".
"""

from __future__ import annotations

import copy
from typing import Any

from tagd.daemon.api.jsonrpc import METHOD_NOT_FOUND, NotFound, RpcError

_IDLE_SCRAPE = {"processed": 0, "total": 0, "matched": 0, "skipped": 0, "totalScraped": 0,
                "scraping": False, "done": False, "paused": False}

# The polled read-only methods and their truthful answer without a core (copied per call: callers may mutate).
ANSWERS: dict[str, Any] = {
    "media": {"database": {"exists": False, "indexing": False, "optimizing": False}, "active": []},
    "media.active": None,
    "media.history": {"entries": []},
    "media.history.top": {"entries": []},
    "media.tags": {"tags": []},
    "media.scrape.status": _IDLE_SCRAPE,
    "scrapers": {"scrapers": []},
    "systems": {"systems": []},
    "launchers": {"launchers": []},
    "playtime": {"state": "reset", "sessionActive": False, "limitsEnabled": False},
    "settings.playtime.limits": {"enabled": False, "warnings": []},
    "profiles": {"profiles": []},
    "profiles.active": None,
}

# Zaparoo Core's other methods (pkg/api/models/models.go), which only a core can serve.
CORE_METHODS = frozenset({
    "ui", "ui.respond", "run.script", "media.generate", "media.generate.cancel", "media.generate.resume",
    "media.index", "media.search", "media.tags.update", "media.meta.update", "media.history.latest",
    "media.lookup", "media.meta", "media.image", "media.scrape", "media.scrape.cancel", "media.scrape.resume",
    "media.browse", "media.browse.index", "media.control", "media.active.update", "media.clean.orphans",
    "media.title.parse", "settings.logs.download", "settings.backup", "settings.backup.list",
    "settings.backup.inspect", "settings.backup.delete", "settings.backup.restore", "settings.backup.status",
    "settings.backup.remote.run", "settings.backup.remote.list", "settings.backup.remote.restore",
    "settings.playtime.limits.update", "profiles.new", "profiles.update", "profiles.delete", "profiles.switch",
    "profiles.verify", "launchers.refresh", "settings.auth.claim", "settings.auth.status", "settings.auth.unlink",
    "settings.auth.link", "settings.auth.link.status", "settings.auth.link.cancel", "update.check",
    "update.apply", "input.keyboard", "input.gamepad", "screenshot",
})


def answer(method: str) -> Any:
    """The no-core answer for a Core method: the truthful result, or RpcError -32601 saying no core is
    configured; NotFound for a name that is not Core's either."""
    name = method.lower()
    if name in ANSWERS:
        return copy.deepcopy(ANSWERS[name])
    if name in CORE_METHODS:
        raise RpcError(f"no Zaparoo Core configured: {name} is served by Zaparoo Core "
                       "(add a [[core]] with type = \"zaparoo\" to tagd's config)", METHOD_NOT_FOUND)
    raise NotFound(method)
