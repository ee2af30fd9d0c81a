"""Which web pages may use the API from a browser: the Origin check (sans-I/O).

The API trusts loopback peers without a key, so without this any page the user visits could open
``ws://127.0.0.1:7497/api`` or POST to it and launch games, write tags or change settings (cross-site
WebSocket hijacking; DNS rebinding gives the same with the page's own name). Browsers send ``Origin`` on
WebSocket handshakes, on every POST and on EventSource; programs (curl, scripts, the Zaparoo App's native
shell) send none or their own fixed one. So a request that carries an Origin must carry an allowed one;
a request with none is not a browser's and passes (API keys still apply to non-loopback peers).

Allowed, as Zaparoo Core allows them (SPEC §5), matched exactly but for case:
- the Zaparoo App's origins: ``capacitor://localhost``, ``ionic://localhost``, ``https://zaparoo.app``,
  ``http(s)://localhost``;
- this machine by name or address, with the API's port: ``http(s)://localhost:PORT``, ``127.0.0.1:PORT``,
  ``[::1]:PORT``, the host name and ``<hostname>.local`` (with and without the port), and the address the
  request came in on (``http://192.168.1.20:7497``: a page this host serves on the API's own port);
- each ``[api] allowed_origins`` entry: one with a scheme (``http://batocera.local``) as written — and with
  ``:PORT`` added when it is http(s) without a port —, a bare host name as ``http(s)://name[:PORT]``.

Allowed origins get CORS headers (and preflights an answer) so a web page can read the responses.
"""

from __future__ import annotations

import socket

APP_ORIGINS = ("capacitor://localhost", "ionic://localhost", "https://zaparoo.app", "http://localhost",
               "https://localhost")
CORS_HEADERS = [("access-control-allow-methods", "GET, POST, OPTIONS"),
                ("access-control-allow-headers", "Accept, Content-Type, Authorization"),
                ("access-control-allow-private-network", "true"), ("access-control-max-age", "600")]


def _web(host: str, port: int, with_bare: bool = True) -> list[str]:
    out = [f"{scheme}://{host}:{port}" for scheme in ("http", "https")]
    if with_bare:
        out += [f"{scheme}://{host}" for scheme in ("http", "https")]
    return out


def expand(entry: str, port: int) -> list[str]:
    """One ``allowed_origins`` entry → the origins it allows (lower-case, no trailing slash)."""
    entry = entry.strip().rstrip("/").lower()
    if not entry:
        return []
    if "://" not in entry:
        return _web(entry, port)
    scheme, _, rest = entry.partition("://")
    if scheme in ("http", "https") and not _has_port(rest):
        return [entry, f"{entry}:{port}"]
    return [entry]


def _has_port(hostport: str) -> bool:
    tail = hostport.rsplit("]", 1)[-1]  # an IPv6 literal's colons are not a port
    return ":" in tail


class OriginPolicy:
    def __init__(self, port: int, allowed: list[str], hostname: str | None = None) -> None:
        self.port = port
        host = (hostname if hostname is not None else socket.gethostname()).lower()
        origins = list(APP_ORIGINS)
        for name in ("localhost", "127.0.0.1", "[::1]"):
            origins += _web(name, port, with_bare=False)
        if host:
            short = host.split(".")[0]
            for name in {host, short, f"{short}.local"}:
                origins += _web(name, port)
        for entry in allowed:
            origins += expand(entry, port)
        self.origins = frozenset(origins)

    def allows(self, origin: str | None, local_address: str = "") -> bool:
        """May a request with this Origin header (None: absent) use the API? ``local_address``: where it came in."""
        if origin is None:
            return True
        origin = origin.strip().rstrip("/").lower()
        if origin in self.origins:
            return True
        if local_address:
            if local_address.startswith("::ffff:") and "." in local_address:
                local_address = local_address[len("::ffff:"):]  # IPv4 seen through a dual-stack socket
            host = f"[{local_address}]" if ":" in local_address else local_address
            return origin in (f"http://{host}:{self.port}", f"https://{host}:{self.port}")
        return False

    def cors_headers(self, origin: str | None, preflight: bool = False) -> list[tuple[str, str]]:
        """Headers that let an allowed page read a response (all of them for a preflight)."""
        if origin is None:
            return []
        return [("access-control-allow-origin", origin), ("vary", "Origin")] + (CORS_HEADERS if preflight else [])
