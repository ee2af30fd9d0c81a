"""POST each launch's token JSON (Zaparoo's Token object) to a URL; any status outside 2xx is a failure.

The ``X-Tagd-Event`` header says ``launch``; with ``stop_url`` set, a hold-mode exit POSTs ``{"event": "stop"}``
there. A launch from the API or the web (not a tapped tag) carries ``X-Tagd-Unsafe: 1``. Every request has
the configured timeout.
"""

from __future__ import annotations

import json
from typing import Any

from tagd.daemon.forwarders import LOOP_DETECTED, Forwarder, ForwardError
from tagd.token import Token
from tagd.web.client import HttpError, request, tls_context


class WebhookForwarder(Forwarder):
    kind = "webhook"

    def __init__(self, config: Any, name: str = "webhook") -> None:
        super().__init__(name)
        self.url = config.url
        self.stop_url = config.stop_url
        self.headers = dict(config.headers)
        self.timeout = float(config.timeout)
        self.tls = tls_context(config.ca_file)

    async def _post(self, url: str, body: dict[str, Any], event: str, unsafe: bool = False) -> None:
        headers = {**self.headers, **self.instance_headers, "Content-Type": "application/json", "X-Tagd-Event": event}
        if unsafe:
            headers["X-Tagd-Unsafe"] = "1"
        try:
            resp = await request("POST", url, headers=headers, body=json.dumps(body, ensure_ascii=False).encode(),
                                 timeout=self.timeout, tls=self.tls)
        except HttpError as exc:
            raise ForwardError(f"{self.name}: {exc}") from None
        if resp.status == LOOP_DETECTED:
            raise ForwardError(f"{self.name}: {url} is this tagd's own API, not a webhook receiver")
        if not 200 <= resp.status < 300:
            raise ForwardError(f"{self.name}: {url} answered HTTP {resp.status}")

    async def launch(self, token: Token) -> None:
        await self._post(self.url, token.to_json(), "launch", token.unsafe)

    async def stop_media(self) -> None:
        if self.stop_url:
            await self._post(self.stop_url, {"event": "stop"}, "stop")
