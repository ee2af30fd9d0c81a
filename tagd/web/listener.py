"""Listening sockets and their accept loops, which survive running out of file descriptors.

asyncio's own server, when ``accept()`` fails with EMFILE, logs a traceback for every connection waiting in
the backlog, every second (a thousand clients over the limit made ~11,000 tracebacks a second, 162 MB of
log in a minute). Here an accept that fails for want of resources (EMFILE, ENFILE, ENOBUFS, ENOMEM) waits
(:func:`tagd.web.retry.backoff` from 50 ms to 1 s) while the waiting clients stay in the kernel's backlog,
and is logged once per ``REPORT_INTERVAL`` with the count since the last report. At start the soft
open-file limit is raised toward what ``want`` connections need, as far as the hard limit allows.
An accepted socket's streams run on :class:`StreamProtocol`, which lets a closed transport be freed at once.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
from typing import Any, Callable, Iterator

from tagd.web.retry import backoff

log = logging.getLogger(__name__)

OUT_OF_RESOURCES = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}
REPORT_INTERVAL = 60.0
BACKLOG = 512
FD_SPARE = 256  # descriptors besides connections: readers, the database, a forwarder's subprocess, logs


def raise_nofile_limit(connections: int) -> int:
    """Raise the soft RLIMIT_NOFILE to fit ``connections`` plus spares (never above the hard limit); the
    soft limit after. A limit still too low is logged: the unit's LimitNOFILE (or ``ulimit -n``) is the fix."""
    try:
        import resource
    except ImportError:  # pragma: no cover - not on POSIX
        return 0
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = connections + FD_SPARE
    if soft != resource.RLIM_INFINITY and soft < want:
        new = want if hard == resource.RLIM_INFINITY else min(want, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
            soft = new
        except (ValueError, OSError):
            pass
    if soft != resource.RLIM_INFINITY and soft < want:
        log.warning("the open-file limit (%d) is below what %d connections need (%d): past it, new connections "
                    "wait; raise LimitNOFILE (or ulimit -n)", soft, connections, want)
    return soft


class StreamProtocol(asyncio.StreamReaderProtocol):
    """asyncio's, but a transport is let go as soon as its connection is lost. A socket transport keeps a bound
    method of itself (``_read_ready_cb``): a reference cycle, which only a full run of the cycle collector frees —
    after 1000 clients, 6000 objects and ~5 MB held until then, and it may be hours away."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._own_transport = transport
        super().connection_made(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        transport = self.__dict__.pop("_own_transport", None)
        if transport is not None:  # it reads no more: end the cycle (where there is one: asyncio's own transports)
            getattr(transport, "__dict__", {}).pop("_read_ready_cb", None)


class Listener:
    def __init__(self, on_socket: Callable[[socket.socket, Any], None]) -> None:
        self.on_socket = on_socket
        self.sockets: list[socket.socket] = []
        self.starved = 0  # accepts that failed for want of resources (diagnostics, tests)
        self._tasks: list[asyncio.Task[None]] = []
        self._unreported = 0
        self._reported_at: float | None = None

    async def start(self, host: str, port: int) -> int:
        """Listen on every address of ``host`` ("" = all interfaces); the port (``port=0``: one the system picks)."""
        loop = asyncio.get_running_loop()
        infos = await loop.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        seen: set[Any] = set()
        try:
            for family, kind, proto, _, address in infos:
                if address in seen:
                    continue
                seen.add(address)
                sock = socket.socket(family, kind, proto)
                self.sockets.append(sock)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                if family == socket.AF_INET6:
                    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)  # the IPv4 address has its own
                if port == 0 and len(self.sockets) > 1:  # every address on the one port the first got
                    address = (address[0], self.sockets[0].getsockname()[1], *address[2:])
                sock.bind(address)
                sock.listen(BACKLOG)
                sock.setblocking(False)
        except OSError:
            self.close()
            raise
        self._tasks = [asyncio.create_task(self._accept(sock)) for sock in self.sockets]
        return self.sockets[0].getsockname()[1]

    def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for sock in self.sockets:
            sock.close()
        self._tasks, self.sockets = [], []

    async def _accept(self, sock: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        delays: Iterator[float] | None = None
        while True:
            try:
                conn, address = await loop.sock_accept(sock)
            except OSError as exc:
                if exc.errno in (errno.EBADF, errno.EINVAL, errno.ENOTSOCK):
                    return  # the listening socket is closed
                if exc.errno not in OUT_OF_RESOURCES:
                    continue  # the client gave up before we took it (ECONNABORTED …): nothing to do
                self.starved += 1
                self._report(loop.time(), exc)
                delays = delays or backoff(0.05, 1.0)
                await asyncio.sleep(next(delays))
                continue
            delays = None
            self.on_socket(conn, address)

    def _report(self, now: float, exc: OSError) -> None:
        self._unreported += 1
        if self._reported_at is not None and now - self._reported_at < REPORT_INTERVAL:
            return
        log.warning("cannot accept connections: %s (%d times since the last report; clients wait in the backlog). "
                    "Raise LimitNOFILE or lower the number of clients", exc.strerror or exc, self._unreported)
        self._reported_at, self._unreported = now, 0
