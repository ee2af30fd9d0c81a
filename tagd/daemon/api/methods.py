"""The JSON-RPC methods tagd serves itself (Zaparoo names and payloads, seeds/001 and SPEC §5).

Everything else goes to the zaparoo core when one is configured (the proxy fallback), so the Zaparoo App can
browse media through tagd; without one, nocore.py answers. ``version``: the pair's Core API level (corelevel.py).
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
from typing import Any

from pydantic import Field

from tagd.daemon.api import corelevel, settings_methods
from tagd.daemon.api.env import ApiEnv
from tagd.daemon.api.jsonrpc import CLIENT_GONE, Dispatcher, Params, RpcError, params_of
from tagd.daemon.config import ConfigError
from tagd.daemon.mappings import Mapping, MappingError
from tagd.daemon.store import StoreError
from tagd.readers.base import Capability, ReaderWorker, WriteCancelled, WriteError, WriteRequest
from tagd.token import TYPE_API, Token

WRITE_TIMEOUT = 30.0
HISTORY_PAGE = 25  # tokens.history entries by default: Zaparoo Core answers the latest 25
HISTORY_PAGE_MAX = 100  # the largest page asked for (Core's media.history limit)
HISTORY_PAGE_BYTES = 256 * 1024  # a page ends early once its texts and data reach this much (≥ 1 entry)
# Core answers every failed readers.write, a cancelled one included, with this error (code 1); tagd adds why.
WRITE_FAILED = "error writing to reader"


class RunParams(Params):
    type: str = ""
    uid: str = ""
    text: str = ""
    data: str = ""
    unsafe: bool = False


class MappingsListParams(Params):
    includeReadOnly: bool = False


class WriteParams(Params):
    text: str = Field(min_length=1)
    readerId: str | None = None


class HistoryParams(Params):
    """tokens.history paging, as Core pages media.history: a page size and the cursor of the previous answer."""

    limit: int = Field(HISTORY_PAGE, gt=0, le=HISTORY_PAGE_MAX)
    cursor: str | None = None


class CancelParams(Params):
    readerId: str | None = None


class IdParams(Params):
    id: Any  # a number, or the string form `mappings` lists: checked by _row_id


class MappingParams(Params):
    """mappings.new / mappings.update fields; which were given is ``model_fields_set`` (the defaults are unused)."""

    label: str = ""
    enabled: bool = True
    type: str = ""
    match: str = ""
    pattern: str = ""
    override: str = ""


MAPPING_FIELDS = ("label", "enabled", "type", "match", "pattern", "override")
_HEX = re.compile(r"(?:[0-9a-f]{2})*")


def _hex_data(raw: str) -> str:
    """run's data: a hexadecimal string (spaces allowed between bytes, any case), as lower-case hex."""
    data = raw.replace(" ", "").lower()
    if not _HEX.fullmatch(data):
        raise RpcError("invalid params: data must be a hexadecimal string")
    return data


def _capabilities(cap: Capability) -> list[str]:
    return [name for flag, name in ((Capability.READ, "read"), (Capability.WRITE, "write"),
                                    (Capability.REMOVABLE, "removable")) if flag in cap]


MAX_ROW_ID = 2**63 - 1  # SQLite's INTEGER


def _row_id(raw: Any) -> int:
    """Zaparoo lists ids as strings ("1") and takes them back as numbers: accept both (not true, 1.0 or null),
    but only what can be a row id: 0 … 2**63-1, and as a string only ASCII digits ("٢" is not 2, nor " 2")."""
    if isinstance(raw, str) and raw.isascii() and raw.isdigit():
        value = int(raw) if len(raw) <= 19 else MAX_ROW_ID + 1  # (a 5000-digit string would not even convert)
    elif isinstance(raw, int) and not isinstance(raw, bool):
        value = raw
    else:
        raise RpcError(f"invalid params: id: {repr(raw)[:40]} is not an id")
    if not 0 <= value <= MAX_ROW_ID:
        raise RpcError(f"invalid params: id: {repr(raw)[:40]} is out of range (0 to {MAX_ROW_ID})")
    return value


def _history_cursor(cursor: str | None) -> int | None:
    """Core's cursor format (base64 of ``{"lastId": n}``) → the row id to page on from; None = the newest."""
    if not cursor:
        return None
    try:
        last = json.loads(base64.b64decode(cursor, validate=True))["lastId"]
    except (ValueError, TypeError, KeyError, RecursionError):
        raise RpcError("invalid params: cursor: not a cursor from a tokens.history answer") from None
    if not isinstance(last, int) or isinstance(last, bool) or not 0 < last <= MAX_ROW_ID:
        raise RpcError("invalid params: cursor: not a cursor from a tokens.history answer")
    return last


