"""`tagd deck write | labels`: a RomM or PlayRen library as a box of cards, one tag after another.

``deck write`` opens the reader itself (no daemon needed; stop a daemon that holds the same reader). For each item
not yet written it says which card to place, judges the tag that arrives (:func:`tagd.integrations.decks.judge`),
writes and verifies it, and records it in SQLite before asking for the next — so Ctrl-C, a crash or kill -9 loses
at most the card in hand, and running the same command again carries on where it stopped.
"""

from __future__ import annotations

import argparse
import asyncio
import queue
import sys
import time
from pathlib import Path
from typing import Any

from tagd.cli.services import credentials, load, open_store, romm_account


def register(sub: argparse._SubParsersAction) -> None:
    deck = sub.add_parser("deck", help="cards from a RomM or PlayRen library: write them, print their labels")
    dsub = deck.add_subparsers(dest="deck_command", metavar="COMMAND", required=True)
    write = dsub.add_parser("write", help="write one card per game, asking for a blank tag each time")
    labels = dsub.add_parser("labels", help="a PDF sheet of card labels for a deck")
    for p in (write, labels):
        p.add_argument("--from", dest="source", choices=["romm", "playren"], required=True)
        p.add_argument("--platform", action="append", default=[], metavar="SLUG", help="RomM platform (repeatable)")
        p.add_argument("--search", default="", metavar="TEXT", help="only titles containing TEXT")
        p.add_argument("--template", metavar="ZAPSCRIPT",
                       help="card text; RomM default '@{system}/{name}', PlayRen default '{renpyDir}/{launcher}'")
        p.add_argument("--config", metavar="FILE")
    write.add_argument("--reader", metavar="CONNECT", help="e.g. pn532uart:/dev/ttyUSB0 (default: first detected)")
    write.add_argument("--overwrite", action="store_true", help="write over a tag holding another game's card")
    write.add_argument("--dry-run", action="store_true", help="list the cards and their ZapScript; write nothing")
    write.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for each tag (default 300)")
    write.set_defaults(func=cmd_deck_write)
    labels.add_argument("-o", "--output", required=True, metavar="FILE.pdf")
    labels.add_argument("--size", default="cr80", help="cr80 (85.6×54 mm, default), square (50 mm), mini (54×34 mm)")
    labels.add_argument("--page", default="a4", choices=["a4", "letter"])
    labels.add_argument("--no-covers", action="store_true", help="do not download cover art")
    labels.set_defaults(func=cmd_deck_labels)


# --- the deck's items ---------------------------------------------------------------------------------


def build_deck(args: argparse.Namespace, config: Any, store: Any) -> tuple[str, list[dict[str, Any]]]:
    from tagd.integrations import decks
    from tagd.integrations.deck_source import DeckError
    from tagd.integrations.http import ServiceError

    try:
        name, items = asyncio.run(_collect(args, config, store))
    except decks.TemplateError as exc:
        raise SystemExit(f"tagd: --template: {exc}") from None
    except (ServiceError, DeckError) as exc:
        raise SystemExit(f"tagd: {exc}") from None
    store.plan_deck(name, items)
    return name, store.deck(name, [i["item"] for i in items])


async def _collect(args: argparse.Namespace, config: Any, store: Any) -> tuple[str, list[dict[str, Any]]]:
    from tagd.integrations.client import ServiceClient
    from tagd.integrations.deck_source import collect

    creds = credentials(config)
    account = romm_account(config) if args.source == "romm" and creds.load("romm") else None
    try:
        return await collect(args.source, store, creds=creds, romm=account, client=ServiceClient,
                             platforms=args.platform, search=args.search, template=args.template,
                             warn=lambda text: print(f"warning: {text}", file=sys.stderr))
    finally:
        if account is not None:
            await account.http.aclose()


# --- writing --------------------------------------------------------------------------------------------


