"""Web services tagd reports to or reads from: retroshelf (play sessions), RomM (ROM library), PlayRen (catalog).

Layout, after gidgethub + oauthlib: each service module (``retroshelf``, ``romm``, ``playren``) only *builds*
requests (:class:`~tagd.integrations.http.Request`) and *deciphers* responses (status, headers, body → data or a
typed :class:`~tagd.integrations.http.ServiceError`); none of them does I/O, so they are tested without a
network. :mod:`tagd.integrations.client` is the one I/O layer (httpx, imported only when a service is used) and
owns the retry policy (only idempotent requests, ``Retry-After`` honoured, sleep and clock injected).

The daemon side: :mod:`sessions` (play sessions from media.started/stopped or a held tag), :mod:`store` (the
sessions, catalog and deck tables), :mod:`credentials` (0600 token files), :mod:`sync` (the retroshelf queue),
:mod:`runtime` (wires them into a running daemon), :mod:`decks` and :mod:`labels` (cards from a catalog).
"""
