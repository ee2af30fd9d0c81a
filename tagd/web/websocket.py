"""One WebSocket endpoint over an asyncio stream pair: messages in and out, ping/pong, heartbeat, close.

The server and the client differ only in masking, which wsproto's Connection knows from its side, and in
who did the opening handshake (:mod:`tagd.web.server` or :mod:`tagd.web.client`).

- Fragments are joined into whole messages up to ``max_message`` characters (text) or bytes (binary);
  a longer message closes the socket with 1009 instead of growing without bound. Each frame after a
  message's first also counts ``FRAGMENT_COST`` toward that limit (the least a masked frame takes on the
  wire): empty continuation frames cost nothing in payload, and five million of them held 33 MB and the
  event loop for seconds.
- Pings are answered; with ``heartbeat`` set, a peer silent for that long is pinged, and one silent for
  twice that long is dropped — a phone that went to sleep with the app open does not hold a socket forever.
- A protocol error by the peer (an unmasked client frame, bad UTF-8, a bad close code) closes with the code
  RFC 6455 gives for it; :meth:`receive` then returns None, as it does after any close.

One task reads (:meth:`receive`); any task may send. Pongs are read by :meth:`receive` too, so a handler
with a heartbeat must keep receiving. Each frame is written with one ``write()``, so frames
from different tasks never interleave.
"""

from __future__ import annotations

import asyncio
import weakref
from collections import deque
from typing import AsyncIterator

from wsproto.connection import Connection, ConnectionState
from wsproto.events import BytesMessage, CloseConnection, Event, Message, Ping, TextMessage
from wsproto.utilities import LocalProtocolError

READ_CHUNK = 1 << 16
MESSAGE_TOO_BIG = 1009
GOING_AWAY = 1001
INTERNAL_ERROR = 1011
FRAGMENT_COST = 6  # a masked frame's header: 2 bytes + the 4-byte mask
CLOSE_GRACE = 5.0  # after a close, a peer that has not taken the last frames by then is cut off


def _abort_if_open(transport: weakref.ref[asyncio.BaseTransport]) -> None:
    if (alive := transport()) is not None:
        alive.abort()


class WebSocketClosed(ConnectionError):
    """The socket is closed: nothing more can be sent."""