def cmd_deck_write(args: argparse.Namespace) -> int:
    config = load(args)
    store = open_store(config)
    try:
        name, cards = build_deck(args, config, store)
        if args.dry_run:
            for c in cards:
                mark = "✓" if c["written_at"] else " "
                print(f"{mark} {c['title']}\t{c['text']}")
            print(f"{len(cards)} card(s), {sum(1 for c in cards if c['written_at'])} already written",
                  file=sys.stderr)
            return 0
        return write_deck(args, store, name, cards)
    finally:
        store.close()


def write_deck(args: argparse.Namespace, store: Any, name: str, cards: list[dict[str, Any]]) -> int:
    from tagd.cli.readers import _pick, _run_worker
    from tagd.integrations.decks import Progress, judge
    from tagd.readers.base import ReaderAdded, ReaderLost, TagGone, TagSeen, WriteError, WriteRequest

    todo = [c for c in cards if not c["written_at"]]
    progress = Progress(len(cards), len(cards) - len(todo), time.monotonic())
    if not todo:
        print(f"{progress.line(time.monotonic())} all {len(cards)} cards of this deck are written")
        return 0
    worker, events = _run_worker(_pick(args.reader))
    on_reader: set[str] = set()  # uids used in this sitting that must be taken away before the next card
    try:
        ev = events.get(timeout=10)
        if not isinstance(ev, ReaderAdded):
            print(f"tagd deck: reader not ready: {ev}", file=sys.stderr)
            return 1
        for card in todo:
            print(f"{progress.line(time.monotonic())}  place a blank tag for {card['title']}", flush=True)
            deadline = time.monotonic() + args.timeout
            while True:
                try:
                    ev = events.get(timeout=max(0.1, deadline - time.monotonic()))
                except queue.Empty:
                    print(f"tagd deck: no tag within {args.timeout:g} s; run the same command to carry on",
                          file=sys.stderr)
                    return 1
                if isinstance(ev, (TagGone, ReaderLost)):
                    on_reader.clear()
                    continue
                if not isinstance(ev, TagSeen) or ev.token.uid in on_reader:
                    continue
                uid, text = ev.token.uid, ev.token.text
                current = store.deck(name)
                verdict = judge(card, uid, text, current, args.overwrite)
                on_reader.add(uid)
                if verdict.action == "refuse":
                    print(f"  {verdict.reason}", flush=True)
                    continue
                if verdict.action == "write":
                    try:
                        seen = worker.submit_write(WriteRequest(card["text"], target_uid=uid, timeout=10)).result(30)
                    except WriteError as exc:
                        print(f"  not written: {exc}; place the tag again", flush=True)
                        on_reader.discard(uid)
                        continue
                    if seen.token.text != card["text"]:
                        print("  the tag did not read back as written; place it again", flush=True)
                        on_reader.discard(uid)
                        continue
                    if args.overwrite:
                        store.forget_tag(uid)
                store.card_written(name, card["item"], uid)
                progress.card_done()
                print(f"  written: {card['title']}" + (" (it already was)" if verdict.action == "already" else "")
                      + "; take the tag away", flush=True)
                break
        print(f"{progress.line(time.monotonic())}  the deck is complete", flush=True)
        return 0
    except KeyboardInterrupt:
        print("\nstopped; run the same command to carry on", file=sys.stderr)
        return 130
    finally:
        worker.stop()


# --- labels ---------------------------------------------------------------------------------------------------


def cmd_deck_labels(args: argparse.Namespace) -> int:
    from tagd.integrations import labels

    config = load(args)
    store = open_store(config)
    try:
        _, cards = build_deck(args, config, store)
    finally:
        store.close()
    covers = {} if args.no_covers else asyncio.run(_covers(args, config, cards))
    try:
        pages = labels.render(cards, args.output, args.size, args.page, covers)
    except ValueError as exc:
        raise SystemExit(f"tagd: {exc}") from None
    print(f"{args.output}: {len(cards)} label(s) on {pages} page(s)")
    return 0


async def _covers(args: argparse.Namespace, config: Any, cards: list[dict[str, Any]]) -> dict[str, str]:
    from tagd.integrations.client import ServiceClient
    from tagd.integrations.deck_source import fetch_covers

    return await fetch_covers(credentials(config).load(args.source), Path(config.database).parent / "covers", cards,
                              ServiceClient)
