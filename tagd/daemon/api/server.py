"""The API's transports (SPEC §5), on aiohttp:

- WebSocket JSON-RPC on ``/api``, ``/api/v0``, ``/api/v0.1`` (a text frame ``ping`` is answered ``pong``);
  notifications are pushed to every WebSocket client;
- the same JSON-RPC by HTTP POST on those paths;
- server-sent events at ``/api/v0.1/events``;
- ``GET /run/<text>`` launches (marked unsafe: it comes from outside), ``GET /health`` → ``OK``.

Clients on loopback need no key; all others need ``Authorization: Bearer <key>`` or ``?key=<key>``.

Each WebSocket client has an outbox drained by one task: responses and notifications reach it in the
order they were produced, a broadcast to hundreds of clients costs one queue put each, and a client that
stops reading is dropped (its backlog passes ``MAX_BACKLOG``) instead of holding memory or the loop.
Frames are not compressed: messages are small JSON, and per-client deflate would cost more than it saves.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
from typing import Any, Callable

from aiohttp import WSMsgType, web

from tagd.daemon.api.jsonrpc import Dispatcher, notification
from tagd.token import TYPE_API, Token

log = logging.getLogger(__name__)

API_PATHS = ("/api", "/api/v0", "/api/v0.1")
MAX_BACKLOG = 1000  # queued messages for one client; past this a notification drops it (it is not reading)


def is_loopback(request: web.Request) -> bool:
    """The peer is this machine (127.0.0.0/8, ::1, or 127.x seen through a dual-stack IPv6 socket)."""
    try:
        ip = ipaddress.ip_address((request.remote or "").split("%")[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback


class ApiServer:
    def __init__(self, dispatcher: Dispatcher, keys: list[str], run_text: Callable[[Token], Any],
                 is_local: Callable[[web.Request], bool] = is_loopback) -> None:
        self.dispatcher = dispatcher
        self.keys = set(keys)
        self.run_text = run_text
        self.is_local = is_local
        self.clients: dict[web.WebSocketResponse, asyncio.Queue[str]] = {}
        self.sse: set[asyncio.Queue[str]] = set()
        self.runner: web.AppRunner | None = None
        self.port = 0
        self.app = web.Application(middlewares=[self._auth], client_max_size=1 << 20)
        for path in API_PATHS:
            self.app.router.add_get(path, self._websocket)
            self.app.router.add_post(path, self._post)
        self.app.router.add_get("/api/v0.1/events", self._events)
        self.app.router.add_get("/run/{text:.*}", self._run)
        self.app.router.add_get("/health", self._health)

    # --- lifecycle ----------------------------------------------------------
    async def start(self, host: str, port: int) -> None:
        self.runner = web.AppRunner(self.app, access_log=None, handle_signals=False)
        await self.runner.setup()
        site = web.TCPSite(self.runner, host, port, reuse_address=True)
        await site.start()
        sockets = getattr(site._server, "sockets", None) or []
        self.port = sockets[0].getsockname()[1] if sockets else port

    async def close(self) -> None:
        for ws in list(self.clients):
            await ws.close()
        self.clients.clear()
        for q in list(self.sse):
            q.put_nowait("")
        if self.runner is not None:
            await self.runner.cleanup()

    # --- auth ---------------------------------------------------------------
    @web.middleware
    async def _auth(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if self.is_local(request):
            return await handler(request)
        auth = request.headers.get("Authorization", "")
        key = auth[7:].strip() if auth.lower().startswith("bearer ") else request.query.get("key", "")
        if not self.keys or key not in self.keys:
            return web.json_response({"error": "unauthorized: an API key is required for non-local clients"},
                                     status=401)
        return await handler(request)

    # --- notifications -------------------------------------------------------
    def broadcast(self, method: str, params: Any = None) -> None:
        text = json.dumps(notification(method, params), ensure_ascii=False)
        for ws, outbox in list(self.clients.items()):
            if outbox.qsize() >= MAX_BACKLOG:
                log.warning("dropping an API client that stopped reading (%d messages queued)", outbox.qsize())
                self.clients.pop(ws, None)
                asyncio.ensure_future(ws.close())
            else:
                outbox.put_nowait(text)
        for q in list(self.sse):
            if q.qsize() < MAX_BACKLOG:
                q.put_nowait(text)

    @staticmethod
    async def _drain(ws: web.WebSocketResponse, outbox: asyncio.Queue[str]) -> None:
        """The one writer of a client: sends its outbox in order until the socket goes away."""
        try:
            while True:
                await ws.send_str(await outbox.get())
        except (ConnectionError, RuntimeError):
            pass

    # --- handlers -----------------------------------------------------------
    async def _websocket(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(heartbeat=30, max_msg_size=1 << 20, compress=False)
        if not ws.can_prepare(request).ok:
            return web.Response(status=400, text="WebSocket (or POST) expected")
        await ws.prepare(request)
        outbox: asyncio.Queue[str] = asyncio.Queue()
        self.clients[ws] = outbox
        writer = asyncio.ensure_future(self._drain(ws, outbox))
        tasks: set[asyncio.Task[Any]] = set()
        try:
            async for msg in ws:
                if msg.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                    continue
                if msg.data == "ping":
                    outbox.put_nowait("pong")
                    continue
                while outbox.qsize() >= MAX_BACKLOG and not writer.done():
                    await asyncio.sleep(0.01)  # the client sends faster than it reads: stop reading for a while
                # each request runs on its own: readers.write may wait 30 s for a tag
                task = asyncio.ensure_future(self._answer(outbox, msg.data))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
        finally:
            self.clients.pop(ws, None)
            writer.cancel()
            for t in tasks:
                t.cancel()
        return ws

    async def _answer(self, outbox: asyncio.Queue[str], data: str | bytes) -> None:
        response = await self.dispatcher.handle_text(data)
        if response is not None:
            outbox.put_nowait(json.dumps(response, ensure_ascii=False))

    async def _post(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        response = await self.dispatcher.handle_text(body)
        if response is None:
            return web.Response(status=204)
        return web.json_response(response, dumps=lambda o: json.dumps(o, ensure_ascii=False))

    async def _events(self, request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await resp.prepare(request)
        q: asyncio.Queue[str] = asyncio.Queue()
        self.sse.add(q)
        try:
            await resp.write(b": connected\n\n")
            while True:
                text = await q.get()
                if not text:
                    break
                await resp.write(f"data: {text}\n\n".encode())
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self.sse.discard(q)
        return resp

    async def _run(self, request: web.Request) -> web.StreamResponse:
        text = request.match_info["text"]
        if not text:
            return web.Response(status=400, text="no text to run")
        token = Token(type=TYPE_API, text=text, source="http", unsafe=True)
        await self.run_text(token)
        return web.Response(text="OK")

    async def _health(self, request: web.Request) -> web.StreamResponse:
        return web.Response(text="OK")
