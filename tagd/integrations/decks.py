"""Card decks: a catalog (RomM or PlayRen) turned into ZapScript cards, and the rules for writing them one by one.

Pure parts, used by ``tagd deck write`` (tagd/cli/decks.py) and ``tagd deck labels``:

- :func:`romm_items` / :func:`playren_items`: catalog entries → deck items ``{item, title, subtitle, text,
  cover_url}`` through a template (``{name}``, ``{system}`` … for RomM; ``{slug}``, ``{launcher}`` … for PlayRen);
- :func:`judge`: what to do with the tag the user just placed for an item — write it, count it as already written
  (a crash between writing and recording), or refuse it because it holds another item's card;
- :class:`Progress`: ``n/N`` with an ETA from the pace of this sitting.

A deck's name is its source and filters, so running the same command again resumes the same deck: its items and
which of them are written are in SQLite (``deck_cards``), committed card by card.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Iterable

from tagd.integrations.playren import DEFAULT_TEMPLATE as PLAYREN_TEMPLATE
from tagd.integrations.playren import Game
from tagd.integrations.sessions import PLATFORM_HINTS

ROMM_TEMPLATE = "@{system}/{name}"  # Zaparoo launches by system and title
ROMM_FIELDS = ("id", "name", "fs_name", "fs_name_no_ext", "platform", "system", "md5", "sha1", "crc")
SYSTEM_FOR_SLUG = {}  # RomM platform slug → Zaparoo system ID (the first system with that hint)
for _system, _slug in PLATFORM_HINTS.items():
    SYSTEM_FOR_SLUG.setdefault(_slug, _system)


class TemplateError(ValueError):
    pass


def fill(template: str, values: dict[str, str], fields: Iterable[str]) -> str:
    """``{field}`` replaced in one pass (a value containing ``{name}`` stays literal); an unknown field is an error."""
    known = set(fields)
    for name in re.findall(r"\{([A-Za-z_]+)\}", template):
        if name not in known:
            raise TemplateError(f"unknown template field {{{name}}} (known: {', '.join(sorted(known))})")
    return re.sub(r"\{(" + "|".join(sorted(known)) + r")\}", lambda m: values[m.group(1)], template)


def deck_name(source: str, **filters: Any) -> str:
    parts = [f"{k}={','.join(map(str, v)) if isinstance(v, (list, tuple)) else v}"
             for k, v in sorted(filters.items()) if v]
    return " ".join([source, *parts])


def romm_items(roms: Iterable[dict[str, Any]], template: str = ROMM_TEMPLATE) -> list[dict[str, Any]]:
    out = []
    for r in roms:
        name = r["name"] or r["fs_name_no_ext"] or r["fs_name"]
        values = {"id": str(r["id"]), "name": name, "fs_name": r["fs_name"], "fs_name_no_ext": r["fs_name_no_ext"],
                  "platform": r["platform_slug"], "system": SYSTEM_FOR_SLUG.get(r["platform_slug"], r["platform_slug"]),
                  "md5": r["md5_hash"], "sha1": r["sha1_hash"], "crc": r["crc_hash"]}
        out.append({"item": f"romm:{r['id']}", "title": name, "subtitle": r["platform_name"] or r["platform_slug"],
                    "text": fill(template, values, ROMM_FIELDS), "cover_url": r.get("cover_url", "")})
    return out


def playren_items(games: Iterable[Game], template: str = PLAYREN_TEMPLATE) -> list[dict[str, Any]]:
    fields = ("slug", "launcher", "renpyDir", "title", "id")
    out = []
    for g in games:
        values = {"slug": g.slug, "launcher": g.launcher, "renpyDir": g.renpy_dir, "title": g.title, "id": g.id}
        out.append({"item": f"playren:{g.slug}", "title": g.title, "subtitle": g.developer or "PlayRen",
                    "text": fill(template, values, fields), "cover_url": g.thumbnail})
    return out


@dataclass(frozen=True)
class Verdict:
    action: str  # "write" | "already" | "refuse"
    reason: str = ""


def judge(item: dict[str, Any], uid: str, text: str, cards: list[dict[str, Any]], overwrite: bool) -> Verdict:
    """What to do with the tag (uid, current text) placed for ``item``, given the deck's cards.

    A tag already holding this item's text is this item's card (written before a crash took the record with it).
    A tag recorded as another item's card, or holding another item's text, is refused unless ``overwrite``."""
    if text and text == item["text"]:
        return Verdict("already")
    if not overwrite:
        for card in cards:
            if card["item"] == item["item"]:
                continue
            if (uid and card["uid"] == uid) or (text and text == card["text"]):
                return Verdict("refuse", f"this tag holds the card for {card['title']}; place a blank tag "
                                         "(or use --overwrite)")
    return Verdict("write")


class Progress:
    """``[ 12/120] 10%  ETA 4m05s`` from the cards written in this sitting (earlier ones do not time anything)."""

    def __init__(self, total: int, done: int, now: float) -> None:
        self.total = total
        self.done = done
        self.started = now
        self.done_here = 0

    def card_done(self) -> None:
        self.done += 1
        self.done_here += 1

    def eta(self, now: float) -> float | None:
        """Seconds left at this sitting's pace; None before its first card (or when nothing is left)."""
        if not self.done_here or self.done >= self.total:
            return None
        return (now - self.started) / self.done_here * (self.total - self.done)

    def line(self, now: float) -> str:
        pct = 100 * self.done // self.total if self.total else 100
        left = self.eta(now)
        eta = "" if left is None else f"  ETA {int(left // 60)}m{int(left % 60):02d}s"
        width = len(str(self.total))
        return f"[{self.done:>{width}}/{self.total}] {pct:>3}%{eta}"
