"""The paired-client methods, with Core's names and shapes: ``clients``, ``clients.current``, ``clients.delete``,
``clients.pair.start``, ``clients.pair.cancel``.

All but ``clients.current`` are local-only (Core's rule: pairing and revoking need someone at the device), so a
phone cannot pair more phones or remove others. ``clients.pair.start`` answers ``{pin, expiresAt}`` as Core, plus
``expiresIn`` (seconds) for tagd's own ``tagd pair`` countdown. Roles as Core's: the first paired client is admin,
later ones member unless ``role`` says admin; capabilities name what the caller's role may do.
"""

from __future__ import annotations

import asyncio

from typing import TYPE_CHECKING, Any

from tagd.daemon.api.access import CALLER
from tagd.daemon.api.jsonrpc import Dispatcher, Params, RpcError, params_of
from tagd.daemon.api.pairing.clients import ROLES

if TYPE_CHECKING:
    from tagd.daemon.api.pairing_service import PairingService
    from tagd.daemon.store import Store

ADMIN_CAPABILITIES = ("profiles.manage", "settings.write", "update.apply")
AUTHENTICATED_ONLY = frozenset({"update.apply"})  # an unpaired remote caller (API key, allowed_ips) lacks these


class PairStartParams(Params):
    role: str = ""


class DeleteParams(Params):
    clientId: str = ""


def capabilities() -> tuple[str | None, list[str]]:
    """The caller's effective role (None when not paired) and its capabilities, as Core's permissions package."""
    caller = CALLER.get()
    role = None
    effective = "admin"
    if caller.paired:
        role = caller.role if caller.role in ROLES else "member"
        if not caller.local:
            effective = role
    if effective != "admin":
        return role, []
    authenticated = caller.local or caller.paired
    return role, [c for c in ADMIN_CAPABILITIES if authenticated or c not in AUTHENTICATED_ONLY]


# What a paired member may not do, as Core's handlers require it (settings, profiles, updates are admin's)
REQUIRED_CAPABILITY = {
    "settings.update": "settings.write", "settings.playtime.limits.update": "settings.write",
    "settings.reload": "settings.write", "settings.logs.download": "settings.write",
    "profiles.new": "profiles.manage", "profiles.update": "profiles.manage", "profiles.delete": "profiles.manage",
    "update.apply": "update.apply",
}


def guard(method: str) -> None:
    """The dispatcher's guard: a remote caller whose role lacks a method's capability is refused, as Core does."""
    needed = REQUIRED_CAPABILITY.get(method)
    if needed is None or CALLER.get().local:
        return
    if needed not in capabilities()[1]:
        raise RpcError("client role does not permit this method")


def _local_only() -> None:
    if not CALLER.get().local:
        raise RpcError("method is only available from localhost")


def register(rpc: Dispatcher, pairing: PairingService, store: Store) -> None:
    rpc.guard = guard
    @rpc.method("clients")
    async def clients(params: Any) -> Any:
        _local_only()
        return {"clients": [c.public() for c in await asyncio.to_thread(store.clients)]}

    @rpc.method("clients.current")
    async def current(params: Any) -> Any:
        role, caps = capabilities()
        return {"role": role, "capabilities": caps, "paired": role is not None}

    @rpc.method("clients.delete")
    async def delete(params: Any) -> Any:
        _local_only()
        p = params_of(DeleteParams, params)
        if not p.clientId:
            raise RpcError("clientId is required")
        if not await asyncio.to_thread(store.delete_client, p.clientId):
            raise RpcError(f"failed to delete client: no paired client {p.clientId}")
        return {}

    @rpc.method("clients.pair.start")
    async def pair_start(params: Any) -> Any:
        _local_only()
        p = params_of(PairStartParams, params)
        if p.role and p.role not in ROLES:
            raise RpcError(f"invalid role: {p.role}")
        from tagd.daemon.api.pairing.manager import PairingError

        try:
            return await pairing.begin(p.role)
        except PairingError as exc:
            raise RpcError(f"failed to start pairing: {exc.message}") from None

    @rpc.method("clients.pair.cancel")
    async def pair_cancel(params: Any) -> Any:
        _local_only()
        await pairing.cancel()
        return {}
