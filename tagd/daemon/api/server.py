"""The API's transports (SPEC §5), on tagd.web (h11 + wsproto):

- WebSocket JSON-RPC on ``/api``, ``/api/v0``, ``/api/v0.1`` (a text frame ``ping`` is answered ``pong``);
  notifications are pushed to every WebSocket client;
- the same JSON-RPC by HTTP POST on those paths;
- server-sent events at ``/api/v0.1/events`` (and ``/api/events``, ``/api/v0/events``, as Core serves them);
- ``GET /run/<text>`` launches (marked unsafe: it comes from outside; ``/r/`` and the deprecated ``/l/`` too),
  ``GET /health`` → ``OK``.

Clients on loopback need no key; all others need ``Authorization: Bearer <key>`` or ``?key=<key>``.
A browser page may use the WebSocket, POST and SSE endpoints only from an allowed origin (origins.py):
others get 403, so a web site cannot drive the key-less loopback API from the user's browser.

Each WebSocket client has an outbox drained by one task: responses and notifications reach it in the
order they were produced, a broadcast to hundreds of clients costs one queue put each, and a client that
stops reading is dropped (its backlog passes ``MAX_BACKLOG``) instead of holding memory or the loop.
Frames are not compressed: messages are small JSON, and per-client deflate would cost more than it saves.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, AsyncIterator, Callable

from tagd.daemon.api.jsonrpc import CLIENT_GONE, Dispatcher, notification
from tagd.daemon.api.origins import OriginPolicy
from tagd.daemon.forwarders import INSTANCE_HEADER, LOOP_DETECTED
from tagd.token import TYPE_API, Token
from tagd.web.admission import loopback_address
from tagd.web.server import HttpServer, Request, Response, Stream, Upgrade, json_response, json_text
from tagd.web.websocket import WebSocket, WebSocketClosed

log = logging.getLogger(__name__)

API_PATHS = ("/api", "/api/v0", "/api/v0.1")
EVENTS_PATHS = ("/api/events", "/api/v0/events", "/api/v0.1/events")
RUN_PREFIXES = ("/run/", "/r/", "/l/")
MAX_BACKLOG = 1000  # queued messages for one client; past this a notification drops it (it is not reading)
MAX_MESSAGE = 1 << 20
HEARTBEAT = 30.0


def is_loopback(request: Request) -> bool:
    """The peer is this machine (127.0.0.0/8, ::1, or 127.x seen through a dual-stack IPv6 socket)."""
    return loopback_address(request.peer)


class ApiServer:
    def __init__(self, dispatcher: Dispatcher, keys: list[str], run_text: Callable[[Token], Any],
                 is_local: Callable[[Request], bool] = is_loopback, allowed_origins: list[str] = (),
                 instance: str = "") -> None:
        self.dispatcher = dispatcher
        self.instance = instance  # this daemon's id: a request carrying it came from our own forwarders
        self.keys = set(keys)
        self.allowed_origins = list(allowed_origins)
        self.origins = OriginPolicy(0, self.allowed_origins)
        self.run_text = run_text
        self.is_local = is_local
        self.clients: dict[WebSocket, asyncio.Queue[str]] = {}
        self.sse: set[asyncio.Queue[str]] = set()
        self.http = HttpServer(self._route, max_body=MAX_MESSAGE)
        self.port = 0

    # --- lifecycle ----------------------------------------------------------
    async def start(self, host: str, port: int) -> None:
        self.port = await self.http.start(host, port)
        self.origins = OriginPolicy(self.port, self.allowed_origins)  # the app's own origins carry the port

    async def close(self) -> None:
        for q in list(self.sse):
            q.put_nowait("")
        self.clients.clear()
        await self.http.close()

    # --- routing and auth -----------------------------------------------------
    def authorized(self, request: Request) -> bool:
        if self.is_local(request):
            return True
        auth = request.headers.get("authorization", "")
        key = auth[7:].strip() if auth.lower().startswith("bearer ") else request.query.get("key", "")
        return bool(self.keys) and key in self.keys

    async def _route(self, request: Request) -> Response | Stream | Upgrade:
        if self.instance and request.headers.get(INSTANCE_HEADER.lower()) == self.instance:
            return Response(LOOP_DETECTED, "this request came from this tagd: a [[core]] url points back at tagd")
        origin = request.headers.get("origin")
        if origin is not None and not self.origins.allows(origin, request.local):
            # launch links and health checks work from any page, as with Zaparoo Core; the page cannot read them
            if request.method == "OPTIONS" or not (request.path.startswith(RUN_PREFIXES) or request.path == "/health"):
                return Response(403, f"origin {origin} is not allowed (add it to [api] allowed_origins)")
            origin = None
        if request.method == "OPTIONS":  # a CORS preflight: carries no key, names the method it wants
            return Response(204, headers=self.origins.cors_headers(origin, preflight=True))
        result = await self._answer_request(request)
        if isinstance(result, (Response, Stream)):
            result.headers += self.origins.cors_headers(origin)
        return result

    async def _answer_request(self, request: Request) -> Response | Stream | Upgrade:
        if not self.authorized(request):
            return json_response({"error": "unauthorized: an API key is required for non-local clients"}, 401)
        path, method = request.path, request.method
        if path in API_PATHS:
            if method == "POST":
                return await self._post(request)
            if method != "GET":
                return Response(405, "method not allowed", headers=[("allow", "GET, POST")])
            if request.wants_websocket:
                return Upgrade(self._websocket, max_message=MAX_MESSAGE, heartbeat=HEARTBEAT)
            return Response(400, "WebSocket (or POST) expected")
        if path not in EVENTS_PATHS and path != "/health" and not path.startswith(RUN_PREFIXES):
            return Response(404, "not found")
        if method != "GET":
            return Response(405, "method not allowed", headers=[("allow", "GET")])
        if path in EVENTS_PATHS:
            return Stream(self._events(), "text/event-stream", [("cache-control", "no-cache")])
        if path == "/health":
            return Response(200, "OK")
        return await self._run(path.split("/", 2)[2])

    # --- notifications -------------------------------------------------------
    def broadcast(self, method: str, params: Any = None) -> None:
        text = json_text(notification(method, params))
        for ws, outbox in list(self.clients.items()):
            if outbox.qsize() >= MAX_BACKLOG:
                log.warning("dropping an API client that stopped reading (%d messages queued)", outbox.qsize())
                self.clients.pop(ws, None)
                ws.abort()  # it reads nothing, so it would not read a close frame either
            else:
                outbox.put_nowait(text)
        for q in list(self.sse):
            if q.qsize() < MAX_BACKLOG:
                q.put_nowait(text)

    @staticmethod
    async def _drain(ws: WebSocket, outbox: asyncio.Queue[str]) -> None:
        """The one writer of a client: sends its outbox in order until the socket goes away.
        A message that cannot be sent (it cannot be encoded) is skipped and logged, never the end of the writer:
        a writer that died would leave the client connected and answered by nothing."""
        logged = False
        try:
            while True:
                message = await outbox.get()
                try:
                    await ws.send(message)
                except WebSocketClosed:
                    raise
                except Exception as exc:
                    if not logged:
                        log.error("an API message could not be sent to a client, skipped: %r", exc)
                        logged = True
        except WebSocketClosed:
            pass

    # --- handlers -----------------------------------------------------------
    async def _websocket(self, ws: WebSocket) -> None:
        outbox: asyncio.Queue[str] = asyncio.Queue()
        self.clients[ws] = outbox
        writer = asyncio.ensure_future(self._drain(ws, outbox))
        tasks: set[asyncio.Task[Any]] = set()
        try:
            async for data in ws:
                if data == "ping":
                    outbox.put_nowait("pong")
                    continue
                while outbox.qsize() >= MAX_BACKLOG and not writer.done():
                    await asyncio.sleep(0.01)  # the client sends faster than it reads: stop reading for a while
                # each request runs on its own: readers.write may wait 30 s for a tag
                task = asyncio.ensure_future(self._answer(outbox, data))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
        finally:
            self.clients.pop(ws, None)
            writer.cancel()
            for t in tasks:
                t.cancel()

    async def _answer(self, outbox: asyncio.Queue[str], data: str | bytes) -> None:
        response = await self.dispatcher.handle_text(data)
        if response is not None:
            outbox.put_nowait(json_text(response))

    async def _post(self, request: Request) -> Response:
        token = CLIENT_GONE.set(request.disconnected)  # a readers.write ends if the client hangs up
        try:
            response = await self.dispatcher.handle_text(request.body)
        finally:
            CLIENT_GONE.reset(token)
        if response is None:
            return Response(204)
        return json_response(response)

    async def _events(self) -> AsyncIterator[bytes]:
        q: asyncio.Queue[str] = asyncio.Queue()
        self.sse.add(q)
        logged = False
        try:
            yield b": connected\n\n"
            while text := await q.get():
                try:
                    chunk = f"data: {text}\n\n".encode()
                except UnicodeEncodeError as exc:  # one bad event is skipped, not the end of the stream
                    if not logged:
                        log.error("an API event could not be sent to an event stream, skipped: %r", exc)
                        logged = True
                    continue
                yield chunk
        finally:
            self.sse.discard(q)

    async def _run(self, text: str) -> Response:
        if not text:
            return Response(400, "no text to run")
        await self.run_text(Token(type=TYPE_API, text=text, source="http", unsafe=True))
        return Response(200, "OK")
