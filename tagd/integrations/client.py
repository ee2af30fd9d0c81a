"""The one I/O layer for the web services: send a :class:`Request`, get a :class:`Response`, retry what may be retried.

Why httpx: tagd's own ``web/client.py`` speaks just enough HTTP/1.1 over h11 for the zaparoo and webhook
forwarders (one request per connection, no pooling, no proxies, no redirects). The services here are on the
internet: they need TLS with the system's CA store, connection reuse for paging and batches, proxies from the
environment, and well-tested timeouts — which httpx gives on top of the same h11 protocol core tagd already
ships, with an async API that fits the daemon's loop. aiohttp's client would work too but duplicates a second
HTTP stack; httpx's import is done here only, on the first service call, so a daemon with no linked service
never loads it (tests/daemon/test_lean_start.py).

Retry policy (pure parts in :mod:`tagd.integrations.http`): only requests marked idempotent are sent again,
after a transient error (network, 5xx, 429), waiting ``Retry-After`` when the server gave one, else an
exponential backoff; ``sleep`` and ``clock`` are injected so tests never really wait.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Awaitable, Callable

from tagd.integrations.http import NetworkError, Request, Response, ServiceError, backoff, retry_delay

log = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[Any]]
Parser = Callable[[Response, float], Any]
MAX_BODY = 32 << 20  # a catalog page of 10,000 ROMs is a few MB


class ServiceClient:
    """Sends requests with httpx; ``transport`` lets a test plug in an httpx transport instead of the network."""

    def __init__(self, service: str, *, timeout: float = 15.0, retries: int = 3, sleep: Sleep = asyncio.sleep,
                 clock: Callable[[], float] = time.time, transport: Any = None, first_delay: float = 1.0) -> None:
        self.service = service
        self.timeout = timeout
        self.retries = retries
        self.sleep = sleep
        self.clock = clock
        self.first_delay = first_delay
        self._transport = transport
        self._http: Any = None
        self.pace: Callable[[], Awaitable[Any]] | None = None  # awaited before every attempt (a rate limiter)

    def _client(self) -> Any:
        if self._http is None:
            import httpx  # here only: a daemon with no linked service never loads it

            logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per request at -v; ours say what matters

            self._http = httpx.AsyncClient(timeout=httpx.Timeout(self.timeout), transport=self._transport,
                                           follow_redirects=False, trust_env=True)
        return self._http

    async def send(self, req: Request) -> Response:
        """One attempt. NetworkError when no complete answer came (refused, reset, timed out, too large)."""
        import httpx

        if self.pace is not None:
            await self.pace()
        client = self._client()
        try:
            async with client.stream(req.method, req.url, headers=dict(req.headers), content=req.body or None) as r:
                chunks, size = [], 0
                async for chunk in r.aiter_bytes():
                    size += len(chunk)
                    if size > MAX_BODY:
                        raise NetworkError(self.service, f"the answer is larger than {MAX_BODY >> 20} MB")
                    chunks.append(chunk)
                return Response(r.status_code, {k.lower(): v for k, v in r.headers.items()}, b"".join(chunks))
        except httpx.TimeoutException:
            raise NetworkError(self.service, f"no answer from {_origin(req.url)} within {self.timeout:g} s") from None
        except httpx.HTTPError as exc:
            raise NetworkError(self.service, f"cannot reach {_origin(req.url)}: {type(exc).__name__}"
                               f"{': ' + str(exc)[:120] if str(exc) else ''}") from None

    async def call(self, req: Request, parse: Parser, retries: int | None = None) -> Any:
        """Send and parse; transient failures of an idempotent request are retried ``retries`` times."""
        retries = self.retries if retries is None else retries
        delays = backoff(self.first_delay)
        attempt = 0
        while True:
            try:
                return parse(await self.send(req), self.clock())
            except ServiceError as exc:
                attempt += 1
                if not (exc.transient and req.idempotent and attempt <= retries):
                    raise
                delay = retry_delay(exc, next(delays))
                log.info("%s: %s; trying again in %.1f s", self.service, exc.message, delay)
                await self.sleep(delay)

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None


def _origin(url: str) -> str:
    """scheme://host:port of a URL: errors name the server, not the path and query (which may name a user's data)."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"
