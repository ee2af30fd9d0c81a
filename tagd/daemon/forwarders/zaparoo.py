"""Forward launches to Zaparoo Core over its WebSocket JSON-RPC API (seeds/001): ``run`` per launch, ``stop`` on exit.

One long-lived connection, kept up by a background task that reconnects with exponential backoff
(0.5 s doubling to 10 s: :func:`tagd.web.retry.backoff`). Core's notifications (``media.started``,
``media.stopped``, ``tokens.added`` …) arrive on the same socket and go to ``on_notification``; every client of
Core gets them without asking. The JSON-RPC itself — request ids, matching answers, telling notifications
apart, ignoring what Core sends that is none of those — is :class:`tagd.daemon.api.rpc_client.RpcClient`;
this module is the I/O around it.

Down means fast failure, but a tap is news: a launch that finds the core down does not wait out the backoff
(up to 10 s, so a Core that just restarted would miss the first taps); it starts a connection attempt now and
waits for that one attempt. A refused connection fails the launch in milliseconds; nothing is queued, and the
reader and the other forwarders never wait for a dead core (each forwarder launches in its own task). Any wait
for an attempt — this one, start-up, a reconnect under way — ends at the token's ``max_age`` (measured from
the scan time): a launch older than that is not sent late, it fails with "launch expired" (a game starting ten
seconds after the tap is worse than none). Proxied API calls do not start attempts: an App polling a dead core
must not turn into a connection attempt per request.

The API key goes as ``Authorization: Bearer`` (or ``?key=`` with ``key_in_query``). :meth:`call` is the
generic request the API server uses to proxy methods tagd does not serve; Core's JSON-RPC errors come back as
:class:`CoreError` with Core's code and message so the proxy can relay them unchanged.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from tagd.daemon.api.rpc_client import ErrorReply, Notification, Result, RpcClient
from tagd.daemon.forwarders import LOOP_DETECTED, Forwarder, ForwardError
from tagd.token import Token
from tagd.web.client import HttpError, connect_websocket, tls_context
from tagd.web.retry import backoff
from tagd.web.websocket import WebSocket, WebSocketClosed

log = logging.getLogger(__name__)

BACKOFF_FIRST = 0.5
BACKOFF_MAX = 10.0
HEARTBEAT = 15.0  # ping a silent Core after this long; drop it after twice that
MAX_MESSAGE = 16 << 20  # media.search answers can be large
LOOP_ERROR = ("this tagd's own API, not Zaparoo Core: set [[core]] url to Core's address "
              "(if Core runs on this machine too, give tagd another [api] listen port)")


class CoreError(ForwardError):
    """Core answered a request with a JSON-RPC error."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        self.code = code
        self.message = message
        self.data = data
        super().__init__(f"zaparoo core error {code}: {message}")