def history_page(rows: list[Any], limit: int) -> dict[str, Any]:
    """At most ``limit`` entries (``rows`` holds one more if there are), ending early at HISTORY_PAGE_BYTES, with
    Core's pagination object: the answer to one small request stays small however long the stored texts are."""
    entries, size = [], 0
    for row in rows[:limit]:
        if entries and size >= HISTORY_PAGE_BYTES:
            break
        entries.append(row)
        size += len(row.text) + len(row.data) + len(row.uid)
    more = len(entries) < len(rows)
    pagination: dict[str, Any] = {"hasNextPage": more, "pageSize": limit}
    if more:
        pagination["nextCursor"] = base64.b64encode(json.dumps({"lastId": entries[-1].id}).encode()).decode()
    return {"entries": [e.to_json() for e in entries], "pagination": pagination}


def file_mapping_json(mapping: Mapping) -> dict[str, Any]:
    """A file mapping as Core lists it: no id or added time (no database row), source "file", read-only."""
    return mapping.to_json() | {"id": "", "added": "", "label": mapping.label or mapping.source,
                                "source": "file", "readOnly": True}


async def _write_while_caller_waits(worker: ReaderWorker, request: WriteRequest) -> None:
    """The write, ended when its caller goes (its WebSocket closed: this task is cancelled; its HTTP connection
    closed: CLIENT_GONE): the next tag must not get a text nobody waits for."""
    gone = CLIENT_GONE.get()
    watch = asyncio.ensure_future(gone.wait()) if gone is not None else None
    if watch is not None:
        watch.add_done_callback(lambda t: t.cancelled() or request.cancel.set())
    try:
        await worker.write(request)
    except asyncio.CancelledError:
        request.cancel.set()  # the worker may be running it: cancelling the future alone would not stop it
        raise
    finally:
        if watch is not None:
            watch.cancel()


