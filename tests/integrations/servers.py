"""Loopback stand-ins for retroshelf, RomM and PlayRen that follow their documented contracts, errors included.

Each server is an aiohttp app (aiohttp is the tests' independent HTTP peer) on 127.0.0.1 with:

- the documented endpoints and answers (seeds/000, 002, 003 and SPEC §6);
- ``faults``: a list of what the next requests get instead of the real answer, consumed one per request —
  an HTTP status (401, 403, 404, 422, 429, 500 with the service's own error body), ``"plain500"`` (RomM's
  plain-text 500), ``"malformed"`` (a 200 whose body is not JSON), ``"hang"`` (never answers) or ``"reset"``
  (closes the connection without answering) or ``"garble"`` (does the work, then answers garbage);
- ``requests``: every request seen, as (method, path, query, headers, body).

Run standalone (``python servers.py PORT``) they all serve on one port (retroshelf at /, RomM at /romm,
PlayRen at /api/partners) for tests that start ``tagd run`` in a subprocess; a JSON line per received session.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

from aiohttp import web

RETROSHELF_CLIENT = "rs_test_client"
ROMM_CLIENT_TOKEN = "rmm_" + "c" * 40
PLAYREN_KEY = "pr_partner_" + "k" * 24


class FaultyApp:
    """The fault list and request log every stand-in shares."""

    error_body: Any = None  # how this service shapes an error body: fn(status) -> (body, content_type)

    def __init__(self) -> None:
        self.faults: list[Any] = []
        self.requests: list[dict[str, Any]] = []
        self.hanging: list[asyncio.Event] = []

    @web.middleware
    async def middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        body = await request.read()
        self.requests.append({"method": request.method, "path": request.path, "query": list(request.query.items()),
                              "headers": dict(request.headers), "body": body})
        if self.faults:
            fault = self.faults.pop(0)
            if fault == "garble":  # the request is carried out, but its answer arrives garbled
                await handler(request)
                return web.Response(status=200, text="<html>502 Bad Gateway", content_type="text/html")
            if fault is not None:
                return await self.fault(request, fault)
        return await handler(request)

    async def fault(self, request: web.Request, fault: Any) -> web.StreamResponse:
        if fault == "hang":
            ev = asyncio.Event()
            self.hanging.append(ev)
            await ev.wait()
        if fault == "reset":
            assert request.transport is not None
            request.transport.close()
            return web.Response(status=500)
        if fault == "malformed":
            return web.Response(status=200, text='{"items": [', content_type="application/json")
        if fault == "plain500":
            return web.Response(status=500, text="Internal Server Error", content_type="text/plain")
        status = int(fault)
        text = self.error_text(status)
        headers = {"Retry-After": "7"} if status == 429 else {}
        return web.Response(status=status, text=text, content_type="application/json", headers=headers)

    def error_text(self, status: int) -> str:
        return json.dumps({"detail": {401: "Not authenticated", 403: "Forbidden", 404: "Not found",
                                      422: "Unprocessable", 429: "Too many requests"}.get(status, "Server error")})

    def release(self) -> None:
        for ev in self.hanging:
            ev.set()

    def paths(self) -> list[str]:
        return [r["path"] for r in self.requests]


def _bearer(request: web.Request) -> str:
    auth = request.headers.get("Authorization", "")
    return auth[7:] if auth.startswith("Bearer ") else ""


# --- retroshelf ------------------------------------------------------------------------------


class Retroshelf(FaultyApp):
    """Device flow (poll answers scripted by ``poll_script``), completeLink, syncSessions with the documented dedupe."""

    def __init__(self) -> None:
        super().__init__()
        self.poll_script: list[str] = []  # each poll takes one: pending | slow_down | access_denied | expired_token
        self.poll_shape = "error"  # "error" ({"error": …}) or "detail" ({"detail": …})
        self.access_token = "rs_access_" + "a" * 32
        self.device_code = "dev_" + "d" * 24
        self.sync_client_id = "sync_client_1"
        self.sessions: list[dict[str, Any]] = []  # unique sessions, in arrival order
        self.batches: list[list[dict[str, Any]]] = []  # every accepted batch as sent
        self.reject: set[str] = set()  # romPaths answered 422
        self.revoked = False
        self.interval = 5
        self._keys: set[tuple[Any, ...]] = set()

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self.middleware])
        app.router.add_post("/api/auth/device/code", self.code)
        app.router.add_post("/api/auth/device/token", self.token)
        app.router.add_post("/api/syncClient/completeLink", self.complete)
        app.router.add_post("/api/syncClient/syncSessions", self.sync)
        return app

    async def code(self, request: web.Request) -> web.Response:
        body = await request.json()
        if body.get("client_id") != RETROSHELF_CLIENT:
            return web.json_response({"error": "invalid_client"}, status=400)
        return web.json_response({"device_code": self.device_code, "user_code": "483921",
                                  "verification_uri": "https://retroshelf.example/link", "expires_in": 1800,
                                  "interval": self.interval})

    async def token(self, request: web.Request) -> web.Response:
        body = await request.json()
        if body.get("grant_type") != "urn:ietf:params:oauth:grant-type:device_code" \
                or body.get("device_code") != self.device_code or body.get("client_id") != RETROSHELF_CLIENT:
            return web.json_response({"error": "invalid_grant"}, status=400)
        if self.poll_script:
            err = self.poll_script.pop(0)
            return web.json_response({"error" if self.poll_shape == "error" else "detail": err}, status=400)
        return web.json_response({"access_token": self.access_token, "token_type": "Bearer"})

    def _authorised(self, request: web.Request) -> bool:
        return not self.revoked and _bearer(request) == self.access_token

    async def complete(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return web.json_response({"detail": "Not authenticated"}, status=401)
        return web.json_response({"syncClientId": self.sync_client_id})

    async def sync(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return web.json_response({"detail": "Not authenticated"}, status=401)
        try:
            body = await request.json()
        except ValueError:
            return web.json_response({"detail": "invalid JSON"}, status=400)
        if body.get("syncClientId") != self.sync_client_id:
            return web.json_response({"detail": "Unknown sync client"}, status=403)
        sessions = body.get("sessions")
        if not isinstance(sessions, list):
            return web.json_response({"detail": [{"loc": ["body", "sessions"], "msg": "field required"}]}, status=422)
        for i, s in enumerate(sessions):
            for key, kind in (("romPath", str), ("duration", (int, float)), ("devicePlayedAt", (int, float))):
                if not isinstance(s.get(key), kind):
                    return web.json_response({"detail": [{"loc": ["body", "sessions", i, key],
                                                          "msg": "field required"}]}, status=422)
            if s["romPath"] in self.reject:
                return web.json_response({"detail": [{"loc": ["body", "sessions", i, "romPath"],
                                                      "msg": "romPath is not acceptable"}]}, status=422)
        self.batches.append(sessions)
        results = []
        for s in sessions:
            key = (self.sync_client_id, s["romPath"], s["devicePlayedAt"], s["duration"])
            if key not in self._keys:
                self._keys.add(key)
                self.sessions.append(s)
            matched = "Unknown" not in s["romPath"]
            results.append({"romPath": s["romPath"], "matched": matched,
                            **({"gameId": f"g_{abs(hash(s['romPath'])) % 1000}",
                                "gameName": s.get("romName") or s["romPath"]} if matched else {})})
        return web.json_response({"synced": len(sessions), "matched": sum(r["matched"] for r in results),
                                  "unmatched": sum(not r["matched"] for r in results), "results": results})


# --- RomM ------------------------------------------------------------------------------------


def make_rom(i: int, platform: tuple[int, str, str] = (1, "snes", "Super Nintendo"), name: str | None = None,
             md5: str | None = None, updated: str = "2025-01-01T00:00:00+00:00") -> dict[str, Any]:
    pid, slug, display = platform
    title = name or f"Game {i}"
    ext = {"snes": "sfc", "gba": "gba", "psx": "chd"}.get(slug, "bin")
    return {"id": i, "name": title, "fs_name": f"{title}.{ext}", "fs_name_no_ext": title, "fs_extension": ext,
            "fs_path": f"roms/{slug}", "full_path": f"roms/{slug}/{title}.{ext}", "platform_id": pid,
            "platform_slug": slug, "platform_fs_slug": slug, "platform_display_name": display,
            "crc_hash": f"{i:08x}", "md5_hash": md5 or f"{i:032x}", "sha1_hash": f"{i:040x}", "regions": ["USA"],
            "missing_from_fs": False, "updated_at": updated, "path_cover_large": "",
            "rom_user": {"id": -1, "last_played": None, "status": None}}


class Romm(FaultyApp):
    """ROM pages, by-hash, props (last played), platforms; client tokens and password grant with single-use refresh."""

    prefix = ""

    def __init__(self, roms: list[dict[str, Any]] | None = None) -> None:
        super().__init__()
        self.roms = {r["id"]: r for r in (roms or [])}
        self.users = {"ana": "s3cret-pass"}
        self.access: dict[str, float] = {}  # issued JWT → expiry
        self.refresh: set[str] = set()  # unused refresh tokens
        self.client_tokens = {ROMM_CLIENT_TOKEN}
        self.access_lifetime = 1800.0
        self.played: list[int] = []
        self._n = 0

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self.middleware])
        p = self.prefix
        app.router.add_post(p + "/api/token", self.token)
        app.router.add_get(p + "/api/roms", self.list_roms)
        app.router.add_get(p + "/api/roms/by-hash", self.by_hash)
        app.router.add_put(p + "/api/roms/{id}/props", self.props)
        app.router.add_get(p + "/api/platforms", self.platforms)
        return app

    def _issue(self) -> dict[str, Any]:
        self._n += 1
        access, refresh = f"eyJhbGciOi.access{self._n}.sig", f"eyJhbGciOi.refresh{self._n}.sig"
        self.access[access] = time.time() + self.access_lifetime
        self.refresh.add(refresh)
        return {"access_token": access, "refresh_token": refresh, "token_type": "bearer",
                "expires": int(self.access_lifetime), "refresh_expires": 604800}

    async def token(self, request: web.Request) -> web.Response:
        if request.content_type != "application/x-www-form-urlencoded":
            return web.json_response({"detail": [{"loc": ["body"], "msg": "form fields required"}]}, status=422)
        form = await request.post()
        grant = form.get("grant_type", "password")
        if grant == "password":
            if self.users.get(str(form.get("username"))) != form.get("password"):
                return web.json_response({"detail": "Invalid username or password"}, status=401)
            return web.json_response(self._issue())
        if grant == "refresh_token":
            token = str(form.get("refresh_token", ""))
            if token not in self.refresh:
                return web.json_response({"detail": "Could not validate credentials"}, status=401)
            self.refresh.discard(token)  # single use (RomM ≥ 4.8)
            return web.json_response(self._issue())
        return web.json_response({"detail": "Invalid grant type"}, status=400)

    def _auth(self, request: web.Request) -> web.Response | None:
        token = _bearer(request)
        if token in self.client_tokens:
            return None
        if token in self.access:
            if self.access[token] < time.time():  # an expired JWT: RomM answers a plain-text 500
                return web.Response(status=500, text="Internal Server Error", content_type="text/plain")
            return None
        if token.startswith("eyJ"):
            return web.Response(status=500, text="Internal Server Error", content_type="text/plain")
        return web.json_response({"detail": "Not authenticated"}, status=401)

    async def list_roms(self, request: web.Request) -> web.Response:
        denied = self._auth(request)
        if denied:
            return denied
        q = request.query
        try:
            limit, offset = int(q.get("limit", 50)), int(q.get("offset", 0))
        except ValueError:
            return web.json_response({"detail": [{"loc": ["query", "limit"], "msg": "not an int"}]}, status=422)
        if not 1 <= limit <= 10000:
            return web.json_response({"detail": [{"loc": ["query", "limit"], "msg": "out of range"}]}, status=422)
        roms = sorted(self.roms.values(), key=lambda r: r["id"])
        pids = [int(p) for p in q.getall("platform_ids", [])]
        if pids:
            roms = [r for r in roms if r["platform_id"] in pids]
        if q.get("updated_after"):
            roms = [r for r in roms if r["updated_at"] > q["updated_after"]]
        if q.get("search_term"):
            roms = [r for r in roms if q["search_term"].lower() in r["name"].lower()]
        cheap = q.get("with_char_index") == "false" and q.get("with_filter_values") == "false"
        return web.json_response({"items": roms[offset:offset + limit], "total": len(roms), "limit": limit,
                                  "offset": offset, "char_index": {} if cheap else {"A": 0},
                                  "rom_id_index": [], "filter_values": {"genres": [], "regions": []}})

    async def by_hash(self, request: web.Request) -> web.Response:
        denied = self._auth(request)
        if denied:
            return denied
        q = request.query
        keys = [k for k in ("crc_hash", "md5_hash", "sha1_hash", "ra_hash") if q.get(k)]
        if not keys:
            return web.json_response({"detail": "At least one hash value must be provided"}, status=400)
        for r in self.roms.values():
            if any(r.get(k) == q[k] for k in keys):
                return web.json_response(r)
        return web.json_response({"detail": "No ROM or file found with given hash values"}, status=404)

    async def props(self, request: web.Request) -> web.Response:
        denied = self._auth(request)
        if denied:
            return denied
        if not (await request.read()):
            return web.json_response({"detail": [{"loc": ["body"], "msg": "Field required"}]}, status=422)
        rom_id = int(request.match_info["id"])
        if rom_id not in self.roms:
            return web.json_response({"detail": f"Rom with id '{rom_id}' not found"}, status=404)
        if request.query.get("update_last_played") == "true":
            self.roms[rom_id]["rom_user"]["last_played"] = "2026-12-05T21:00:00+00:00"
            self.played.append(rom_id)
        return web.json_response(self.roms[rom_id]["rom_user"])

    async def platforms(self, request: web.Request) -> web.Response:
        denied = self._auth(request)
        if denied:
            return denied
        seen = {}
        for r in self.roms.values():
            seen[r["platform_id"]] = {"id": r["platform_id"], "slug": r["platform_slug"],
                                      "fs_slug": r["platform_fs_slug"], "display_name": r["platform_display_name"]}
        return web.json_response(sorted(seen.values(), key=lambda p: p["id"]))


# --- PlayRen ------------------------------------------------------------------------------------


def make_game(slug: str, title: str, cached: int = 2) -> dict[str, Any]:
    return {"id": f"clx_{slug[:6]}", "slug": slug, "title": title, "developer": "Starlight Studio",
            "description": "A branching narrative adventure", "tags": ["Visual Novel"],
            "launcher": f"{slug}.sh", "renpyDir": f"{slug.title().replace('-', '')}-1698234567",
            "thumbnail": "", "status": "active", "cacheStatus": {"servers": 3, "cached": cached},
            "createdAt": "2025-01-15T10:30:00Z", "updatedAt": "2025-03-01T14:00:00Z"}


class PlayRen(FaultyApp):
    """List games, game details, sync status; Bearer partner key; 100 requests/min then 429 + Retry-After."""

    def __init__(self, games: list[dict[str, Any]] | None = None, limit: int = 100) -> None:
        super().__init__()
        self.games = {g["slug"]: g for g in (games or [])}
        self.limit = limit
        self.window: list[float] = []
        self.clock = time.monotonic  # a test's fake clock, to check the client's pacing against it

    def error_text(self, status: int) -> str:
        code = {400: "invalid_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
                422: "invalid_request", 429: "rate_limited"}.get(status, "internal_error")
        return json.dumps({"error": code, "message": f"{code.replace('_', ' ')} (test)"})

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self.middleware])
        app.router.add_get("/api/partners/games", self.list_games)
        app.router.add_get("/api/partners/games/{slug}", self.game)
        app.router.add_get("/api/partners/games/{slug}/sync", self.sync)
        return app

    def _gate(self, request: web.Request) -> web.Response | None:
        if _bearer(request) != PLAYREN_KEY:
            return web.json_response({"error": "unauthorized", "message": "Invalid API key"}, status=401)
        now = self.clock()
        self.window = [t for t in self.window if now - t < 60] + [now]
        if len(self.window) > self.limit:
            return web.json_response({"error": "rate_limited", "message": "Too many requests"}, status=429,
                                     headers={"Retry-After": "30"})
        return None

    async def list_games(self, request: web.Request) -> web.Response:
        return self._gate(request) or web.json_response(
            {"games": [{k: g[k] for k in ("id", "slug", "title", "developer", "tags", "status", "createdAt",
                                          "updatedAt")} for g in self.games.values()], "total": len(self.games)})

    def _lookup(self, request: web.Request) -> tuple[dict[str, Any] | None, web.Response | None]:
        """The game the path names, or the error answer (the gate's, or not_found)."""
        slug = request.match_info["slug"]
        denied = self._gate(request)
        if denied:
            return None, denied
        if slug not in self.games:
            return None, web.json_response({"error": "not_found", "message": f"Game with slug '{slug}' not found"},
                                           status=404)
        return self.games[slug], None

    async def game(self, request: web.Request) -> web.Response:
        g, error = self._lookup(request)
        return error or web.json_response(g)

    async def sync(self, request: web.Request) -> web.Response:
        g, error = self._lookup(request)
        if error or g is None:
            return error  # type: ignore[return-value]
        cached = g["cacheStatus"]["cached"]
        return web.json_response({"slug": g["slug"], "totalServers": 3, "cachedOn": cached,
                                  "pendingSync": 3 - cached, "servers": []})


class Serving:
    """An app on 127.0.0.1 (an ephemeral port); ``url`` is its base."""

    def __init__(self, app: web.Application) -> None:
        self.app = app
        self.runner = web.AppRunner(app, shutdown_timeout=0.1)
        self.url = ""

    async def __aenter__(self) -> "Serving":
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.runner.cleanup()


async def _serve_all(port: int, rom_count: int, games: int) -> None:
    """One port for all three (tests that run `tagd run` in a subprocess): prints each new session as a JSON line."""
    rs = Retroshelf()
    rm = Romm([make_rom(1, name="Chrono Trigger", md5="ab" * 16)] + [make_rom(i) for i in range(2, rom_count + 1)])
    rm.prefix = "/romm"
    pr = PlayRen([make_game(f"game-{i}", f"Game {i}") for i in range(games)])
    app = web.Application()
    for sub in (rs, rm, pr):
        for route in sub.app().router.routes():
            app.router.add_route(route.method, route.resource.canonical, route.handler)  # type: ignore[union-attr]
    app.middlewares.append(rs.middleware)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    print("ready", flush=True)
    printed = {"session": 0, "batch": 0, "played": 0}
    while True:  # what arrived since the last look, as JSON lines
        await asyncio.sleep(0.05)
        for kind, items in (("session", rs.sessions), ("batch", rs.batches), ("played", rm.played)):
            for item in items[printed[kind]:]:
                print(json.dumps({kind: len(item) if kind == "batch" else item}), flush=True)
            printed[kind] = len(items)


if __name__ == "__main__":
    asyncio.run(_serve_all(int(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 3,
                           int(sys.argv[3]) if len(sys.argv) > 3 else 2))
