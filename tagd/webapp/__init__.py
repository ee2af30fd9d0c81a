"""tagd's own page, served at ``/app/``: static HTML, CSS and ES modules shipped as package data (no build step,
no CDN). The page talks to tagd only through the public JSON-RPC API over the same WebSocket as every other
client, so it has no endpoint of its own beyond its files.

Who may load it: the API's HTTP rule (loopback, an API key, ``allowed_ips``). A key given as ``/app/?key=K`` is
kept by the page for its WebSocket and set as a cookie limited to ``/app/`` (HttpOnly, SameSite=Strict) so the
page's own module files load too. Files are read once and kept in memory (~40 KB), with an ETag; every answer
carries a Content-Security-Policy that allows only this origin's scripts, styles and WebSocket.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path

STATIC = Path(__file__).with_name("static")
PREFIX = "/app/"
COOKIE = "tagd_key"
TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
         ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml"}
SECURITY_HEADERS = [
    ("content-security-policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
                                "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "no-referrer"),  # the page's address may carry ?key=
    ("cache-control", "no-cache"),
]


@lru_cache(maxsize=1)
def files() -> dict[str, tuple[bytes, str, str]]:
    """Every servable file by its path under /app/: (content, content type, ETag). Only these names are served,
    so no request path can reach anything else on disk."""
    out = {}
    for path in sorted(STATIC.rglob("*")):
        if path.is_file() and path.suffix in TYPES:
            body = path.read_bytes()
            out[path.relative_to(STATIC).as_posix()] = (body, TYPES[path.suffix],
                                                         '"' + hashlib.sha256(body).hexdigest()[:16] + '"')
    return out


def lookup(path: str) -> tuple[bytes, str, str] | None:
    """The file for a request path (``/app/`` is index.html); None if there is none."""
    rel = path[len(PREFIX):] if path.startswith(PREFIX) else None
    if rel is None:
        return None
    return files().get(rel or "index.html")


def cookie_key(cookie_header: str) -> str:
    for part in cookie_header.split(";"):
        name, _, value = part.strip().partition("=")
        if name == COOKIE:
            return value
    return ""
