"""The API's transports (SPEC §5), on tagd.web (h11 + wsproto):

- WebSocket JSON-RPC on ``/api``, ``/api/v0``, ``/api/v0.1`` (a text frame ``ping`` is answered ``pong``);
  notifications are pushed to every WebSocket client;
- the same JSON-RPC by HTTP POST on those paths;
- server-sent events at ``/api/v0.1/events`` (and ``/api/events``, ``/api/v0/events``, as Core serves them);
- ``GET /run/<text>`` launches (marked unsafe: it comes from outside; ``/r/`` and the deprecated ``/l/`` too),
  ``GET``/``HEAD /health`` → ``OK``.

Clients on loopback need no key; all others need ``Authorization: Bearer <key>`` or ``?key=<key>``, as Core
asks on every route but ``/health``. A browser page may use the WebSocket, POST, SSE and ``/run`` endpoints only
from an allowed origin (origins.py): others get 403, so a web site cannot drive the key-less loopback API from
the user's browser. A request a browser made for a page of another site without an Origin header (an image,
a no-cors fetch: ``Sec-Fetch-Site: cross-site``/``same-site``) is refused on those endpoints too, except a
launch link the user clicked (a top-level navigation, ``Sec-Fetch-User: ?1``). ``/health`` answers every page.

Each WebSocket client has an outbox drained by one task: responses and notifications reach it in the
order they were produced, a broadcast to hundreds of clients costs one queue put each, and a client that
stops reading is dropped when its outbox would pass ``OUTBOX_BYTES`` (tagd.web.outbox) — with a warning in
the log — instead of holding memory or the loop; an event stream that stops reading is ended the same way.
While ``MAX_IN_FLIGHT`` of a client's requests are running its socket is not read, so what one client can make
tagd hold is bounded by that many answers being built plus its outbox.
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
from tagd.web.outbox import Outbox, wire_size
from tagd.web.server import HttpServer, Request, Response, Stream, Upgrade, json_response, json_text
from tagd.web.websocket import WebSocket, WebSocketClosed

log = logging.getLogger(__name__)

API_PATHS = ("/api", "/api/v0", "/api/v0.1")
EVENTS_PATHS = ("/api/events", "/api/v0/events", "/api/v0.1/events")
RUN_PREFIXES = ("/run/", "/r/", "/l/")
OUTBOX_BYTES = 4 << 20  # queued for one client (WebSocket or event stream); past this it is dropped
MAX_IN_FLIGHT = 8  # requests of one WebSocket client running at once; past this its socket is not read
MAX_MESSAGE = 1 << 20
HEARTBEAT = 30.0


def is_loopback(request: Request) -> bool:
    """The peer is this machine (127.0.0.0/8, ::1, or 127.x seen through a dual-stack IPv6 socket)."""
    return loopback_address(request.peer)


def _from_another_site(request: Request) -> bool:
    """A browser made this request for another site's page without saying which (no Origin: an image, a
    no-cors fetch, a script navigating) — not a launch link the user clicked (Sec-Fetch-User: ?1)."""
    site = request.headers.get("sec-fetch-site", "").lower()
    clicked = request.headers.get("sec-fetch-mode") == "navigate" and request.headers.get("sec-fetch-user") == "?1"
    return site in ("cross-site", "same-site") and not clicked


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
        self.clients: dict[WebSocket, Outbox] = {}
        self.sse: set[Outbox] = set()
        self.dropped = 0  # clients dropped for not reading (diagnostics, the bench)
        self.http = HttpServer(self._route, max_body=MAX_MESSAGE)
        self.port = 0

    # --- lifecycle ----------------------------------------------------------
    async def start(self, host: str, port: int) -> None:
        self.port = await self.http.start(host, port)
        self.origins = OriginPolicy(self.port, self.allowed_origins)  # the app's own origins carry the port

    async def close(self) -> None:
        for outbox in list(self.sse):
            outbox.close()
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
            # health checks work from any page, as with Zaparoo Core; the page cannot read them
            if request.method == "OPTIONS" or request.path != "/health":
                return Response(403, f"origin {origin} is not allowed (add it to [api] allowed_origins)")
            origin = None
        elif origin is None and _from_another_site(request) and request.path != "/health":
            return Response(403, "a request from another site's page (add the page's origin to [api] allowed_origins)")
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
        if path == "/health" and method == "HEAD":
            return Response(200, "OK")  # the server sends the head only
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
        size = wire_size(text)
        for ws, outbox in list(self.clients.items()):
            self._send(ws, outbox, text, size)
        for outbox in list(self.sse):
            if not outbox.put(text, size):
                self._drop("an event stream", outbox)
                self.sse.discard(outbox)
                outbox.close()  # the stream ends; the client may reconnect

    def _send(self, ws: WebSocket, outbox: Outbox, text: str, size: int | None = None) -> None:
        """Queue a message for a WebSocket client; one whose outbox is full is not reading: drop it."""
        if not outbox.put(text, size):
            self._drop("a WebSocket client", outbox)
            self.clients.pop(ws, None)
            ws.abort()  # it reads nothing, so it would not read a close frame either

    def _drop(self, what: str, outbox: Outbox) -> None:
        self.dropped += 1
        log.warning("dropping %s that stopped reading (%d messages, %d bytes queued)", what, len(outbox), outbox.bytes)

    @staticmethod
    async def _drain(ws: WebSocket, outbox: Outbox) -> None:
        """The one writer of a client: sends its outbox in order until the socket goes away.
        A message that cannot be sent (it cannot be encoded) is skipped and logged, never the end of the writer:
        a writer that died would leave the client connected and answered by nothing."""
        logged = False
        try:
            while (message := await outbox.get()) is not None:
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
        outbox = Outbox(OUTBOX_BYTES)
        self.clients[ws] = outbox
        writer = asyncio.ensure_future(self._drain(ws, outbox))
        tasks: set[asyncio.Task[Any]] = set()
        room = asyncio.Event()  # set when one of its requests finishes

        def finished(task: asyncio.Task[Any]) -> None:
            tasks.discard(task)
            room.set()

        try:
            async for data in ws:
                if data == "ping":
                    self._send(ws, outbox, "pong", 4)
                    continue
                while len(tasks) >= MAX_IN_FLIGHT and ws in self.clients:
                    room.clear()
                    await room.wait()  # its requests are not answered as fast as it sends: read on when one is
                # each request runs on its own: readers.write may wait 30 s for a tag
                task = asyncio.ensure_future(self._answer(ws, outbox, data))
                tasks.add(task)
                task.add_done_callback(finished)
        finally:
            self.clients.pop(ws, None)
            outbox.close()
            writer.cancel()
            for t in tasks:
                t.cancel()

    async def _answer(self, ws: WebSocket, outbox: Outbox, data: str | bytes) -> None:
        response = await self.dispatcher.handle_text(data)
        if response is not None and ws in self.clients:
            self._send(ws, outbox, json_text(response))

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
        outbox = Outbox(OUTBOX_BYTES)
        self.sse.add(outbox)
        logged = False
        try:
            yield b": connected\n\n"
            while (text := await outbox.get()) is not None:
                try:
                    chunk = f"data: {text}\n\n".encode()
                except UnicodeEncodeError as exc:  # one bad event is skipped, not the end of the stream
                    if not logged:
                        log.error("an API event could not be sent to an event stream, skipped: %r", exc)
                        logged = True
                    continue
                yield chunk
        finally:
            self.sse.discard(outbox)

    async def _run(self, text: str) -> Response:
        if not text:
            return Response(400, "no text to run")
        await self.run_text(Token(type=TYPE_API, text=text, source="http", unsafe=True))
        return Response(200, "OK")
