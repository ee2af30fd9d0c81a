"""tagd's Zaparoo-compatible API: jsonrpc.py (sans-I/O dispatcher), methods.py (what tagd serves), server.py (routes, auth and outboxes on tagd.web)."""
