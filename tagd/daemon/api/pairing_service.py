"""Pairing and encrypted sessions wired to the API: ``POST /api/pair/start|finish``, first frames, the client table.

The protocol parts are sans-I/O in :mod:`tagd.daemon.api.pairing`; this module is the thin layer that feeds them
requests and the store. They are imported on first use — a PIN shown, a pairing request, an encrypted frame — so a
daemon nobody pairs with never loads ``cryptography`` or ``ecdsa``.

Paired clients live in the SQLite store (which is 0600: it holds their pairing keys); removing one there ends its
ability to open new sessions (a session already open runs until it disconnects, as in Core).
"""

from __future__ import annotations

import base64
import binascii
import asyncio
import json
import logging
import threading
import time
from typing import TYPE_CHECKING, Any

from tagd.web.server import Request, Response, json_response

if TYPE_CHECKING:
    from tagd.daemon.api.pairing.gateway import EncryptionGateway
    from tagd.daemon.api.pairing.manager import PairedClient, PairingManager, RateLimit
    from tagd.daemon.api.pairing.session import FirstFrame, FrameCipher
    from tagd.daemon.store import Store

log = logging.getLogger(__name__)

PAIR_PATHS = ("/api/pair/start", "/api/pair/finish")
MAX_START_BODY = 16 * 1024
MAX_FINISH_BODY = 4 * 1024


def looks_encrypted(text: str | bytes) -> bool:
    """A cheap test before the crypto modules load: could this frame be an encrypted first frame?"""
    data = text if isinstance(text, bytes) else text.encode("utf-8", "replace")
    return data.lstrip()[:1] == b"{" and all(n in data for n in (b'"v"', b'"t"', b'"s"', b'"e"'))


class PairingService:
    def __init__(self, store: Store, notify: Any = None) -> None:
        self.store = store
        self.notify = notify  # (method, params) → None: clients.paired goes to API clients, as Core sends it
        self._manager: PairingManager | None = None
        self._limit: RateLimit | None = None
        self._gateway: EncryptionGateway[PairedClient] | None = None
        # PAKE arithmetic (pure-Python P-256), key derivation and the store's SQLite run in a worker thread, one
        # at a time: the event loop keeps serving taps and other clients meanwhile
        self._work = threading.Lock()

    # --- lazily built parts --------------------------------------------------------
    @property
    def manager(self) -> PairingManager:
        if self._manager is None:
            from tagd.daemon.api.pairing.manager import PairingManager

            self._manager = PairingManager(self.store)
        return self._manager

    @property
    def gateway(self) -> EncryptionGateway[PairedClient]:
        if self._gateway is None:
            from tagd.daemon.api.pairing.gateway import EncryptionGateway

            self._gateway = EncryptionGateway(self.store.client_by_token)
        return self._gateway

    def _rate_ok(self, peer: str) -> bool:
        if self._limit is None:
            from tagd.daemon.api.pairing.manager import RateLimit

            self._limit = RateLimit()
        return self._limit.allow(peer)

    # --- the local side ----------------------------------------------------------------
    async def begin(self, role: str = "") -> dict[str, Any]:
        return await self._in_thread(self._begin, role)  # the client count is a store read

    def _begin(self, role: str) -> dict[str, Any]:
        """``clients.pair.start``: a new PIN; ``expiresAt`` in Unix seconds, ``expiresIn`` in seconds (tagd's)."""
        pin, expires = self.manager.begin(role)
        remaining = expires - self.manager.clock()
        return {"pin": pin, "expiresAt": int(time.time() + remaining), "expiresIn": round(remaining)}

    async def cancel(self) -> None:
        """``clients.pair.cancel``: under the pairing lock, so a PAKE step running now cannot keep the pairing open."""
        if self._manager is not None:
            await self._in_thread(self._manager.cancel)

    def pending(self) -> dict[str, Any] | None:
        if self._manager is None or (p := self._manager.pending()) is None:
            return None
        return {"expiresIn": round(p[1] - self._manager.clock())}

    # --- POST /api/pair/start and /finish ---------------------------------------------------
    async def handle(self, request: Request) -> Response:
        from tagd.daemon.api.pairing.manager import PairingError

        if request.method != "POST":
            return Response(405, "method not allowed", headers=[("allow", "POST")])
        if not self._rate_ok(request.peer):
            return json_response({"error": "rate limit exceeded"}, 429)
        start = request.path == PAIR_PATHS[0]
        if len(request.body) > (MAX_START_BODY if start else MAX_FINISH_BODY):
            return json_response({"error": "invalid request body"}, 400)
        try:
            body = json.loads(request.body)
        except (ValueError, UnicodeDecodeError, RecursionError):
            body = None
        if not isinstance(body, dict):
            return json_response({"error": "invalid request body"}, 400)
        try:
            if start:
                return await self._in_thread(self._start, body)
            response, client = await self._in_thread(self._finish, body, request.peer)
        except PairingError as exc:
            return json_response({"error": exc.message}, exc.status)
        if client is not None and self.notify is not None:  # on the loop: notify reaches asyncio objects
            self.notify("clients.paired", {"clientId": client.client_id, "clientName": client.name})
        return response

    def _start(self, body: dict[str, Any]) -> Response:
        msg_a = _b64(body.get("pake"))
        if not msg_a:
            return json_response({"error": "invalid pake message"}, 400)
        name = body.get("name")
        session, msg_b = self.manager.start(name if isinstance(name, str) else "", msg_a)
        return json_response({"session": session, "pake": base64.b64encode(msg_b).decode()})

    def _finish(self, body: dict[str, Any], peer: str) -> tuple[Response, PairedClient | None]:
        from tagd.daemon.api.pairing.manager import PairingError

        confirm = _b64(body.get("confirm"))
        if not confirm:
            return json_response({"error": "invalid confirmation"}, 400), None
        try:
            client, server_mac = self.manager.finish(body.get("session"), confirm)  # type: ignore[arg-type]
        except PairingError as exc:
            if exc.status in (401, 403):
                log.warning("pairing: failed PIN confirmation from %s (%s)", peer, exc.message)
            raise
        log.info("paired a new API client %r (%s, role %s)", client.name, client.client_id, client.role)
        return json_response({"authToken": client.auth_token, "clientId": client.client_id,
                              "confirm": base64.b64encode(server_mac).decode()}), client

    # --- encrypted WebSocket sessions ---------------------------------------------------
    def first_frame(self, text: str | bytes) -> FirstFrame | None:
        from tagd.daemon.api.pairing.session import first_frame

        return first_frame(text)

    async def establish(self, frame: FirstFrame, peer: str) -> tuple[FrameCipher, bytes, PairedClient]:
        return await self._in_thread(self._establish, frame, peer)

    def _establish(self, frame: FirstFrame, peer: str) -> tuple[FrameCipher, bytes, PairedClient]:
        cipher, plaintext, client = self.gateway.establish(frame, peer)
        self.store.touch_client(client.auth_token)
        return cipher, plaintext, client

    async def _in_thread(self, fn: Any, *args: Any) -> Any:
        def locked() -> Any:
            with self._work:
                return fn(*args)

        return await asyncio.to_thread(locked)


def _b64(value: Any) -> bytes:
    if not isinstance(value, str):
        return b""
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return b""
