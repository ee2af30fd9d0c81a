"""A small fake Zaparoo Core (aiohttp WebSocket JSON-RPC) for the forwarder, API and end-to-end tests.

Records every request; answers `boom` with a JSON-RPC error, ignores `hang`, answers everything else
with null; pushes notifications on demand. Run standalone (`python fake_core.py PORT`) it also prints
each request as a JSON line, for tests that drive `tagd run` in a subprocess, and acts like a Core that
launches: after each `run` it sends `media.started` (the text as mediaName), after `stop` `media.stopped`.
"""

from __future__ import annotations

import asyncio
import json
import socket
import sys
from typing import Any

from aiohttp import WSMsgType, web


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class FakeCore:
    """Answers run/stop with null, `boom` with a JSON-RPC error, ignores `hang`; pushes notifications on demand."""

    def __init__(self, port: int, ssl_context: Any = None) -> None:
        self.port = port
        self.ssl_context = ssl_context  # serve wss:// with this server-side context
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.queries: list[dict[str, str]] = []
        self.clients: list[web.WebSocketResponse] = []
        self.runner: web.AppRunner | None = None
        self.on_request: Any = None
        self.answers: dict[str, Any] = {}  # method → result, for methods that should not answer null

    async def ws(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self.headers.append(dict(request.headers))
        self.queries.append(dict(request.query))
        self.clients.append(ws)
        async for msg in ws:
            if msg.type != WSMsgType.TEXT:
                continue
            req = json.loads(msg.data)
            self.requests.append(req)
            if self.on_request:
                self.on_request(req)
            if req["method"] == "hang":
                continue
            if req["method"] == "boom":
                await ws.send_json({"jsonrpc": "2.0", "id": req["id"], "error": {"code": 1, "message": "no such system"}})
            else:
                await ws.send_json({"jsonrpc": "2.0", "id": req["id"], "result": self.answers.get(req["method"])})
        self.clients.remove(ws)
        return ws

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/api/v0.1", self.ws)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port, ssl_context=self.ssl_context).start()

    async def stop(self) -> None:
        for ws in list(self.clients):
            await ws.close()
        assert self.runner is not None
        await self.runner.cleanup()

    async def notify(self, method: str, params: Any) -> None:
        for ws in self.clients:
            await ws.send_json({"jsonrpc": "2.0", "method": method, "params": params})

    def methods(self) -> list[str]:
        return [r["method"] for r in self.requests]


def media_notification(req: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """What Core announces after a launch or a stop (SPEC §5 notification payloads)."""
    if req["method"] == "run":
        text = (req.get("params") or {}).get("text", "")
        return "media.started", {"systemId": "SNES", "systemName": "Super Nintendo", "mediaPath": f"/games/{text}",
                                 "mediaName": text}
    if req["method"] == "stop":
        return "media.stopped", {"systemId": "SNES", "systemName": "Super Nintendo", "mediaPath": "/games/x",
                                 "mediaName": "x", "launcherId": "fake", "elapsed": 1}
    return None


async def _serve(port: int) -> None:
    core = FakeCore(port)

    def on_request(req: dict[str, Any]) -> None:
        print(json.dumps(req), flush=True)
        media = media_notification(req)
        if media is not None:  # after the answer, as Core does: the launch happens once run has returned
            loop.call_later(0.01, lambda: asyncio.ensure_future(core.notify(*media)))

    loop = asyncio.get_running_loop()
    core.on_request = on_request
    await core.start()
    print("ready", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(_serve(int(sys.argv[1])))
