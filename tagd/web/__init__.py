"""HTTP/1.1 and WebSocket over asyncio streams, on the sans-I/O protocol cores h11 and wsproto.

tagd's API server and its clients (the zaparoo and webhook forwarders) need a small part of HTTP: requests
with bodies, keep-alive, one streamed response kind (server-sent events) and WebSocket text messages.
h11 and wsproto parse and frame; this package only moves bytes and enforces limits. aiohttp did the
same job at ~12 MB of resident memory (its client, cookie, multipart and mail-header machinery load with
it), where this costs ~2 MB — the difference between an idle daemon over and under its 45 MB target.

- :mod:`tagd.web.websocket` — one WebSocket endpoint (message assembly, ping/pong, heartbeat, close);
- :mod:`tagd.web.server` — the server: a handler turns each :class:`Request` into a response;
- :mod:`tagd.web.client` — one HTTP request, or a WebSocket connection, to a URL;
- :mod:`tagd.web.admission` — who gets a connection slot when the server is full (sans-I/O);
- :mod:`tagd.web.listener` — listening sockets whose accept loops survive running out of descriptors;
- :mod:`tagd.web.retry` — the one retry policy, ``backoff()``.
"""
