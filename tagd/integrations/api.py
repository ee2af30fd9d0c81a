"""JSON-RPC methods for play sessions and the services' link state (tagd's own; not in Zaparoo's API).

- ``sessions`` ``{status?: open|pending|synced|failed, limit?: 1-1000}`` → ``{sessions: [...], counts: {...}}``
- ``sessions.retry`` ``{ids?: [int]}`` → ``{retried: n}``: quarantined sessions back to the queue, and a sync now
- ``integrations`` → ``{retroshelf: {state, linked, …, sessions}, romm: {…, catalog}, playren: {…}}`` (no secrets)
- ``integrations.link`` ``{service: "retroshelf", clientId?, baseUrl?}`` → ``{userCode, verificationUri,
  verificationUriComplete?, expiresIn, interval, qrSvg}``: the device flow starts; its polling runs in the daemon
  and each change is the notification ``integrations.changed`` ``{service, state, linked, error?}`` (state:
  waiting, linked, denied, expired, failed, unlinked). clientId and baseUrl default to the last link's.
- ``integrations.unlink`` ``{service}`` → ``{unlinked: bool}``: its credentials are deleted

The card deck methods (``decks.*``) are in :mod:`tagd.integrations.deck_api`.

The notification ``sessions.added`` carries each finished session as ``sessions`` lists it.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from tagd.daemon.api.jsonrpc import Dispatcher, RpcError, params_of
from tagd.integrations import deck_api
from tagd.integrations.store import STATUSES, session_json

if TYPE_CHECKING:
    from tagd.daemon.api.env import ApiEnv


class SessionsParams(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)
    status: str | None = None
    limit: int = Field(default=100, ge=1, le=1000)


class LinkParams(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)
    service: Literal["retroshelf", "romm", "playren"]
    clientId: str | None = Field(default=None, min_length=1, max_length=200)
    baseUrl: str | None = Field(default=None, min_length=1, max_length=500)


class RetryParams(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)
    ids: list[int] | None = None


def register(rpc: Dispatcher, env: "ApiEnv") -> None:
    def runtime() -> Any:
        integrations = getattr(env, "integrations", None)
        if integrations is None or not hasattr(integrations, "store"):
            raise RpcError("play sessions, links and decks are not running (tagd is starting or stopping)")
        return integrations

    @rpc.method("sessions")
    async def sessions(params: Any) -> Any:
        p = params_of(SessionsParams, params or {})
        if p.status is not None and p.status not in STATUSES:
            raise RpcError(f"invalid params: status must be one of {', '.join(STATUSES)}")
        rt = runtime()
        rows = await asyncio.to_thread(rt.store.sessions, p.status, p.limit)
        return {"sessions": [session_json(r) for r in rows], "counts": await asyncio.to_thread(rt.store.counts)}

    @rpc.method("sessions.retry")
    async def sessions_retry(params: Any) -> Any:
        p = params_of(RetryParams, params or {})
        rt = runtime()
        n = await asyncio.to_thread(rt.store.retry, p.ids)
        rt.poke()
        return {"retried": n}

    @rpc.method("integrations")
    async def integrations(_: Any) -> Any:
        return await asyncio.to_thread(runtime().status)

    @rpc.method("integrations.link")
    async def link(params: Any) -> Any:
        from tagd.integrations.http import ServiceError

        p = params_of(LinkParams, params)
        if p.service != "retroshelf":
            raise RpcError(f"invalid params: service: {p.service} links with a token, not a code: "
                           f"run tagd link {p.service} on this machine")
        try:
            return await runtime().links.start(p.clientId, p.baseUrl)
        except ValueError as exc:
            raise RpcError(f"invalid params: {exc}") from None
        except ServiceError as exc:
            raise RpcError(str(exc)) from None

    @rpc.method("integrations.unlink")
    async def unlink(params: Any) -> Any:
        p = params_of(LinkParams, params)
        return {"unlinked": await runtime().links.unlink(p.service)}

    deck_api.register(rpc, env, runtime)