def build(env: ApiEnv) -> Dispatcher:
    """The dispatcher with tagd's methods, each seeing only ``env``; anything else goes to ``env.proxy``."""
    rpc = Dispatcher(fallback=env.proxy, reported=(StoreError,))

    @rpc.method("version")
    async def version(_: Any) -> Any:
        core_version, core_platform = await env.core_version()
        level = corelevel.api_level(rpc.methods, core_version)
        # fronting a core, its platform: the App's platform-specific controls are about the machine it runs on
        return {"platform": core_platform or "tagd", "version": corelevel.version_string(level)}

    @rpc.method("health")
    async def health(_: Any) -> Any:
        return {"status": "ok"}

    @rpc.method("readers")
    async def readers(_: Any) -> Any:
        out = []
        for info in env.reader_infos():
            out.append({"id": info.path, "readerId": info.reader_id, "driver": info.driver, "info": info.name,
                        "connected": True, "capabilities": _capabilities(info.capabilities)})
        for driver, path, why in env.readers_not_open():  # its readerId is known once it opens (USB topology)
            out.append({"id": path, "readerId": "", "driver": driver, "info": f"not connected: {why}",
                        "connected": False, "capabilities": [], "error": why})
        return {"readers": out}

    @rpc.method("readers.write")
    async def readers_write(params: Any) -> Any:
        p = params_of(WriteParams, params)
        worker, reader_id = env.write_worker(p.readerId)
        request = WriteRequest(p.text, timeout=WRITE_TIMEOUT, reader_id=reader_id)
        try:
            # One write per reader at a time: a second one would be written to the same tag right after the first,
            # and the first caller told "written" for a text the tag no longer holds. Zaparoo serialises them;
            # tagd refuses the second at once (begin_write's WriteError), so its caller knows (cancel the pending
            # one to replace it).
            with env.begin_write(reader_id, request):
                await _write_while_caller_waits(worker, request)
        except WriteCancelled as exc:
            raise RpcError(f"{WRITE_FAILED}: {exc}") from None  # an error, as Core answers a cancelled write
        except WriteError as exc:
            raise RpcError(str(exc)) from None
        # Not launched: the worker hands the pipeline this tag as TagSeen(written=True). Marking its uid here as
        # well would also swallow the user's next real tap of it (Zaparoo skips only the one sighting).
        return {}

    @rpc.method("readers.write.cancel")
    async def readers_write_cancel(params: Any) -> Any:
        p = params_of(CancelParams, params)
        env.cancel_writes(p.readerId)
        return {}

    @rpc.method("tokens")
    async def tokens(_: Any) -> Any:
        last = env.pipeline.last
        return {"active": [t.to_json() for t in env.pipeline.active.values()],
                "last": last.to_json() if last else None}

    @rpc.method("tokens.history")
    async def history(params: Any) -> Any:
        # Core takes no params here (it ignores any): only an object with limit or cursor pages
        p = params_of(HistoryParams, params if isinstance(params, dict) else {})
        rows = await asyncio.to_thread(env.store.history, p.limit + 1, _history_cursor(p.cursor))
        page = history_page(rows, p.limit)
        if not p.model_fields_set:  # the document's answer (Core's): {"entries": …}; paging callers get pagination
            del page["pagination"]
        return page

    @rpc.method("run")
    @rpc.method("launch")  # Core's deprecated name for run, still used by scripts: the same method
    async def run(params: Any) -> Any:
        p = RunParams(text=params) if isinstance(params, str) else params_of(RunParams, params)
        data = _hex_data(p.data)
        if not (p.uid or p.text or data):
            raise RpcError("invalid params: one of uid, text or data is required")
        token = Token(type=p.type or TYPE_API, uid=p.uid, text=p.text, data=data, source="api", unsafe=p.unsafe)
        await env.run_token(token)
        return {}

    @rpc.method("confirm")  # launch the token the launch guard staged, as Core; an error if there is none
    async def confirm(_: Any) -> Any:
        try:
            env.pipeline.confirm()
        except LookupError as exc:
            raise RpcError(str(exc)) from None

    @rpc.method("stop")
    async def stop(_: Any) -> Any:
        await env.stop_media()
        return {}

    @rpc.method("mappings")
    async def mappings(params: Any) -> Any:
        p = params_of(MappingsListParams, params)
        rows = await asyncio.to_thread(env.store.mappings)
        out = [m.to_json() | {"source": "database", "readOnly": False} for m in rows]
        if p.includeReadOnly:  # as Core 2.15+: the file mappings too, only when asked (older clients get the others)
            out += [file_mapping_json(m) for m in env.file_mappings]
        return {"mappings": out}

    def _mapping_fields(params: Any, required: bool) -> dict[str, Any]:
        if not isinstance(params, dict):
            raise RpcError("invalid params: expected an object")
        p = params_of(MappingParams, params)
        fields = {k: getattr(p, k) for k in MAPPING_FIELDS if k in p.model_fields_set}
        if required:
            for k in ("type", "match", "pattern", "override"):
                if k not in fields:
                    raise RpcError(f"invalid params: {k} is required")
        return fields

    async def _mapping_call(fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            result = await asyncio.to_thread(fn, *args, **kwargs)
        except MappingError as exc:
            raise RpcError(f"invalid params: {exc}") from None
        env.refresh_mappings()
        return result

    @rpc.method("mappings.new")
    async def mappings_new(params: Any) -> Any:
        fields = _mapping_fields(params, required=True)
        try:
            mapping = Mapping.build(**fields)
        except MappingError as exc:
            raise RpcError(f"invalid params: {exc}") from None
        await _mapping_call(env.store.add_mapping, mapping)
        return {}

    @rpc.method("mappings.update")
    async def mappings_update(params: Any) -> Any:
        p = params_of(IdParams, params)
        await _mapping_call(env.store.update_mapping, _row_id(p.id), **_mapping_fields(params, required=False))
        return {}

    @rpc.method("mappings.test")
    async def mappings_test(params: Any) -> Any:
        """tagd's own: what the mappings make of a token, without launching it (the page's "test a token")."""
        p = params_of(RunParams, params if params is not None else {})
        token = Token(type=p.type or TYPE_API, uid=p.uid, text=p.text, data=_hex_data(p.data))
        table = env.pipeline.mappings
        mapping = await asyncio.to_thread(table.match, token) if table.slow_for(token) else table.match(token)
        if mapping is None:
            return {"match": None, "text": token.text}
        shown = file_mapping_json(mapping) if mapping.source else \
            mapping.to_json() | {"source": "database", "readOnly": False}
        return {"match": shown, "text": mapping.override}

    @rpc.method("mappings.delete")
    async def mappings_delete(params: Any) -> Any:
        p = params_of(IdParams, params)
        await _mapping_call(env.store.delete_mapping, _row_id(p.id))
        return {}

    def _skipped(problems: list[str]) -> None:
        if problems:  # the rest did load: say what did not, so the user can fix it
            raise RpcError("reloaded, but skipped what has errors: " + "; ".join(problems))

    @rpc.method("mappings.reload")
    async def mappings_reload(_: Any) -> Any:
        try:
            _skipped(await env.reload_mappings())
        except ConfigError as exc:
            raise RpcError(f"not reloaded: {exc}") from None
        return {}

    settings_methods.register(rpc, env)  # settings, settings.update

    @rpc.method("settings.reload")
    async def settings_reload(_: Any) -> Any:
        try:
            _skipped(await env.reload_config())
        except ConfigError as exc:
            raise RpcError(str(exc)) from None
        return {}

    @rpc.method("inbox")
    async def inbox(_: Any) -> Any:
        rows = await asyncio.to_thread(env.store.inbox)
        return {"messages": [m.to_json() for m in rows]}

    @rpc.method("inbox.delete")
    async def inbox_delete(params: Any) -> Any:
        p = params_of(IdParams, params)
        if not await asyncio.to_thread(env.store.delete_inbox, _row_id(p.id)):
            raise RpcError(f"no inbox message {p.id}")
        return {}

    @rpc.method("inbox.clear")
    async def inbox_clear(_: Any) -> Any:
        await asyncio.to_thread(env.store.clear_inbox)
        return {}

    return rpc


__all__ = ["build"]
