"""POST each launch's token JSON (Zaparoo's Token object) to a URL; any status outside 2xx is a failure.

The ``X-Tagd-Event`` header says ``launch``; with ``stop_url`` set, a hold-mode exit POSTs ``{"event": "stop"}``
there. One aiohttp session is kept for connection reuse; every request has the configured timeout.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp

from tagd.daemon.forwarders import Forwarder, ForwardError
from tagd.token import Token


class WebhookForwarder(Forwarder):
    kind = "webhook"

    def __init__(self, config: Any, name: str = "webhook") -> None:
        super().__init__(name)
        self.url = config.url
        self.stop_url = config.stop_url
        self.headers = dict(config.headers)
        self.timeout = float(config.timeout)
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout))

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _post(self, url: str, body: dict[str, Any], event: str) -> None:
        await self.start()
        assert self._session is not None
        headers = {**self.headers, "X-Tagd-Event": event}
        try:
            async with self._session.post(url, json=body, headers=headers) as resp:
                if not 200 <= resp.status < 300:
                    raise ForwardError(f"{self.name}: {url} answered HTTP {resp.status}")
        except asyncio.TimeoutError:
            raise ForwardError(f"{self.name}: {url} did not answer within {self.timeout:g} s") from None
        except aiohttp.ClientError as exc:
            raise ForwardError(f"{self.name}: POST {url} failed: {exc or type(exc).__name__}") from None

    async def launch(self, token: Token) -> None:
        await self._post(self.url, token.to_json(), "launch")

    async def stop_media(self) -> None:
        if self.stop_url:
            await self._post(self.stop_url, {"event": "stop"}, "stop")
