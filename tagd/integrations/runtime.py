"""The integrations inside a running daemon: sessions from the core's notifications (or a held tag), the retroshelf
queue, RomM's last played, and the link state the ``integrations`` API method shows.

The daemon calls in at four places: :meth:`core_notification` (every notification the zaparoo forwarder relays),
:meth:`core_lost` (its connection dropped), :meth:`launched` / :meth:`held_exit` (the pipeline, for hold mode with no
Zaparoo core). Session bookkeeping happens at once on the loop (one short transaction per media event, so events keep
their order); network work runs in tasks. A service is used only while its credentials file exists — linking or
unlinking from the CLI takes effect within a minute (or at once with SIGHUP / ``sessions.retry``), and httpx is
imported on the first call, so a daemon with nothing linked never loads it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from typing import Any, Awaitable, Callable

from tagd.integrations.credentials import Credentials, CredentialsError, credentials_dir, redacted
from tagd.integrations.sessions import (DEFAULT_MIN_DURATION, OpenSession, SessionTracker, clean_name, media_session,
                                        platform_hint)
from tagd.integrations.store import IntegrationStore, session_json

log = logging.getLogger(__name__)

Notify = Callable[[str, Any], None]


async def attach(daemon: Any) -> "Integrations":
    """Start the integrations for a daemon whose store and pipeline are open, and hook them to its pipeline."""
    runtime = Integrations(daemon.config, daemon.notify, inbox=daemon.store.add_inbox)
    await runtime.start()
    daemon.pipeline.on_launch = runtime.launched
    daemon.pipeline.on_exit = runtime.held_exit
    return runtime


class Integrations:
    def __init__(self, config: Any, notify: Notify, *, clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep, inbox: Callable[..., Any] | None = None,
                 transport: Any = None) -> None:
        self.database = config.database
        self.creds = Credentials(credentials_dir(config.database))
        self.notify = notify
        self.inbox = inbox or (lambda *a, **k: None)
        self.clock = clock
        self.sleep = sleep
        self.transport = transport  # tests: an httpx transport instead of the network
        self.configure(config)
        self.store: IntegrationStore
        self.worker: Any = None
        self._clients: dict[str, tuple[float | None, Any]] = {}  # service → (credentials mtime, account)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._stopped = False
        self.deck_job: Any = None  # the page's deck being written (tagd/integrations/deck_job.py), once started
        self._links: Any = None  # device flows started from the API (tagd/integrations/linking.py)

    def configure(self, config: Any) -> None:
        """The parts of the config that matter here (start and reloads)."""
        sessions = getattr(config, "sessions", None)
        self.tracker_min = float(getattr(sessions, "min_duration", DEFAULT_MIN_DURATION))
        self.hints = dict(getattr(sessions, "platform_hints", {}) or {})
        self.batch = int(getattr(sessions, "sync_batch", 50))
        self.has_core = any(getattr(c, "type", "") == "zaparoo" for c in config.core)
        self.hold_mode = config.readers.scan.mode == "hold"
        if hasattr(self, "tracker"):  # a reload (settings.reload, SIGHUP): also look at the links again now
            self.tracker.min_duration, self.tracker.hints = self.tracker_min, self.hints
            self.poke()
        else:
            self.tracker = SessionTracker(self.tracker_min, self.hints)

    async def start(self) -> None:
        from tagd.integrations.sync import SyncWorker

        self.store = await asyncio.to_thread(IntegrationStore, self.database)
        dropped = await asyncio.to_thread(self.store.drop_open)
        if dropped:
            log.warning("dropped %d play session(s) left open when tagd last stopped uncleanly (length unknown)",
                        dropped)
        self.worker = SyncWorker(self.store, self._retroshelf, batch=self.batch, sleep=self.sleep, clock=self.clock,
                                 on_relink=lambda exc: self._needs_relink("retroshelf", exc))
        self._spawn(self.worker.run())

    async def stop(self) -> None:
        """tagd's own stop ends the session under way; then the worker and the clients."""
        try:
            self._switch(None)
        except Exception:
            log.exception("ending the play session at stop failed")
        self._stopped = True  # a notification still arriving while the forwarders close changes nothing
        if self.deck_job is not None:
            await self.deck_job.stop()
        if self._links is not None:
            await self._links.stop()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for _, account in self._clients.values():
            if account is not None:
                await account.http.aclose()
        self._clients.clear()
        if hasattr(self, "store"):
            self.store.close()

    def _spawn(self, coro: Awaitable[Any]) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # --- session events ----------------------------------------------------------------

    def core_notification(self, method: str, params: Any) -> None:
        if method == "media.started":
            new = media_session(params, self.clock())
            if new is not None:
                self._switch(new)
                self._spawn(self._romm_started(new))
        elif method == "media.stopped":
            self._switch(None)

    def core_lost(self) -> None:
        self._switch(None)

    def launched(self, token: Any, success: bool) -> None:
        """A launch from a tag. With no Zaparoo core to report media, a hold-mode launch is the media starting."""
        if self.has_core or not self.hold_mode or not success or not getattr(token, "text", ""):
            return
        text = token.text
        self._switch(OpenSession(text, "", "", self.clock(), "hold"))

    def held_exit(self) -> None:
        if not self.has_core:
            self._switch(None)

    def _switch(self, new: OpenSession | None) -> None:
        if self._stopped or not hasattr(self, "store"):
            return
        now = self.clock()
        ended, finished = self.tracker.start(new, now) if new is not None else self.tracker.stop(now)
        if ended is None and new is None:
            return
        new_id = self.store.switch(ended, finished, new)
        if new_id is not None:
            self.tracker.stored(new_id)
        if finished is not None and ended is not None and ended.id is not None:
            row = self.store.session(ended.id)
            if row is not None:
                log.info("play session: %s, %d s", finished.rom_name or finished.rom_path, finished.duration)
                self.notify("sessions.added", session_json(row))
                if self.worker is not None:
                    self.worker.poke()
        elif ended is not None:
            log.info("play session of %s dropped: shorter than %g s", ended.rom_path, self.tracker.min_duration)

    # --- accounts (built when their credentials exist, rebuilt when the file changes) ---------------------

    def _account(self, service: str, build: Callable[[dict[str, Any]], Any]) -> Any:
        mtime = self.creds.mtime(service)
        cached = self._clients.get(service)
        if cached is not None and cached[0] == mtime:
            return cached[1]
        if cached is not None and cached[1] is not None:
            self._spawn(cached[1].http.aclose())
        account = None
        if mtime is not None:
            try:
                record = self.creds.load(service)
            except CredentialsError as exc:
                log.error("%s", exc)
                record = None
            if record and not record.get("relink"):
                account = build(record)
        self._clients[service] = (mtime, account)
        return account

    def client(self, service: str, **options: Any) -> Any:
        from tagd.integrations.client import ServiceClient

        return ServiceClient(service, sleep=self.sleep, clock=self.clock, transport=self.transport, **options)

    @property
    def links(self) -> Any:
        """The device flows ``integrations.link`` starts (made on first use: segno and httpx load then)."""
        if self._links is None:
            from tagd.integrations.linking import DeviceLinks

            self._links = DeviceLinks(self.creds, self.client, self.notify, self.poke)
        return self._links

    def _retroshelf(self) -> Any:
        def build(r: dict[str, Any]) -> Any:  # (imports here: only a linked service loads the HTTP client)
            from tagd.integrations.accounts import Retroshelf

            if not (r.get("access_token") and r.get("sync_client_id")):
                return None
            return Retroshelf(self.client("retroshelf"), r["base_url"], r["access_token"], r["sync_client_id"])
        return self._account("retroshelf", build)

    def romm(self) -> Any:
        def build(r: dict[str, Any]) -> Any:
            from tagd.integrations.accounts import Romm

            return Romm(self.client("RomM"), r["url"], r, lambda rec: self.creds.save("romm", rec))
        return self._account("romm", build)

    def _needs_relink(self, service: str, exc: Exception) -> None:
        try:
            self.creds.update(service, relink=f"{exc}; link again: tagd link {service}")
        except (OSError, CredentialsError) as err:
            log.error("cannot record that %s needs linking again: %s", service, err)
        self.inbox(f"{service}: link again (tagd link {service})", "integrations", severity=2, body=str(exc),
                   unique=True)

    def poke(self) -> None:
        self._clients.pop("retroshelf", None)
        if self.worker is not None:
            self.worker.poke()

    # --- RomM: last played ------------------------------------------------------------------------

    async def _romm_started(self, session: OpenSession) -> None:
        account = self.romm()
        if account is None:
            return
        from tagd.integrations.http import AuthError, ServiceError
        try:
            rom = await self._find_rom(account, session)
            if rom is None:
                log.info("RomM: no ROM found for %s", session.rom_path)
                return
            await account.mark_played(rom["id"])
            log.info("RomM: %s marked last played", rom["name"] or rom["fs_name"])
            current = self.tracker.current
            if current is not None and current.rom_path == session.rom_path:
                rom_hash = rom["md5_hash"] or rom["sha1_hash"]
                self.tracker.enrich(rom["name"], rom_hash)
                if current.id is not None:
                    await asyncio.to_thread(self.store.enrich, current.id, rom["name"], rom_hash)
        except AuthError as exc:
            self._needs_relink("romm", exc)
            self._clients.pop("romm", None)
        except ServiceError as exc:
            log.warning("RomM: last played not set for %s: %s", session.rom_path, exc)

    async def _find_rom(self, account: Any, session: OpenSession) -> dict[str, Any] | None:
        """By hash when the core gave one, else by file name or clean name and platform — in the local catalog
        first, then asking RomM."""
        fs_name = os.path.basename(session.rom_path.replace("\\", "/"))
        platform = platform_hint(session.system_id, self.hints)
        found = await asyncio.to_thread(self.store.find_rom, fs_name, session.rom_name, platform, session.rom_hash)
        if found is not None:
            return found
        from tagd.integrations.catalog import rom_row

        if session.rom_hash:
            rom = await account.by_hash(**{_hash_kind(session.rom_hash): session.rom_hash})
            if rom is not None:
                return rom_row(rom)
        wanted = {clean_name(session.rom_name).lower(), clean_name(fs_name).lower()} - {""}
        async for page in account.pages(search=clean_name(session.rom_name or fs_name), limit=50):
            for rom in page.items:
                if rom.fs_name == fs_name or rom.title.lower() in wanted:
                    return rom_row(rom)
            break
        return None

    # --- the API's view --------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for service in ("retroshelf", "romm", "playren"):
            try:
                record = self.creds.load(service)
                problem = ""
            except CredentialsError as exc:
                record, problem = None, str(exc)
            view = redacted(record)
            state = "unlinked" if not record else ("relink" if record.get("relink") else "linked")
            entry: dict[str, Any] = {"linked": state == "linked", "state": state}
            for key, api_key in (("base_url", "baseUrl"), ("url", "url"), ("client_id", "clientId"),
                                 ("sync_client_id", "syncClientId"), ("linked_at", "linkedAt"), ("username", "username"),
                                 ("auth", "auth"), ("relink", "error")):
                if view.get(key) not in (None, ""):
                    entry[api_key] = view[key]
            if problem:
                entry["error"] = problem
            out[service] = entry
        if hasattr(self, "store"):
            out["retroshelf"]["sessions"] = self.store.counts()
            out["romm"]["catalog"] = self.store.rom_count()
        if self.worker is not None:
            if self.worker.last_error:
                out["retroshelf"].setdefault("lastError", self.worker.last_error)
            if self.worker.last_sync:
                out["retroshelf"]["lastSync"] = int(self.worker.last_sync)
        return out


def _hash_kind(value: str) -> str:
    return {8: "crc", 32: "md5", 40: "sha1"}.get(len(value), "md5")