class ZaparooForwarder(Forwarder):
    kind = "zaparoo"

    def __init__(self, config: Any, name: str = "zaparoo") -> None:
        super().__init__(name)
        self.url = config.url
        self.api_key = config.api_key
        self.key_in_query = config.key_in_query
        self.max_age = float(config.max_age)
        self.timeout = float(config.timeout)
        self.tls = tls_context(config.ca_file)
        self.last_error = "not started"
        self._about: tuple[str | None, str | None] = (None, None)  # (version, platform), last known
        self.connections = 0  # successful connects so far (tests, diagnostics)
        self._ws: WebSocket | None = None
        self._task: asyncio.Task[None] | None = None
        self._rpc = RpcClient()
        self._pending: dict[str, asyncio.Future[Any]] = {}  # the I/O side of self._rpc.pending
        self._settled = asyncio.Event()  # set when not in the middle of a connection attempt
        self._connected = asyncio.Event()
        self._retry_now = asyncio.Event()  # set by a launch to cut the backoff short
        self._settled.set()  # not started: nothing to wait for

    @property
    def connected(self) -> bool:
        return self._ws is not None and not self._ws.closed

    def _connect_url_and_headers(self) -> tuple[str, dict[str, str]]:
        headers = dict(self.instance_headers)
        if not self.api_key:
            return self.url, headers
        if not self.key_in_query:
            return self.url, {**headers, "Authorization": f"Bearer {self.api_key}"}
        parts = urlsplit(self.url)
        query = (parts.query + "&" if parts.query else "") + urlencode({"key": self.api_key})
        return urlunsplit(parts._replace(query=query)), headers

    async def start(self) -> None:
        if self._task is not None:
            return
        self._settled.clear()  # the first attempt is under way: early launches wait for it
        self._task = asyncio.create_task(self._run(), name=f"zaparoo-{self.name}")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass
            self._task = None
        self._settled.set()  # no attempt will come: nobody waits for one
        if self._ws is not None:
            await self._ws.close()
            self._ws = None
        self._fail_pending("forwarder closed")

    # --- connection ---------------------------------------------------------

    async def _run(self) -> None:
        delays = backoff(BACKOFF_FIRST, BACKOFF_MAX)
        url, headers = self._connect_url_and_headers()
        while True:
            self._settled.clear()
            try:
                ws = await connect_websocket(url, headers=headers, timeout=self.timeout,
                                             max_message=MAX_MESSAGE, heartbeat=HEARTBEAT, tls=self.tls)
            except HttpError as exc:
                if exc.status == LOOP_DETECTED:
                    if self.last_error != LOOP_ERROR:
                        log.error("%s: %s is %s", self.name, self.url, LOOP_ERROR)
                    self.last_error = LOOP_ERROR
                else:
                    self.last_error = _describe(exc) or "connection failed"
                self._settled.set()
                delay = next(delays)
                log.debug("%s: cannot connect to %s: %s (retry in %.1f s)", self.name, self.url, self.last_error, delay)
                await self._backoff(delay)
                continue
            self._ws = ws
            self.connections += 1
            self.last_error = ""
            delays = backoff(BACKOFF_FIRST, BACKOFF_MAX)
            self._connected.set()
            self._settled.set()
            log.info("%s: connected to %s", self.name, self.url)
            try:
                await self._read(ws)
            finally:
                self._ws = None
                self._connected.clear()
                self.last_error = "connection lost"
                self._fail_pending(f"connection to {self.url} lost")
                if self.on_disconnect is not None:
                    self.on_disconnect()
            log.warning("%s: connection to %s lost; reconnecting", self.name, self.url)
            await self._backoff(next(delays))

    async def _backoff(self, delay: float) -> None:
        """Sleep ``delay`` seconds before the next attempt, or less if a launch asks for one now."""
        self._retry_now.clear()
        try:
            await asyncio.wait_for(self._retry_now.wait(), delay)
        except asyncio.TimeoutError:
            pass

    async def _read(self, ws: WebSocket) -> None:
        async for data in ws:
            if isinstance(data, str):
                self._dispatch(self._rpc.receive(data))

    def _dispatch(self, reply: Result | ErrorReply | Notification | None) -> None:
        if isinstance(reply, Notification):
            self._notify(reply.method, reply.params)
            return
        fut = self._pending.get(reply.id) if reply is not None else None
        if fut is None or fut.done():
            return
        if isinstance(reply, ErrorReply):
            fut.set_exception(CoreError(reply.code, reply.message, reply.data))
        else:
            fut.set_result(reply.value)

    def _fail_pending(self, reason: str) -> None:
        for fut in self._pending.values():
            if not fut.done():
                fut.set_exception(ForwardError(f"{self.name}: {reason}"))

    async def _wait_connected(self, deadline: float, retry: bool = False) -> WebSocket:
        """The open socket; wait for an attempt under way (with ``retry``, start one now if the loop is backing
        off), but not past ``deadline`` (time.time())."""
        if retry and not self.connected and self._settled.is_set() and self._task is not None:
            self._settled.clear()  # the attempt this starts is the one to wait for
            self._retry_now.set()
        if not self.connected and not self._settled.is_set():
            try:
                await asyncio.wait_for(self._settled.wait(), max(0.0, deadline - time.time()))
            except asyncio.TimeoutError:
                pass
        ws = self._ws
        if ws is None or ws.closed:
            raise ForwardError(f"{self.name}: zaparoo core at {self.url} is not connected ({self.last_error})")
        return ws

    # --- requests -----------------------------------------------------------

    async def _request(self, ws: WebSocket, method: str, params: Any, timeout: float) -> Any:
        req_id, text = self._rpc.request(method, params)
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[req_id] = fut
        try:
            try:
                await ws.send(text)
            except WebSocketClosed as exc:
                raise ForwardError(f"{self.name}: sending {method} failed: {_describe(exc)}") from None
            try:
                return await asyncio.wait_for(fut, timeout)
            except asyncio.TimeoutError:
                raise ForwardError(f"{self.name}: zaparoo core did not answer {method} within {timeout:g} s") from None
        finally:
            self._pending.pop(req_id, None)
            self._rpc.forget(req_id)

    async def call(self, method: str, params: Any = None, timeout: float | None = None) -> Any:
        """Send any JSON-RPC request to Core and return its result (CoreError for Core's errors)."""
        timeout = self.timeout if timeout is None else timeout
        ws = await self._wait_connected(time.time() + timeout)
        return await self._request(ws, method, params, timeout)

    async def launch(self, token: Token) -> None:
        deadline = token.scan_ns / 1e9 + self.max_age
        ws = await self._wait_connected(deadline, retry=True)
        age = time.time() - token.scan_ns / 1e9
        if age > self.max_age:
            raise ForwardError(f"{self.name}: launch expired: scanned {age:.1f} s ago (max_age {self.max_age:g} s)")
        params: dict[str, Any] = {"type": token.type, "uid": token.uid, "text": token.text, "data": token.data}
        if token.unsafe:
            params["unsafe"] = True
        await self._request(ws, "run", params, self.timeout)

    async def about(self) -> tuple[str | None, str | None]:
        """Core's (version, platform): asked now, else as last known; (None, None) if it never answered."""
        try:
            answer = await self.call("version", timeout=min(self.timeout, 2.0))
            if isinstance(answer, dict) and isinstance(answer.get("version"), str):
                self._about = (answer["version"], str(answer.get("platform") or ""))
        except ForwardError as exc:
            log.debug("%s: the core's version is not known now: %s", self.name, exc)
        return self._about

    async def stop_media(self) -> None:
        await self.call("stop")


def _describe(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__
