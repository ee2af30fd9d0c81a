"""The daemon: config → store, mappings, forwarders, pipeline, readers, API; and a clean shutdown.

Reader threads hand events to the loop (``asyncio_sink``) where the pipeline applies them; the
pipeline's notifications and the core's (media.started …) go to every API client. Start-up does the
least it can before the API answers: the store opens, the API listens, then readers open in their own
threads.

Why it is long: this is the composition root — the one place that builds, starts, reloads and stops every part
in order (store, pipeline, API, pairing, discovery, forwarders, publishers, readers, integrations) and hands each
the narrow environment it may use; the parts' logic lives in their own modules.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import signal
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Awaitable, Iterator

from tagd.daemon import sdnotify
from tagd.daemon.api import client_methods, methods
from tagd.daemon.api.access import AccessPolicy, listens_beyond_loopback
from tagd.daemon.api.jsonrpc import RpcError
from tagd.daemon.api.origins import OriginPolicy
from tagd.daemon.api.pairing_service import PairingService
from tagd.daemon.api.server import ApiServer
from tagd.daemon.config import Config, ConfigError, default_config_path, parse_listen, update_settings
from tagd.daemon.config.zaparoo_core import log_core_only_sections
from tagd.daemon.config_files import ConfigFiles, read_file_mappings, read_files
from tagd.daemon.feedback import ScanFeedback
from tagd.daemon.forwarders import INSTANCE_HEADER, ForwardError, build_forwarders, close_all, start_all
from tagd.daemon.mappings import Mapping, MappingTable
from tagd.daemon.pipeline import Pipeline
from tagd.daemon.retention import prune_history_daily
from tagd.daemon.store import Store, StoreError
from tagd.integrations import api as integration_methods
from tagd.readers.base import (Capability, ReaderEvent, ReaderInfo, ReaderWorker, WriteError, WriteRequest,
                               asyncio_sink)
from tagd.token import Token

if TYPE_CHECKING:
    from tagd.readers.manager import ReaderManager

log = logging.getLogger(__name__)

OWN_NOTIFICATIONS = frozenset({"readers.added", "readers.removed", "tokens.added", "tokens.removed"})
SETTLE_SECONDS = 1.0  # after start: readers open, start-up garbage freed — then free heap goes back (heap.py)


class Daemon:
    def __init__(self, config: Config, config_path: str | os.PathLike[str] | None = None,
                 extra_readers: list[str] | None = None, listen: str | None = None) -> None:
        self.config = config
        self.config_path = Path(config_path) if config_path else default_config_path()
        self.extra_readers = extra_readers or []
        self.listen = listen or config.api.listen
        self._listen_given = listen is not None  # --listen wins over [api] listen, on reloads too
        self._writes: dict[int, tuple[str, WriteRequest]] = {}  # readers.write calls waiting for a tag
        self.instance = secrets.token_hex(8)  # tells this daemon's own requests apart (forwarders.INSTANCE_HEADER)
        self._tasks: set[asyncio.Task[Any]] = set()
        self.store: Store
        self.pipeline: Pipeline
        self.api: ApiServer
        self.manager: ReaderManager | None = None  # set once the API listens (the drivers load after it)
        self.forwarders: list[Any] = []
        self.publishers: list[Any] = []  # [[service.publishers.mqtt]] (tagd.daemon.fabric.node.FabricNode)
        self.file_mappings: list[Mapping] = []  # the config's [[mappings.entry]] and mappings/*.toml, as last read
        self._config_lock = asyncio.Lock()  # settings.update and the reloads: one read-modify-write at a time
        self._config_existed = self.config_path.exists()  # a reload then needs the file (config_files.read_files)
        self._started: list[str] = []  # what stop() has to undo, in start order
        self.integrations: Any = None  # play sessions and web services (tagd/integrations/runtime.py)
        self._loop: asyncio.AbstractEventLoop | None = None
        self.discovery: Any = None  # tagd.daemon.discovery.Discovery while advertising

    # --- lifecycle ----------------------------------------------------------
    async def start(self) -> None:
        """Open everything; if any step fails, what was opened is closed again before the error propagates."""
        try:
            await self._start()
        except BaseException:
            await self.stop(notify=False)
            raise

    async def _start(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            self.store = await asyncio.to_thread(Store, self.config.database)
        except StoreError as exc:  # say which setting gave the path: the user's fix is there or at the file
            raise StoreError(f"{self.config_path}: database: {exc}") from None
        self._loop = loop
        self.store.on_inbox = self._inbox_added
        self._started.append("store")
        self._base_log_level = logging.getLogger().level  # what the command line asked for (-v, -vv)
        self._apply_logging(self.config)
        self.spawn(prune_history_daily(self.store, lambda: self.config.readers.scan_history))
        log_core_only_sections(self.config)
        self.forwarders = self._build_forwarders(self.config)
        self.file_mappings, problems = read_file_mappings(self.config, self.config_path)
        table = MappingTable.from_sources(self.store.mappings(), self.file_mappings)
        self.pipeline = Pipeline(self.config, self.store, table, self.forwarders, self.notify)
        self.pipeline.write_tag = self.write_tag
        self.feedback = self.pipeline.feedback = ScanFeedback(self._reader_object, lambda: self.config.audio)
        self._started.append("pipeline")
        from tagd.integrations.runtime import attach  # play sessions, and the web services once linked

        self.integrations = await attach(self)
        self._started.append("integrations")
        self._report_mapping_problems(problems)
        self.pairing = PairingService(self.store, self.notify)
        rpc = methods.build(self)
        client_methods.register(rpc, self.pairing, self.store)
        integration_methods.register(rpc, self)  # sessions, sessions.retry, integrations
        self.api = ApiServer(rpc, self.config.api.keys, self.run_token, allowed_origins=self.config.api.allowed_origins,
                             instance=self.instance, access=self._access(self.config), pairing=self.pairing)
        self.pipeline.urgent = self.api.priority.during  # a tap's launch goes before API work
        host, port = parse_listen(self.listen)
        self.api.heap.freeze_start_up()  # before the first connection: what lives now, lives on (heap.py)
        try:
            await self.api.start(host, port)
        except BaseException:
            self.api.heap.close()  # not started: nothing stays frozen
            raise
        self._started.append("api")
        await start_all(self.forwarders)
        self._started.append("forwarders")
        await self._start_publishers(self.config)
        from tagd.readers.manager import ReaderManager  # the drivers load after the API answers

        connect = self._connect_strings(self.config)
        detect = self.config.readers.detected_drivers()
        self.manager = ReaderManager(asyncio_sink(loop, self._reader_event), connect, bool(detect),
                                     self.config.driver_options(), detect=detect)
        self.manager.start()
        await self._start_discovery(self.config, host)
        self.spawn(self._settled())
        sdnotify.notify("READY=1", f"STATUS=listening on {host}:{self.api.port}")
        log.info("tagd ready: API on %s:%d, %d reader(s) configured", host, self.api.port, len(connect))

    async def _settled(self) -> None:
        await asyncio.sleep(SETTLE_SECONDS)
        self.api.heap.soon()  # the start-up garbage's free pages go back to the system

    @staticmethod
    def _access(config: Config) -> AccessPolicy:
        return AccessPolicy(allowed_ips=config.service.allowed_ips, keys=config.api.keys,
                            encryption=config.service.encryption)

    async def _start_discovery(self, config: Config, host: str) -> None:
        """mDNS as Core: on unless switched off — and only when a phone could reach the API (not loopback-only),
        unless ``[service.discovery] interfaces`` names where to advertise. zeroconf loads only then."""
        disco = config.service.discovery
        if not disco.enabled or not (listens_beyond_loopback(host) or disco.interfaces):
            return
        from tagd.daemon.discovery import Discovery

        self.discovery = Discovery(self.api.port, disco.instance_name, list(disco.interfaces) or None)
        try:
            await self.discovery.start()
        except Exception as exc:  # no multicast, no zeroconf …: the API works on, typed addresses still do
            log.warning("mDNS discovery could not start: %s", exc)
            self.discovery = None
        else:
            self._started.append("discovery")

    async def stop(self, notify: bool = True) -> None:
        """Readers first (no new events), then in-flight launches, forwarders, API clients, and the store last."""
        if notify:
            sdnotify.notify("STOPPING=1")
        if self.manager is not None:
            await asyncio.to_thread(self.manager.stop)
            self.manager = None
        started, self._started = self._started, []
        if "discovery" in started and self.discovery is not None:
            await self.discovery.stop()
            self.discovery = None
        if "pipeline" in started:
            await self.pipeline.stop()
            await self.feedback.close()
        if "integrations" in started:
            await self.integrations.stop()
        if "forwarders" in started:
            await close_all(self.forwarders)
        await self._close_publishers()
        if "api" in started:
            await self.api.close()
        for t in list(self._tasks):
            t.cancel()
        if "store" in started:
            self.store.close()
            logging.getLogger().setLevel(self._base_log_level)  # debug_logging was this daemon's, not the process's

    async def run_until_signalled(self) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await self.start()
        loop.add_signal_handler(signal.SIGHUP, lambda: self.spawn(self.reload_on_hangup()))
        await stop.wait()
        await self.stop()

    async def reload_on_hangup(self) -> None:
        """SIGHUP (systemctl reload): settings.reload. A broken file changes nothing and is logged and in the inbox."""
        sdnotify.notify("RELOADING=1", f"MONOTONIC_USEC={time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000}")
        try:
            problems = await self.reload_config()
        except ConfigError:
            pass  # logged and in the inbox (reload_config says so for every caller)
        except Exception:  # a bug in a reload must not leave systemd thinking tagd is still reloading
            log.exception("reload failed")
        else:
            log.info("config reloaded from %s%s", self.config_path,
                     f" (skipped: {'; '.join(problems)})" if problems else "")
        finally:
            sdnotify.notify("READY=1")

    # --- glue for the API ------------------------------------------------------
    def _build_forwarders(self, config: Config) -> list[Any]:
        forwarders = build_forwarders(config.core)
        for fw in forwarders:
            fw.on_notification = self.relay
            fw.on_disconnect = lambda: self.integrations and self.integrations.core_lost()
            fw.instance_headers = {INSTANCE_HEADER: self.instance}
            if hasattr(fw, "write_fn"):  # a fabric satellite writes on this daemon's readers for its hub
                fw.write_fn = self.write_text
        return forwarders

    def _connect_strings(self, config: Config) -> list[str]:
        return config.readers.connect_strings() + self.extra_readers

    def _report_mapping_problems(self, problems: list[str]) -> None:
        for problem in problems:
            log.error("mappings: %s (skipped)", problem)
            self.pipeline.inbox("A mapping file has an error and was skipped", "mappings", severity=2, body=problem)

    def _reader_event(self, event: ReaderEvent) -> None:
        """A reader event on the loop: the forwarders that watch readers (a fabric satellite) see it, then the
        pipeline applies it."""
        for fw in self.forwarders:
            try:
                fw.reader_event(event)
            except Exception:  # a broken observer must not lose the tap
                log.exception("%s: reader event observer failed", fw.name)
        self.pipeline.submit(event)

    def notify(self, method: str, params: Any = None) -> None:
        self.api.broadcast(method, params)
        for observer in [*self.forwarders, *self.publishers]:
            try:
                observer.daemon_notification(method, params)
            except Exception:
                log.exception("notification observer failed")

    async def _start_publishers(self, config: Config) -> None:
        """Core's ``[[service.publishers.mqtt]]``: tagd's notifications to an MQTT topic, as Core publishes them.
        paho and the fabric code load only when one is configured."""
        if any(p.enabled is not False for p in config.service.publishers.mqtt):
            from tagd.daemon.fabric.node import build_publishers

            self.publishers = build_publishers(config.service.publishers.mqtt)
            await asyncio.gather(*(p.start() for p in self.publishers))

    async def _close_publishers(self) -> None:
        publishers, self.publishers = self.publishers, []
        await asyncio.gather(*(p.close() for p in publishers), return_exceptions=True)

    def relay(self, method: str, params: Any = None) -> None:
        """A core's notification, for tagd's clients — except those about readers and tokens, which tagd
        announces itself: Core answers each forwarded ``run`` with its own tokens.added, and its readers are
        not tagd's, so relaying them would show every tap twice and another machine's readers as tagd's."""
        self.pipeline.core_notification(method, params)
        if method not in OWN_NOTIFICATIONS:
            self.notify(method, params)
        if self.integrations is not None:
            self.integrations.core_notification(method, params)

    def _apply_logging(self, config: Config) -> None:
        """``debug_logging`` (the App's debugLogging): debug level now, else back to the command line's level."""
        root = logging.getLogger()
        base = getattr(self, "_base_log_level", root.level)
        level = logging.DEBUG if config.debug_logging else base
        if root.level != level:
            root.setLevel(level)
            log.info("log level: %s", logging.getLevelName(level))

    def _inbox_added(self, message: Any) -> None:
        """Every new inbox message reaches the clients as ``inbox.added`` (Core's notification), from any thread."""
        if "api" in self._started and self._loop is not None:  # before, nobody listens: the App reads the inbox
            self._loop.call_soon_threadsafe(self.notify, "inbox.added", message.to_json())

    def spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def run_token(self, token: Any) -> None:
        """API `run` and GET /run: announced like a scan (tokens.added), launched in the background."""
        self.notify("tokens.added", token.to_json())
        self.spawn(self.pipeline.run_token(token))

    async def stop_media(self) -> None:
        await asyncio.gather(*(fw.stop_media() for fw in self.forwarders), return_exceptions=True)

    def refresh_mappings(self) -> None:
        """Rebuild the table after a change in the store (the file mappings as last read)."""
        self.pipeline.reload_mappings(self.file_mappings)

    def _thaw(self) -> None:
        """A reload: what the old config held may be garbage now; the collector looks at the start-up objects
        again."""
        if (api := getattr(self, "api", None)) is not None:
            api.heap.thaw()
            api.heap.soon()

    async def reload_mappings(self) -> list[str]:
        """mappings.reload: read the config file's [[mappings.entry]] and the mapping files again, and rebuild.
        ConfigError if the config file cannot be used (nothing changes then); the problems of skipped files."""
        async with self._config_lock:
            files = await self._read_files()
            self._thaw()
            self.config = self.pipeline.config = self.config.model_copy(update={"mappings": files.config.mappings})
            return self._use_file_mappings(files)

    async def reload_config(self) -> list[str]:
        """settings.reload, SIGHUP: the whole config file again — settings, readers, cores and mappings — read whole
        before any of it is applied. ConfigError if it cannot be used: nothing changes then."""
        async with self._config_lock:
            files = await self._read_files()
            await self.apply_config(files.config)
            return self._use_file_mappings(files)

    async def update_settings(self, update: dict[str, Any]) -> None:
        """settings.update: the keys changed in the running config and in the file. One change at a time (the
        config lock): two at once each started from the same config and file, and one was lost."""
        async with self._config_lock:
            config = await asyncio.to_thread(update_settings, self.config, update, self.config_path)
            self._config_existed = True  # written now, if it was not there
            await self.apply_config(config)

    async def _read_files(self) -> ConfigFiles:
        try:
            return await asyncio.to_thread(read_files, self.config_path, self._config_existed)
        except ConfigError as exc:  # the log and the inbox say so, and the caller answers it (or SIGHUP logs it)
            log.error("reload refused, nothing changed: %s", exc)
            self.pipeline.inbox("The config file cannot be used; the reload changed nothing", "config", severity=2,
                                body=str(exc))
            raise

    def _use_file_mappings(self, files: ConfigFiles) -> list[str]:
        self.file_mappings = files.file_mappings
        self.refresh_mappings()
        self._report_mapping_problems(files.problems)
        return files.problems

    async def apply_config(self, config: Config) -> None:
        """A new config takes effect: scan settings on the next event, reader changes now."""
        old, self.config = self.config, config
        self._thaw()
        self._apply_logging(config)
        self.pipeline.config = config
        if self.integrations is not None:
            self.integrations.configure(config)
        if self.manager is not None and (old.readers.connect != config.readers.connect
                                         or old.readers.auto_detect != config.readers.auto_detect
                                         or old.readers.drivers != config.readers.drivers
                                         or old.driver_options() != config.driver_options()):
            detect = config.readers.detected_drivers()
            await asyncio.to_thread(self.manager.reconfigure, self._connect_strings(config), bool(detect),
                                    config.driver_options(), detect)
        if old.core != config.core and "forwarders" in self._started:
            # the new cores connect before the old ones close; a launch in flight finishes on the old list
            new = self._build_forwarders(config)
            await start_all(new)
            previous, self.forwarders = self.forwarders, new
            self.pipeline.forwarders = list(new)
            await close_all(previous)
            log.info("cores reconfigured: %s", ", ".join(fw.name for fw in new) or "none")
        if old.service.publishers != config.service.publishers and "forwarders" in self._started:
            await self._close_publishers()
            await self._start_publishers(config)
        self.api.access = self._access(config)  # keys, allowed_ips and encryption apply to the next request
        if old.api.allowed_origins != config.api.allowed_origins:
            self.api.allowed_origins = list(config.api.allowed_origins)
            self.api.origins = OriginPolicy(self.api.port, self.api.allowed_origins)
        if old.service.discovery != config.service.discovery and "api" in self._started:
            if "discovery" in self._started:
                self._started.remove("discovery")
                await self.discovery.stop()
                self.discovery = None
            await self._start_discovery(config, parse_listen(self.listen)[0])
        later = []  # compared with what is open, not with the previous file: putting a value back needs no restart
        if not self._listen_given and config.api.listen != self.listen:
            later.append("[api] listen")
        if "store" in self._started and Path(config.database) != self.store.path:
            later.append("database")
        if later:  # the socket and the database stay open: these wait for a restart, and the inbox says so
            log.warning("restart tagd to apply the new %s", " and ".join(later))
            self.pipeline.inbox("Restart tagd to apply a config change", "config", severity=1,
                                body=f"the new {' and '.join(later)} take effect when tagd restarts")

    def reader_infos(self) -> list[ReaderInfo]:
        return self.manager.infos() if self.manager is not None else []

    async def write_tag(self, reader_id: str, request: WriteRequest) -> None:
        """A next-tag write (pipeline): on the reader that saw the tag, held like a readers.write (so
        readers.write.cancel ends it). WriteError if that reader cannot write."""
        try:
            worker, rid = self.write_worker(reader_id)
        except RpcError as exc:
            raise WriteError(exc.message) from None
        request.reader_id = rid
        with self.begin_write(rid, request):
            await worker.write(request)

    def _reader_object(self, reader_id: str) -> Any:
        """The driver object of a reader on this machine (None for another node's, or one that has gone)."""
        worker = self.manager.worker(reader_id) if self.manager is not None else None
        return worker.reader if worker is not None and worker.info and worker.info.reader_id == reader_id else None

    def readers_not_open(self) -> list[tuple[str, str, str]]:
        """(driver, path, why) of each reader that is trying to open and failing, for ``readers``."""
        workers = self.manager.workers() if self.manager is not None else []
        return [(w.reader.driver, w.reader.path, w.error) for w in workers if w.info is None and w.error]

    def write_worker(self, reader_id: str | None) -> tuple[ReaderWorker, str]:
        """readers.write's choice: the given reader, else the last scan's reader, else the first that writes.

        Returns the worker and the readerId to write on (a worker may serve readers of other nodes)."""
        workers = self.manager.workers() if self.manager is not None else []
        writable = [(w, info) for w in workers for info in w.infos if Capability.WRITE in info.capabilities]
        wanted = reader_id or (self.pipeline.last.reader_id if self.pipeline.last is not None else None)
        for w, info in writable:
            if wanted and info.reader_id == wanted:
                return w, info.reader_id
        if reader_id:
            raise RpcError(f"no connected write-capable reader {reader_id}")
        if not writable:
            raise RpcError("no connected reader can write tags")
        return writable[0][0], writable[0][1].reader_id

    async def write_text(self, reader_id: str | None, text: str, timeout: float, cancel: threading.Event,
                         exclude: frozenset[str] = frozenset()) -> Token:
        """Write ``text`` for another node (a fabric hub) or a deck's card (never on ``exclude``): readers.write's
        checks, one write per reader, the written tag reaching the pipeline as not to be launched."""
        worker, rid = self.write_worker(reader_id)
        request = WriteRequest(text, timeout=timeout, reader_id=rid, cancel=cancel, exclude_uids=exclude)
        with self.begin_write(rid, request):
            seen = await worker.write(request)
        return seen.token

    @contextmanager
    def begin_write(self, reader_id: str, request: WriteRequest) -> Iterator[None]:
        """readers.write: ``request`` is the write waiting on ``reader_id`` while the block runs. One per reader:
        WriteError if one already waits there."""
        if any(rid == reader_id for rid, _ in self._writes.values()):
            raise WriteError(f"a write to reader {reader_id} is already waiting for a tag "
                             "(readers.write.cancel ends it)")
        self._writes[id(request)] = (reader_id, request)
        try:
            yield
        finally:
            self._writes.pop(id(request), None)

    def cancel_writes(self, reader_id: str | None = None) -> None:
        """readers.write.cancel: end the waiting writes on one reader (or on all); a new one may be asked at once."""
        for key, (rid, request) in list(self._writes.items()):
            if reader_id is None or reader_id == rid:
                request.cancel.set()
                self._writes.pop(key, None)

    @property
    def pending_writes(self) -> list[str]:
        """The readers a readers.write is waiting on (for status and tests)."""
        return [rid for rid, _ in self._writes.values()]

    def zaparoo_core(self) -> Any:
        """The first ``[[core]]`` of type zaparoo, or None."""
        from tagd.daemon.forwarders.zaparoo import ZaparooForwarder

        return next((fw for fw in self.forwarders if isinstance(fw, ZaparooForwarder)), None)

    async def core_version(self) -> tuple[str | None, str | None]:
        """The zaparoo core's (version, platform) for ``version``; (None, None) with none, or one never heard from."""
        core = self.zaparoo_core()
        return await core.about() if core is not None else (None, None)

    async def proxy(self, method: str, params: Any) -> Any:
        """Methods tagd does not serve go to the zaparoo core, if one is configured; else nocore.py answers."""
        from tagd.daemon.forwarders.zaparoo import CoreError

        core = self.zaparoo_core()
        if core is None:
            from tagd.daemon.api import nocore

            return nocore.answer(method)
        try:
            return await core.call(method, params)
        except CoreError as exc:
            raise RpcError(exc.message, exc.code, exc.data) from None
        except ForwardError as exc:
            raise RpcError(f"core unreachable: {exc}") from None


__all__ = ["Daemon", "WriteError"]