class WebSocket:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, conn: Connection, *,
                 max_message: int = 1 << 20, heartbeat: float | None = None) -> None:
        self._reader = reader
        self._writer = writer
        self._conn = conn
        self.max_message = max_message
        self.heartbeat = heartbeat
        self.closed = False
        self.close_code: int | None = None
        self._parts: list[str | bytes] = []
        self._size = 0
        self._frames = 0  # frames of the message being assembled
        self._in_frame = False  # the last event ended inside a frame (wsproto hands over partial frames)
        self._messages: deque[str | bytes] = deque()
        self._loop = asyncio.get_running_loop()
        self._last_seen = self._loop.time()
        self._pinged = False
        self._timer: asyncio.TimerHandle | None = None
        if heartbeat:
            self._timer = self._loop.call_later(heartbeat, self._beat)
        for event in conn.events():  # frames that came in with the handshake
            self._handle(event)

    # --- sending ------------------------------------------------------------
    def _write(self, event: Event) -> None:
        if self.closed:
            raise WebSocketClosed("the WebSocket is closed")
        try:
            data = self._conn.send(event)
        except LocalProtocolError:
            raise WebSocketClosed("the WebSocket is closing") from None
        self._writer.write(data)

    async def send(self, message: str | bytes) -> None:
        """Send one text (str) or binary (bytes) message; WebSocketClosed if the socket is gone."""
        self.write(message)
        await self.drain()

    def write(self, message: str | bytes) -> None:
        """Hand one message to the socket's buffer (the caller need not keep it); :meth:`drain` waits until the
        buffer is low again. WebSocketClosed if the socket is gone."""
        self._write(TextMessage(message) if isinstance(message, str) else BytesMessage(message))

    async def drain(self) -> None:
        try:
            await self._writer.drain()
        except (ConnectionError, RuntimeError) as exc:
            self._finish()
            raise WebSocketClosed(str(exc) or "connection lost") from None

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Send a close frame and let the connection go; a reader waiting in :meth:`receive` gets None."""
        if self.closed:
            return
        try:
            self._write(CloseConnection(code, reason))
        except WebSocketClosed:
            pass
        self.close_code = code
        self._finish()

    def abort(self) -> None:
        """Drop the connection now, discarding what is queued (a peer that stopped reading gets no close frame)."""
        self.close_code = self.close_code or 1006
        self._finish(abort=True)

    # --- receiving ----------------------------------------------------------
    async def receive(self) -> str | bytes | None:
        """The next whole message; None once the socket is closed (by either side, or by the network)."""
        while not self._messages:
            if self.closed:
                return None
            try:
                data = await self._reader.read(READ_CHUNK)
            except (ConnectionError, OSError):
                data = b""
            if self.closed:
                return None
            if not data:
                self.close_code = self.close_code or 1006
                self._finish()
                return None
            self._last_seen = self._loop.time()
            self._pinged = False
            self._conn.receive_data(data)
            for event in self._conn.events():
                self._handle(event)
        return self._messages.popleft()

    def __aiter__(self) -> AsyncIterator[str | bytes]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[str | bytes]:
        while (message := await self.receive()) is not None:
            yield message

    def _handle(self, event: Event) -> None:
        if self.closed:
            return
        if isinstance(event, Message):
            if event.data:
                self._parts.append(event.data)
            if not self._in_frame:  # this event starts a frame
                self._frames += 1
                if self._frames > 1:
                    self._size += FRAGMENT_COST
            self._in_frame = not event.frame_finished
            self._size += len(event.data)
            if self._size > self.max_message:
                self._parts.clear()
                self._fail(MESSAGE_TOO_BIG, f"message over {self.max_message}")
            elif event.message_finished:
                joined = "".join(self._parts) if isinstance(event, TextMessage) else b"".join(self._parts)
                self._parts.clear()
                self._size = self._frames = 0
                self._messages.append(joined)  # type: ignore[arg-type]
        elif isinstance(event, Ping):
            try:
                self._write(event.response())
            except WebSocketClosed:
                pass
        elif isinstance(event, CloseConnection):
            self.close_code = event.code
            if self._conn.state is ConnectionState.REMOTE_CLOSING:
                self._writer.write(self._conn.send(event.response()))  # the peer closed: answer it
            elif self._conn.state is ConnectionState.OPEN:
                self._fail(event.code, event.reason or "")  # wsproto found a protocol error in the peer's data
                return
            self._finish()

    def _fail(self, code: int, reason: str) -> None:
        try:
            self._write(CloseConnection(code, reason[:100]))
        except WebSocketClosed:
            pass
        self.close_code = code
        self._finish()

    # --- heartbeat and teardown -----------------------------------------------
    def _beat(self) -> None:
        """Ping a peer silent for ``heartbeat`` seconds; drop one silent for twice that."""
        assert self.heartbeat is not None
        silent = self._loop.time() - self._last_seen
        if silent >= 2 * self.heartbeat:
            self.abort()
            return
        if silent >= self.heartbeat and not self._pinged:
            try:
                self._write(Ping(b"tagd"))
            except WebSocketClosed:
                return
            self._pinged = True
        due = (self.heartbeat if silent < self.heartbeat else 2 * self.heartbeat) - silent
        self._timer = self._loop.call_later(max(0.05, due), self._beat)

    def _finish(self, abort: bool = False) -> None:
        if self.closed:
            return
        self.closed = True
        if self._timer is not None:
            self._timer.cancel()
        if abort:
            self._writer.transport.abort()
        else:
            self._writer.close()  # buffered frames (the close frame) are flushed first …
            transport = self._writer.transport
            if transport.get_write_buffer_size() or transport.get_extra_info("ssl_object") is not None:
                # … if the peer takes them. Only a socket with frames still queued gets a timer (a thousand
                # clients leaving had a thousand timers keep the heap they were spread over for 5 s) — and every
                # TLS one, whose encrypted bytes wait in a buffer this size does not count. The timer holds the
                # transport weakly: one that closed in time is freed now, not CLOSE_GRACE later
                self._loop.call_later(CLOSE_GRACE, _abort_if_open, weakref.ref(transport))
