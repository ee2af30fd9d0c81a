"""Zaparoo's pairing and encrypted WebSocket sessions, sans-I/O (Core's ``docs/api/encryption.md``).

pake.py (PAKE2 on P-256 as schollz/pake v3), session.py (HKDF labels, transcript MAC, frame cipher),
manager.py (PIN, sessions, limits), gateway.py (first frames: salt reuse, failure blocks). The transport
(api/server.py) imports these only when a client pairs or sends an encrypted frame: ``cryptography`` and
``ecdsa`` stay out of an idle daemon's memory.
"""
