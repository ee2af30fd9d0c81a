"""The API's transports (SPEC §5), on tagd.web (h11 + wsproto):

- WebSocket JSON-RPC on ``/api``, ``/api/v0``, ``/api/v0.1`` (a text frame ``ping`` is answered ``pong``);
  notifications are pushed to every WebSocket client;
- the same JSON-RPC by HTTP POST on those paths;
- server-sent events at ``/api/v0.1/events`` (and ``/api/events``, ``/api/v0/events``, as Core serves them);
- ``GET /run/<text>`` launches (marked unsafe: it comes from outside; ``/r/`` and the deprecated ``/l/`` too),
  ``GET``/``HEAD /health`` → ``OK``.

Who may do what is access.py's policy: loopback always; another machine by pairing (``/api/pair/start`` and
``/finish``, then encrypted WebSocket frames as Core's ``docs/api/encryption.md``), by API key
(``Authorization: Bearer <key>`` or ``?key=<key>``) or by being in ``allowed_ips``. A remote WebSocket that may not
talk plaintext is still accepted, and its first message answered -32002 "encryption required" before the close:
that answer is how the Zaparoo App learns it has to pair. Such a connection gets no notifications.
A browser page may use the WebSocket, POST, SSE and ``/run`` endpoints only from an allowed origin (origins.py):
others get 403, so a web site cannot drive the key-less loopback API from the user's browser. A request a browser
made for a page of another site without an Origin header (an image, a no-cors fetch: ``Sec-Fetch-Site:
cross-site``/``same-site``) is refused on those endpoints too, except a launch link the user clicked (a
top-level navigation, ``Sec-Fetch-User: ?1``). ``/health`` answers every page.

Each WebSocket client has an outbox drained by one task: responses and notifications reach it in the
order they were produced, a broadcast to hundreds of clients costs one queue put each, and a client that
stops reading is dropped when its outbox would pass ``OUTBOX_BYTES`` (tagd.web.outbox) — with a warning in
the log — instead of holding memory or the loop; an event stream that stops reading is ended the same way.
While ``MAX_IN_FLIGHT`` of a client's requests are running its socket is not read (a batch counts as that many:
it runs alone), so what one client can make tagd hold is bounded by that many answers being built plus its
outbox; the answers queued for all clients together are bounded too (``ANSWER_BYTES``), and at most
``MAX_BATCHES`` batches are answered at once. Every request (HTTP or WebSocket) passes an
:class:`~tagd.web.intake.Intake` first: a few start per loop turn, so reader events and launches are never queued
behind thousands of requests; a broadcast wakes a few clients' writers per turn (tagd.web.outbox); and while a
tap's launch is on its way to the cores (``priority.during``, which the daemon gives the pipeline), neither
starts anything new. After a large request or answer, or a dropped client, memory is given back (tagd.daemon.heap).
Frames are not compressed: messages are small JSON, and per-client deflate would cost more than it saves.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, AsyncIterator, Callable

from tagd.daemon.api.access import (CALLER, ENCRYPTION_REQUIRED, UNSUPPORTED_VERSION, AccessPolicy, Caller,
                                    is_loopback_address)
from tagd.daemon.api.jsonrpc import CLIENT_GONE, Dispatcher, error, is_batch, notification
from tagd.daemon.api.pairing_service import PAIR_PATHS, looks_encrypted
from tagd.daemon.api.origins import OriginPolicy
from tagd.daemon.forwarders import INSTANCE_HEADER, LOOP_DETECTED
from tagd.daemon.heap import Trimmer
from tagd.token import TYPE_API, Token
from tagd.web.intake import Intake, Priority
from tagd.web.outbox import AnswerBudget, Outbox, WakePacer, wire_size
from tagd.web.server import HttpServer, Request, Response, Stream, Upgrade, json_response, json_text
from tagd.web.websocket import WebSocket, WebSocketClosed

if TYPE_CHECKING:
    from tagd.daemon.api.pairing.session import FrameCipher
    from tagd.daemon.api.pairing_service import PairingService

log = logging.getLogger(__name__)

API_PATHS = ("/api", "/api/v0", "/api/v0.1")
EVENTS_PATHS = ("/api/events", "/api/v0/events", "/api/v0.1/events")
RUN_PREFIXES = ("/run/", "/r/", "/l/")
OUTBOX_BYTES = 2 << 20  # queued for one client (WebSocket or event stream); past this it is dropped
ANSWER_BYTES = 8 << 20  # answers queued for all clients together; past this one with answers waiting is dropped
MAX_IN_FLIGHT = 4  # requests of one WebSocket client running at once; past this its socket is not read
MAX_BATCHES = 2  # batches being answered at once, all WebSocket clients together (each answer is many answers)
MAX_MESSAGE = 1 << 20
HEARTBEAT = 30.0
LARGE = 64 << 10  # characters of a request and its answer after which memory is given back (tagd.daemon.heap)
POLICY_VIOLATION = 1008  # the close code for a refused or tampered encrypted session


def is_loopback(request: Request) -> bool:
    """The peer is this machine (127.0.0.0/8, ::1, or 127.x seen through a dual-stack IPv6 socket)."""
    return is_loopback_address(request.peer)


def _from_another_site(request: Request) -> bool:
    """A browser made this request for another site's page without saying which (no Origin: an image, a
    no-cors fetch, a script navigating) — not a launch link the user clicked (Sec-Fetch-User: ?1)."""
    site = request.headers.get("sec-fetch-site", "").lower()
    clicked = request.headers.get("sec-fetch-mode") == "navigate" and request.headers.get("sec-fetch-user") == "?1"
    return site in ("cross-site", "same-site") and not clicked


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:  # a thread with no loop
        return None


def request_key(request: Request) -> str:
    """The API key a request brings (``Authorization: Bearer`` or ``?key=``), "" for none."""
    auth = request.headers.get("authorization", "")
    return auth[7:].strip() if auth.lower().startswith("bearer ") else request.query.get("key", "")


@dataclass
class Connection:
    """One WebSocket client: its outbox, who it is, and its cipher once it encrypts."""
    outbox: Outbox
    caller: Caller = field(default_factory=Caller)
    live: bool = False  # may receive notifications (it is allowed to talk)
    cipher: FrameCipher | None = None


class ApiServer:
    def __init__(self, dispatcher: Dispatcher, keys: list[str], run_text: Callable[[Token], Any],
                 is_local: Callable[[Request], bool] = is_loopback, allowed_origins: list[str] = (),
                 instance: str = "", access: AccessPolicy | None = None,
                 pairing: PairingService | None = None) -> None:
        self.dispatcher = dispatcher
        self.instance = instance  # this daemon's id: a request carrying it came from our own forwarders
        self.access = access if access is not None else AccessPolicy(keys=keys)
        self.pairing = pairing
        self.allowed_origins = list(allowed_origins)
        self.origins = OriginPolicy(0, self.allowed_origins)
        self.run_text = run_text
        self.is_local = is_local
        self.clients: dict[WebSocket, Connection] = {}
        self.sse: set[Outbox] = set()
        self.dropped = 0  # clients dropped for not reading (diagnostics, the bench)
        # a tap's launch on its way pauses new API work (pipeline.urgent); requests start a few per loop turn
        # (intake) and a broadcast wakes a few clients' writers per turn (pacer), so a tap never waits behind them
        self.priority = Priority()
        self.intake = Intake(priority=self.priority)
        self.pacer = WakePacer(priority=self.priority)
        self.answers = AnswerBudget(ANSWER_BYTES)
        self.heap = Trimmer(busy=self._busy)  # gives memory back after a burst
        self.batches = asyncio.Semaphore(MAX_BATCHES)  # WebSocket batches answered at once, all clients together
        self.http = HttpServer(self._route, max_body=MAX_MESSAGE, after_crowd=self.heap.soon)
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None

    def _busy(self) -> bool:
        """Memory is given back later while a tap's launch is on its way, or while a crowd is still connected."""
        return self.priority.paused or self.http.crowded

    # --- lifecycle ----------------------------------------------------------
    async def start(self, host: str, port: int) -> None:
        self.port = await self.http.start(host, port)
        self._loop = asyncio.get_running_loop()
        self.origins = OriginPolicy(self.port, self.allowed_origins)  # the app's own origins carry the port

    async def close(self) -> None:
        self.heap.close()  # connections closed below ask for no give-back
        for outbox in list(self.sse):
            outbox.close()
        self.clients.clear()
        await self.http.close()

    # --- routing and auth -----------------------------------------------------
    @property
    def keys(self) -> frozenset[str]:
        return self.access.keys

    @keys.setter
    def keys(self, keys: Any) -> None:  # a reload's new [api] keys
        self.access.keys = frozenset(keys)

    def authorized(self, request: Request) -> bool:
        """May this request use the plain HTTP transports (POST, events, /run)?"""
        return self.access.http_allowed(self.is_local(request), request.peer, request_key(request))

    async def _route(self, request: Request) -> Response | Stream | Upgrade:
        await self.intake.admit()
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
        path, method = request.path, request.method
        if path in PAIR_PATHS and self.pairing is not None:
            return await self.pairing.handle(request)
        if path in API_PATHS and method == "GET" and request.wants_websocket:
            # everyone may connect: what a remote client may then do is decided per message (see the module doc)
            return Upgrade(lambda ws: self._websocket(ws, request), max_message=MAX_MESSAGE, heartbeat=HEARTBEAT)
        if path == "/app" or path.startswith("/app/"):
            return self._app(request)
        if path != "/health" and not self.authorized(request):
            return json_response({"error": "unauthorized: pair this client (tagd pair), or use an API key or "
                                           "[service] allowed_ips, for non-local access"}, 401)
        if path in API_PATHS:
            if method == "POST":
                return await self._post(request)
            if method != "GET":
                return Response(405, "method not allowed", headers=[("allow", "GET, POST")])
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

    def _app(self, request: Request) -> Response:
        """tagd's page (tagd.webapp): its files, for those the HTTP rule lets in (a key may come as a cookie)."""
        from tagd import webapp

        if request.method not in ("GET", "HEAD"):
            return Response(405, "method not allowed", headers=[("allow", "GET, HEAD")])
        if request.path == "/app":
            return Response(308, "", headers=[("location", "/app/")])
        key = request_key(request) or webapp.cookie_key(request.headers.get("cookie", ""))
        if not self.access.http_allowed(self.is_local(request), request.peer, key):
            return Response(401, "tagd's page is for this machine, or open it as /app/?key=<an [api] key>")
        found = webapp.lookup(request.path)
        if found is None:
            return Response(404, "not found")
        body, content_type, etag = found
        headers = [*webapp.SECURITY_HEADERS, ("etag", etag)]
        if self.access.key_ok(request.query.get("key")):  # the page's own files load with the key as a cookie (they carry no query)
            headers.append(("set-cookie", f"{webapp.COOKIE}={request.query['key']}; Path=/app/; HttpOnly; "
                                          "SameSite=Strict"))
        if request.headers.get("if-none-match") == etag:
            return Response(304, b"", headers=headers)
        return Response(200, body, content_type, headers)

    # --- notifications -------------------------------------------------------
    def broadcast(self, method: str, params: Any = None) -> None:
        """Every live client gets the notification; from another thread (pairing finishes in one) it is handed to
        the loop, which owns the outboxes and their pacer."""
        if self._loop is not None and _running_loop() is not self._loop:
            self._loop.call_soon_threadsafe(self.broadcast, method, params)
            return
        text = json_text(notification(method, params))
        size = wire_size(text)
        for ws, conn in list(self.clients.items()):
            if conn.live:
                self._send(ws, conn, text, size, paced=True)
        for outbox in list(self.sse):
            if not outbox.put(text, size, paced=True):
                self._drop("an event stream", outbox)
                self.sse.discard(outbox)
                outbox.close()  # the stream ends; the client may reconnect

    def _send(self, ws: WebSocket, conn: Connection, text: str, size: int | None = None, paced: bool = False) -> None:
        """Queue a message for a WebSocket client; one whose outbox is full is not reading: drop it."""
        if not conn.outbox.put(text, size, paced):
            self._drop("a WebSocket client", conn.outbox)
            conn.outbox.close()  # what it held is let go now, not when its handler ends
            self.clients.pop(ws, None)
            ws.abort()  # it reads nothing, so it would not read a close frame either

    def _drop(self, what: str, outbox: Outbox) -> None:
        self.dropped += 1
        self.heap.soon()  # what it held is freed: give it back
        log.warning("dropping %s that stopped reading (%d messages, %d bytes queued)", what, len(outbox), outbox.bytes)

    @staticmethod
    async def _drain(ws: WebSocket, conn: Connection) -> None:
        """The one writer of a client: sends its outbox in order until the socket goes away, sealing each message
        when the client encrypts (so frame counters follow the wire order).
        A message that cannot be sent (it cannot be encoded) is skipped and logged, never the end of the writer:
        a writer that died would leave the client connected and answered by nothing."""
        logged = False
        try:
            while (message := await conn.outbox.get()) is not None:
                try:
                    ws.write(conn.cipher.seal(message.encode()) if conn.cipher is not None else message)
                    message = None  # in the socket's buffer now: not kept while a slow reader drains it
                    await ws.drain()
                except WebSocketClosed:
                    raise
                except Exception as exc:
                    if not logged:
                        log.error("an API message could not be sent to a client, skipped: %r", exc)
                        logged = True
        except WebSocketClosed:
            pass

    # --- handlers -----------------------------------------------------------
    async def _websocket(self, ws: WebSocket, request: Request) -> None:
        local = self.is_local(request)
        plaintext_ok = self.access.plaintext_websocket(local, request.peer, request_key(request))
        conn = Connection(Outbox(OUTBOX_BYTES, self.pacer, self.answers), caller=Caller(local=local), live=plaintext_ok)
        self.clients[ws] = conn
        writer = asyncio.ensure_future(self._drain(ws, conn))
        tasks: dict[asyncio.Task[Any], int] = {}  # its requests running, and how many requests each is
        room = asyncio.Event()  # set when one of its requests finishes

        def finished(task: asyncio.Task[Any]) -> None:
            tasks.pop(task, None)
            room.set()

        try:
            async for data in ws:
                text = await self._open_frame(ws, conn, data, request.peer, plaintext_ok)
                if text is None:
                    break
                if text == "ping":
                    self._send(ws, conn, "pong", 4)
                    continue
                # a batch counts as MAX_IN_FLIGHT requests: it runs alone, its answer being many answers' worth
                weight = MAX_IN_FLIGHT if is_batch(text) else 1
                while tasks and sum(tasks.values()) + weight > MAX_IN_FLIGHT and ws in self.clients:
                    room.clear()
                    await room.wait()  # its requests are not answered as fast as it sends: read on when one is
                await self.intake.admit()
                # each request runs on its own: readers.write may wait 30 s for a tag
                task = asyncio.ensure_future(self._answer(ws, conn, text, weight > 1))
                tasks[task] = weight
                task.add_done_callback(finished)
        finally:
            self.clients.pop(ws, None)
            conn.outbox.close()
            writer.cancel()
            for t in tasks:
                t.cancel()

    async def _open_frame(self, ws: WebSocket, conn: Connection, data: str | bytes, peer: str,
                          plaintext_ok: bool) -> str | bytes | None:
        """A received frame → the JSON-RPC text it carries; None when the connection must end (it is then closed).

        An encrypted session's frames must all decrypt: one that does not (tampered, replayed, out of order) ends
        it, as in Core. Before that, a frame that looks like an encrypted first frame opens a session."""
        if conn.cipher is not None:
            from tagd.daemon.api.pairing.session import FrameError

            try:
                return conn.cipher.open(data).decode("utf-8", "replace")
            except FrameError as exc:
                log.warning("closing an encrypted API session from %s: %s", peer, exc)
                await ws.close(POLICY_VIOLATION, "frame failed decryption")
                return None
        if self.pairing is not None and looks_encrypted(data):
            from tagd.daemon.api.pairing.gateway import UnsupportedVersion
            from tagd.daemon.api.pairing.session import FrameError

            try:
                frame = self.pairing.first_frame(data)
                if frame is not None:
                    cipher, plaintext, client = await self.pairing.establish(frame, peer)
                    conn.cipher, conn.live = cipher, True
                    conn.caller = Caller(local=conn.caller.local, role=client.role, client_id=client.client_id)
                    return plaintext.decode("utf-8", "replace")
            except UnsupportedVersion:
                await self._refuse(ws, UNSUPPORTED_VERSION, "unsupported encryption version", {"supported": [1]})
                return None
            except FrameError as exc:
                log.warning("refused an encrypted API session from %s: %s", peer, exc)
                await ws.close(POLICY_VIOLATION, "encrypted session refused")
                return None
        if not plaintext_ok:
            await self._refuse(ws, ENCRYPTION_REQUIRED, "encryption required for remote connections")
            return None
        return data

    @staticmethod
    async def _refuse(ws: WebSocket, code: int, message: str, data: Any = None) -> None:
        """Core's plaintext JSON-RPC error (id null), then the close."""
        try:
            await ws.send(json_text(error(None, code, message, data)))
        except WebSocketClosed:
            return
        await ws.close(POLICY_VIOLATION, message)

    async def _answer(self, ws: WebSocket, conn: Connection, data: str | bytes, batch: bool = False) -> None:
        CALLER.set(conn.caller)  # this task's own context: the methods it runs see who asked
        if batch:
            async with self.batches:
                response = await self.dispatcher.handle_text(data)
        else:
            response = await self.dispatcher.handle_text(data)
        if response is not None and ws in self.clients:
            text = json_text(response)
            self._after(len(data) + len(text))
            self._send(ws, conn, text)

    def _after(self, size: int) -> None:
        """A request and its answer of ``size`` characters: after a large one, memory is given back."""
        if size > LARGE:
            self.heap.soon()

    async def _post(self, request: Request) -> Response:
        token = CLIENT_GONE.set(request.disconnected)  # a readers.write ends if the client hangs up
        caller = CALLER.set(Caller(local=self.is_local(request)))
        try:
            response = await self.dispatcher.handle_text(request.body)
        finally:
            CLIENT_GONE.reset(token)
            CALLER.reset(caller)
        if response is None:
            self._after(len(request.body))
            return Response(204)
        answer = json_response(response)
        self._after(len(request.body) + len(answer.body))
        return answer

    async def _events(self) -> AsyncIterator[bytes]:
        outbox = Outbox(OUTBOX_BYTES, self.pacer)
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
