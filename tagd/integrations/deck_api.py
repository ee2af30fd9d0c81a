"""JSON-RPC methods for card decks (tagd's own; the page's Decks tab uses them), over the CLI's deck engine.

- ``decks.preview`` ``{from: romm|playren, platform?: str|[str], search?, template?}`` →
  ``{deck, items: [{key, title, platform, zapscript, written, warning?}]}``
- ``decks.write`` ``{same + readerId?}`` → the progress: starts the one background job (:mod:`deck_job`); a
  deck already partly written (by the page or by `tagd deck write` with the same options) carries on
- ``decks.pause`` / ``decks.resume`` / ``decks.cancel`` / ``decks.status`` → ``{done, total, state, current,
  etaSeconds, error?}`` — as the ``decks.progress`` notification
- ``decks.labels`` ``{same filters, size?, page?, covers?}`` → ``{filename, pdf}`` (base64; reportlab loads here)
"""

from __future__ import annotations

import asyncio
import base64
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Literal

from pydantic import BaseModel, ConfigDict, Field

from tagd.daemon.api.jsonrpc import Dispatcher, RpcError, params_of

if TYPE_CHECKING:
    from tagd.daemon.api.env import ApiEnv

IDLE = {"done": 0, "total": 0, "state": "idle", "current": None, "etaSeconds": None}


class DeckParams(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True, populate_by_name=True)
    source: Literal["romm", "playren"] = Field(alias="from")
    platform: str | list[str] = ""
    search: str = Field(default="", max_length=200)
    template: str | None = Field(default=None, min_length=1, max_length=500)

    @property
    def platforms(self) -> list[str]:
        return [self.platform] if isinstance(self.platform, str) else list(self.platform)


class WriteParams(DeckParams):
    readerId: str | None = None


class LabelParams(DeckParams):
    size: str = "cr80"
    page: Literal["a4", "letter"] = "a4"
    covers: bool = False


def register(rpc: Dispatcher, env: "ApiEnv", runtime: Callable[[], Any]) -> None:
    """``runtime()``: the running integrations (tagd/integrations/runtime.py), RpcError while there are none."""

    async def build(p: DeckParams, plan: bool) -> tuple[str, list[dict[str, Any]], list[dict[str, Any]]]:
        """(deck name, items, the deck's cards as stored); the services' errors as the answer's message."""
        from tagd.integrations.deck_source import DeckError, collect
        from tagd.integrations.decks import TemplateError
        from tagd.integrations.http import ServiceError

        rt = runtime()
        try:
            name, items = await collect(p.source, rt.store, creds=rt.creds, romm=rt.romm() if p.source == "romm"
                                        else None, client=rt.client, platforms=p.platforms, search=p.search,
                                        template=p.template)
        except TemplateError as exc:
            raise RpcError(f"invalid params: template: {exc}") from None
        except (DeckError, ServiceError) as exc:
            raise RpcError(str(exc)) from None
        if plan:
            await asyncio.to_thread(rt.store.plan_deck, name, items)
        cards = await asyncio.to_thread(rt.store.deck, name, [i["item"] for i in items])
        return name, items, cards

    def job() -> Any:
        rt = runtime()
        if rt.deck_job is None:
            raise RpcError("no deck is being written (decks.write starts one)")
        return rt.deck_job

    def do(action: str) -> Any:
        j = job()
        try:
            getattr(j, action)()
        except ValueError as exc:
            raise RpcError(str(exc)) from None
        return j.progress()

    @rpc.method("decks.preview")
    async def preview(params: Any) -> Any:
        p = params_of(DeckParams, params)
        name, items, cards = await build(p, plan=False)
        written = {c["item"] for c in cards if c["written_at"]}
        out = []
        for it in items:
            row = {"key": it["item"], "title": it["title"], "platform": it.get("subtitle", ""),
                   "zapscript": it["text"], "written": it["item"] in written}
            if it.get("warning"):
                row["warning"] = it["warning"]
            out.append(row)
        return {"deck": name, "items": out}

    @rpc.method("decks.write")
    async def write(params: Any) -> Any:
        from tagd.integrations.deck_job import WRITE_TIMEOUT, DeckJob

        p = params_of(WriteParams, params)
        rt = runtime()
        if rt.deck_job is not None and rt.deck_job.running:
            raise RpcError(f"a deck is already being written ({rt.deck_job.name}, {rt.deck_job.state}); "
                           "pause, resume or cancel it first")
        env.write_worker(p.readerId)  # no writable reader: say so now, not as the job's first error
        name, _, cards = await build(p, plan=True)
        if rt.deck_job is not None and rt.deck_job.running:  # another decks.write got in while this one built
            raise RpcError(f"a deck is already being written ({rt.deck_job.name})")

        async def write_card(text: str, exclude: frozenset[str], cancel: Any) -> Any:
            return await env.write_text(p.readerId, text, WRITE_TIMEOUT, cancel, exclude)

        rt.deck_job = DeckJob(name, rt.store, write_card, rt.notify, fatal=(RpcError,))
        rt.deck_job.start(cards)
        job = rt.deck_job
        env.pipeline.writing_cards = lambda _reader: job.running and job.state != "paused"
        return rt.deck_job.progress()

    @rpc.method("decks.status")
    async def status(_: Any) -> Any:
        rt = runtime()
        return rt.deck_job.progress() if rt.deck_job is not None else dict(IDLE)

    @rpc.method("decks.pause")
    async def pause(_: Any) -> Any:
        return do("pause")

    @rpc.method("decks.resume")
    async def resume(_: Any) -> Any:
        return do("resume")

    @rpc.method("decks.cancel")
    async def cancel(_: Any) -> Any:
        return do("cancel")

    @rpc.method("decks.labels")
    async def labels(params: Any) -> Any:
        p = params_of(LabelParams, params)
        _, _, cards = await build(p, plan=True)
        rt = runtime()
        covers: dict[str, str] = {}
        if p.covers:
            from tagd.integrations.deck_source import fetch_covers

            record = await asyncio.to_thread(rt.creds.load, p.source)
            covers = await fetch_covers(record, Path(rt.database).parent / "covers", cards,
                                        lambda service, **kw: rt.client(service, **kw))
        try:
            pdf = await asyncio.to_thread(_render, cards, p.size, p.page, covers)
        except ValueError as exc:
            raise RpcError(f"invalid params: {exc}") from None
        filename = f"tagd-{p.source}-labels.pdf"
        return {"filename": filename, "pdf": base64.b64encode(pdf).decode("ascii")}


def _render(cards: list[dict[str, Any]], size: str, page: str, covers: dict[str, str]) -> bytes:
    from tagd.integrations import labels

    fd, path = tempfile.mkstemp(suffix=".pdf")
    os.close(fd)
    try:
        labels.render(cards, path, size, page, covers)
        return Path(path).read_bytes()
    finally:
        os.unlink(path)
