"""The daemon: config → store, mappings, forwarders, pipeline, readers, API; and a clean shutdown.

Reader threads hand events to the loop (``asyncio_sink``) where the pipeline applies them; the
pipeline's notifications and the core's (media.started …) go to every API client. Start-up does the
least it can before the API answers: the store opens, the API listens, then readers open in their own
threads.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from pathlib import Path
from typing import TYPE_CHECKING, Any, Awaitable

from tagd.daemon import sdnotify
from tagd.daemon.api import methods
from tagd.daemon.api.jsonrpc import NotFound, RpcError
from tagd.daemon.api.server import ApiServer
from tagd.daemon.config import Config, default_config_path
from tagd.daemon.forwarders import ForwardError, build_forwarders, close_all, start_all
from tagd.daemon.mappings import MappingTable, load_mapping_dir, mappings_dir_for
from tagd.daemon.pipeline import Pipeline
from tagd.daemon.store import Store
from tagd.readers.base import Capability, ReaderInfo, ReaderWorker, WriteError, asyncio_sink

if TYPE_CHECKING:
    from tagd.readers.manager import ReaderManager

log = logging.getLogger(__name__)

OWN_NOTIFICATIONS = frozenset({"readers.added", "readers.removed", "tokens.added", "tokens.removed"})


class Daemon:
    def __init__(self, config: Config, config_path: str | os.PathLike[str] | None = None,
                 extra_readers: list[str] | None = None, listen: str | None = None) -> None:
        self.config = config
        self.config_path = Path(config_path) if config_path else default_config_path()
        self.extra_readers = extra_readers or []
        self.listen = listen or config.api.listen
        self.pending_writes: dict[int, tuple[str, Any]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self.store: Store
        self.pipeline: Pipeline
        self.api: ApiServer
        self.manager: ReaderManager | None = None  # set once the API listens (the drivers load after it)
        self.forwarders: list[Any] = []
        self._started: list[str] = []  # what stop() has to undo, in start order

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
        Path(self.config.database).parent.mkdir(parents=True, exist_ok=True)
        self.store = await asyncio.to_thread(Store, self.config.database)
        self._started.append("store")
        self.forwarders = build_forwarders(self.config.core)
        for fw in self.forwarders:
            fw.on_notification = self.relay
        table = MappingTable.from_sources(self.store.mappings(), self._file_mappings())
        self.pipeline = Pipeline(self.config, self.store, table, self.forwarders, self.notify)
        self._started.append("pipeline")
        self.api = ApiServer(methods.build(self), self.config.api.keys, self.run_token,
                             allowed_origins=self.config.api.allowed_origins)
        host, _, port = self.listen.rpartition(":")
        await self.api.start(host.strip("[]"), int(port))
        self._started.append("api")
        await start_all(self.forwarders)
        self._started.append("forwarders")
        from tagd.readers.manager import ReaderManager  # the drivers load after the API answers

        connect = [c.connect_string for c in self.config.readers.connect if c.enabled] + self.extra_readers
        self.manager = ReaderManager(asyncio_sink(loop, self.pipeline.submit), connect,
                                     self.config.readers.auto_detect, self.config.readers.options)
        self.manager.start()
        sdnotify.notify("READY=1", f"STATUS=listening on {host}:{self.api.port}")
        log.info("tagd ready: API on %s:%d, %d reader(s) configured", host, self.api.port, len(connect))

    async def stop(self, notify: bool = True) -> None:
        """Readers first (no new events), then in-flight launches, forwarders, API clients, and the store last."""
        if notify:
            sdnotify.notify("STOPPING=1")
        if self.manager is not None:
            await asyncio.to_thread(self.manager.stop)
            self.manager = None
        started, self._started = self._started, []
        if "pipeline" in started:
            await self.pipeline.stop()
        if "forwarders" in started:
            await close_all(self.forwarders)
        if "api" in started:
            await self.api.close()
        for t in list(self._tasks):
            t.cancel()
        if "store" in started:
            self.store.close()

    async def run_until_signalled(self) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await self.start()
        await stop.wait()
        await self.stop()

    # --- glue for the API ------------------------------------------------------
    def _file_mappings(self) -> list[Any]:
        entries = MappingTable.from_config(self.config.mappings.entry, str(self.config_path))
        try:
            return list(entries) + list(load_mapping_dir(mappings_dir_for(self.config_path)))
        except Exception as exc:  # a broken mapping file is reported, not fatal
            log.error("mapping files: %s", exc)
            return list(entries)

    def notify(self, method: str, params: Any = None) -> None:
        self.api.broadcast(method, params)

    def relay(self, method: str, params: Any = None) -> None:
        """A core's notification, for tagd's clients — except those about readers and tokens, which tagd
        announces itself: Core answers each forwarded ``run`` with its own tokens.added, and its readers are
        not tagd's, so relaying them would show every tap twice and another machine's readers as tagd's."""
        if method not in OWN_NOTIFICATIONS:
            self.notify(method, params)

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

    async def reload_mappings(self) -> None:
        self.pipeline.reload_mappings(await asyncio.to_thread(self._file_mappings))

    def apply_config(self, config: Config) -> None:
        self.config = config
        self.pipeline.config = config

    def reader_infos(self) -> list[ReaderInfo]:
        return self.manager.infos() if self.manager is not None else []

    def write_worker(self, reader_id: str | None) -> ReaderWorker:
        """readers.write's choice: the given reader, else the last scan's reader, else the first that writes."""
        workers = self.manager.workers() if self.manager is not None else []
        writable = [w for w in workers if w.info and Capability.WRITE in w.info.capabilities]
        if reader_id:
            for w in writable:
                if w.info and w.info.reader_id == reader_id:
                    return w
            raise RpcError(f"no connected write-capable reader {reader_id}")
        last = self.pipeline.last
        if last is not None and last.reader_id:
            for w in writable:
                if w.info and w.info.reader_id == last.reader_id:
                    return w
        if not writable:
            raise RpcError("no connected reader can write tags")
        return writable[0]

    async def proxy(self, method: str, params: Any) -> Any:
        """Methods tagd does not serve go to the zaparoo core, if one is configured."""
        from tagd.daemon.forwarders.zaparoo import CoreError, ZaparooForwarder

        core = next((fw for fw in self.forwarders if isinstance(fw, ZaparooForwarder)), None)
        if core is None:
            raise NotFound(method)
        try:
            return await core.call(method, params)
        except CoreError as exc:
            raise RpcError(exc.message, exc.code, exc.data) from None
        except ForwardError as exc:
            raise RpcError(f"core unreachable: {exc}") from None


__all__ = ["Daemon", "WriteError"]
