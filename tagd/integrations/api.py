"""JSON-RPC methods for play sessions and the services' link state (tagd's own; not in Zaparoo's API).

- ``sessions`` ``{status?: open|pending|synced|failed, limit?: 1-1000}`` → ``{sessions: [...], counts: {...}}``
- ``sessions.retry`` ``{ids?: [int]}`` → ``{retried: n}``: quarantined sessions back to the queue, and a sync now
- ``integrations`` → ``{retroshelf: {state, linked, …, sessions}, romm: {…, catalog}, playren: {…}}`` (no secrets)

The notification ``sessions.added`` carries each finished session as ``sessions`` lists it.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from tagd.daemon.api.jsonrpc import Dispatcher, RpcError, params_of
from tagd.integrations.store import STATUSES, session_json

if TYPE_CHECKING:
    from tagd.daemon.api.env import ApiEnv


class SessionsParams(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)
    status: str | None = None
    limit: int = Field(default=100, ge=1, le=1000)


class RetryParams(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)
    ids: list[int] | None = None


def register(rpc: Dispatcher, env: "ApiEnv") -> None:
    def runtime() -> Any:
        integrations = getattr(env, "integrations", None)
        if integrations is None or not hasattr(integrations, "store"):
            raise RpcError("play sessions are not running (tagd is starting or stopping)")
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
