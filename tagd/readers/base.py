"""The one small interface every reader driver implements, and the thread that runs it.

A driver is blocking code (pyserial, pyscard, a file). It never talks to asyncio
itself: a :class:`ReaderWorker` owns one driver in one thread, calls
:meth:`Reader.poll` in a loop, serves write requests between polls, turns
:class:`ReaderError` into :class:`ReaderLost` and reopens the device every
second. Events go to a sink callable; :func:`asyncio_sink` makes one that hands
them to an event loop with ``call_soon_threadsafe``.

Connect strings are ``<driver>:<path>`` (``pn532uart:/dev/ttyUSB0``,
``file:/abs/path``); :func:`register` adds a driver, :func:`open_reader` builds one.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import threading
import time
import types
from abc import ABC, abstractmethod
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Union

from tagd.token import Token, reader_id

log = logging.getLogger(__name__)


class ReaderError(Exception):
    """The device is gone or stopped answering. The worker reports ReaderLost and reopens."""


class WriteError(Exception):
    """A write could not be done (no tag in time, tag too small, read-only, cancelled, excluded UID...).

    The message names what was wrong; nothing on the tag was changed unless it says so."""


class WriteCancelled(WriteError):
    pass


class TagExcluded(WriteError):
    """The tag on the reader is one the request excludes (a deck's card just written, still lying there): the
    caller may wait for the next tag instead of failing."""


class Capability(enum.Flag):
    READ = enum.auto()
    WRITE = enum.auto()
    REMOVABLE = enum.auto()  # the reader reports removal (TagGone)


@dataclass(frozen=True)
class ReaderInfo:
    driver: str  # registry name, e.g. "pn532uart"
    path: str  # what the user configured, e.g. "/dev/ttyUSB0"
    stable_path: str  # for the readerId: USB topology, else "<driver>:<path>"
    name: str = ""  # human description, e.g. "PN532 v1.6"
    capabilities: Capability = Capability.READ
    id: str = ""  # a readerId given by another node (an MQTT satellite's reader keeps its own id)
    remote: str = ""  # the node the reader is on ("" = this one); that node applies ignore-on-connect itself

    @property
    def reader_id(self) -> str:
        return self.id or reader_id(self.driver, self.stable_path)

    @property
    def connect_string(self) -> str:
        return f"{self.driver}:{self.path}"


# --- events ---------------------------------------------------------------


@dataclass(frozen=True)
class TagSeen:
    reader_id: str
    token: Token
    detail: dict[str, Any] = field(default_factory=dict)  # kind, atqa, sak, capacity... for logs and `tagd scan --all`
    written: bool = False  # True when this is the tag the reader just wrote (the daemon must not launch it)
    launch: bool = True  # False: record and announce it, do not launch (e.g. a satellite's tap that arrived too late)


@dataclass(frozen=True)
class TagGone:
    reader_id: str


@dataclass(frozen=True)
class ReaderAdded:
    info: ReaderInfo


@dataclass(frozen=True)
class ReaderLost:
    reader_id: str
    reason: str


@dataclass(frozen=True)
class ReaderFailed:
    """A reader that has not opened yet failed to (sent once per worker: it keeps retrying, quietly)."""

    connect: str  # driver:path as configured
    reason: str


ReaderEvent = Union[TagSeen, TagGone, ReaderAdded, ReaderLost, ReaderFailed]
Sink = Callable[[ReaderEvent], None]


@dataclass
class WriteRequest:
    """Asks a reader to write one NDEF Text record. Checked by the driver between steps."""

    text: str
    target_uid: str | None = None  # only write this tag (normalised hex)
    reader_id: str | None = None  # which reader, for a driver that serves several (an MQTT hub's satellites)
    exclude_uids: frozenset[str] = frozenset()  # never write these
    timeout: float = 30.0  # how long to wait for a tag
    cancel: threading.Event = field(default_factory=threading.Event)


def wait_for_tag(request: WriteRequest, attempt: Callable[[float], bool]) -> None:
    """Call ``attempt(seconds_left)`` until it reports a tag; WriteCancelled or WriteError (timeout) otherwise."""
    deadline = time.monotonic() + request.timeout
    while not attempt(max(0.0, deadline - time.monotonic())):
        if request.cancel.is_set():
            raise WriteCancelled("write cancelled")
        if time.monotonic() > deadline:
            raise WriteError(f"no tag within {request.timeout:g} s")


# --- the interface --------------------------------------------------------


class Reader(ABC):
    """A driver. All methods except :meth:`interrupt` run in the reader's own thread."""

    driver: ClassVar[str]
    capabilities: ClassVar[Capability] = Capability.READ | Capability.REMOVABLE

    def __init__(self, path: str, options: dict[str, Any] | None = None) -> None:
        self.path = path
        self.options = dict(options or {})

    @abstractmethod
    def open(self) -> ReaderInfo:
        """Open the device and return what it is. Raises ReaderError if it cannot."""

    @abstractmethod
    def close(self) -> None:
        """Release the device. Must not raise."""

    @abstractmethod
    def poll(self) -> list[ReaderEvent]:
        """Block until something happens or about one poll period passes; return the events.

        Raises ReaderError when the device is lost. Must return soon after interrupt()."""

    def interrupt(self) -> None:
        """Thread-safe: make a blocking poll() return early (a write or stop is waiting)."""

    def dispose(self) -> None:
        """Release what outlives close() (e.g. an interrupt pipe): the reader will not be opened again."""

    def write(self, request: WriteRequest) -> TagSeen:
        """Wait for a tag, write request.text, verify, and return the tag as now read.

        Raises WriteError (or WriteCancelled) with a clear message."""
        raise WriteError(f"the {self.driver} reader cannot write tags")


# --- registry -------------------------------------------------------------

_DRIVERS: dict[str, type[Reader]] = {}


def register(cls: type[Reader]) -> type[Reader]:
    """Class decorator: make a driver available under its ``driver`` name."""
    _DRIVERS[cls.driver] = cls
    return cls


def drivers() -> dict[str, type[Reader]]:
    """Every built-in driver whose dependencies are present, by name and alias (this imports them all)."""
    from tagd.readers import registry

    registry.load_all()
    for name in registry.names():
        driver_class(name)
    return dict(_DRIVERS)


def driver_class(driver: str) -> type[Reader] | None:
    """The class of one driver, importing only its module. An alias in the registry's table gets a subclass
    of its driver's class under its own name (so its readers report that name), made on first use."""
    if driver not in _DRIVERS:
        from tagd.readers import registry

        base = registry.canonical(driver)
        if registry.load(driver) and base is not None and base != driver and base in _DRIVERS:
            parent = _DRIVERS[base]
            register(types.new_class(parent.__name__, (parent,), exec_body=lambda ns: ns.update(
                driver=driver, __module__=parent.__module__, __doc__=f"``{driver}:`` is another name for {base}.")))
    return _DRIVERS.get(driver)


def parse_connect(connect: str) -> tuple[str, str]:
    """``"pn532uart:/dev/ttyUSB0"`` → ``("pn532uart", "/dev/ttyUSB0")``."""
    driver, sep, path = connect.partition(":")
    if not sep or not driver:
        raise ValueError(f"connect string {connect!r} is not <driver>:<path>")
    return driver.strip().lower(), path


def open_reader(connect: str, options: dict[str, Any] | None = None) -> Reader:
    """Build (not open) the reader named by a connect string."""
    driver, path = parse_connect(connect)
    cls = driver_class(driver)
    if cls is None:
        from tagd.readers import registry

        entry = registry.spec(driver)
        reason = registry.unavailable().get(entry.module.rsplit(".", 1)[-1]) if entry else None
        if reason:
            raise ValueError(f"reader driver {driver!r} is unavailable: {reason}")
        raise ValueError(f"unknown reader driver {driver!r} (known: {', '.join(sorted(drivers()))})")
    return cls(path, options)


# --- the worker thread ----------------------------------------------------


class ReaderWorker:
    """Runs one Reader in its own thread: poll loop, writes, reconnect every `retry` seconds."""

    def __init__(self, reader: Reader, sink: Sink, retry: float = 1.0) -> None:
        self.reader = reader
        self.sink = sink
        self.retry = retry
        self.info: ReaderInfo | None = None
        self.error = ""  # why the last attempt to open failed ("" once open)
        self._opened = False  # ever opened: a reader that never did is reported once (ReaderFailed)
        self.remote: dict[str, ReaderInfo] = {}  # readers this driver serves for other nodes, by readerId
        self._stop = threading.Event()
        self._writes: list[tuple[WriteRequest, Future[TagSeen]]] = []
        self._lock = threading.Lock()
        self._writing: WriteRequest | None = None  # the write waiting for a tag now, if any
        self._thread = threading.Thread(target=self._run, name=f"reader-{reader.driver}:{reader.path}", daemon=True)

    @property
    def connected(self) -> bool:
        return self.info is not None

    def start(self) -> "ReaderWorker":
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        writing = self._writing
        if writing is not None:  # a write waiting for a tag would otherwise hold the thread until its timeout
            writing.cancel.set()
        self.reader.interrupt()
        self._thread.join(timeout)
        if not self._thread.is_alive():
            self.reader.dispose()

    def submit_write(self, request: WriteRequest) -> Future[TagSeen]:
        """Queue a write; the future resolves to the written tag or a WriteError."""
        fut: Future[TagSeen] = Future()
        with self._lock:
            self._writes.append((request, fut))
        self.reader.interrupt()
        return fut

    async def write(self, request: WriteRequest) -> TagSeen:
        return await asyncio.wrap_future(self.submit_write(request))

    def _next_write(self) -> tuple[WriteRequest, Future[TagSeen]] | None:
        with self._lock:
            return self._writes.pop(0) if self._writes else None

    def _fail_writes(self, exc: Exception) -> None:
        while (item := self._next_write()) is not None:
            item[1].set_exception(exc)

    @property
    def infos(self) -> list[ReaderInfo]:
        """This worker's reader and the remote readers it serves (all connected)."""
        info = self.info
        return ([info] if info is not None else []) + list(self.remote.values())

    def serves(self, reader_id: str) -> ReaderInfo | None:
        info = self.info
        if info is not None and info.reader_id == reader_id:
            return info
        return self.remote.get(reader_id) if info is not None else None

    def _emit(self, event: ReaderEvent) -> None:
        if isinstance(event, ReaderAdded) and event.info is not self.info:
            self.remote[event.info.reader_id] = event.info
        elif isinstance(event, ReaderLost) and event.reader_id in self.remote:
            del self.remote[event.reader_id]
        try:
            self.sink(event)
        except Exception:  # a broken sink must not kill the reader
            log.exception("reader event sink failed")

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.info = self.reader.open()
            except Exception as exc:  # ReaderError, or a driver bug: it must not kill the thread
                if not isinstance(exc, ReaderError):
                    log.exception("open %s:%s crashed", self.reader.driver, self.reader.path)
                self._open_failed(str(exc) or exc.__class__.__name__)
                self._fail_writes(WriteError(f"reader not connected: {exc}"))
                self._stop.wait(self.retry)
                continue
            self.error, self._opened = "", True
            info = self.info
            self._emit(ReaderAdded(info))
            reason = "stopped"
            try:
                while not self._stop.is_set():
                    item = self._next_write()
                    if item is not None:
                        self._do_write(*item)
                        continue
                    for event in self.reader.poll():
                        self._emit(event)
            except ReaderError as exc:
                reason = str(exc) or exc.__class__.__name__
            except Exception as exc:
                log.exception("reader %s crashed", info.reader_id)
                reason = f"driver error: {exc}"
            finally:
                for rid in list(self.remote):  # the readers it served for other nodes go with it
                    self._emit(ReaderLost(rid, reason))
                self.info = None
                try:
                    self.reader.close()
                except Exception:
                    log.exception("closing reader %s", info.reader_id)
            self._emit(ReaderLost(info.reader_id, reason))
            if not self._stop.is_set():
                self._stop.wait(self.retry)
        self._fail_writes(WriteCancelled("reader stopped"))

    def _open_failed(self, reason: str) -> None:
        """Kept for ``readers`` (not connected, and why); a reader that never opened says so once, not per retry."""
        connect = f"{self.reader.driver}:{self.reader.path}"
        first = not self._opened and not self.error
        self.error = reason
        if first:
            log.warning("reader %s does not open: %s (retrying every %g s)", connect, reason, self.retry)
            self._emit(ReaderFailed(connect, reason))
        else:
            log.debug("open %s failed: %s", connect, reason)

    def _do_write(self, request: WriteRequest, fut: Future[TagSeen]) -> None:
        if not fut.set_running_or_notify_cancel():
            return
        self._writing = request
        if self._stop.is_set():
            request.cancel.set()
        try:
            seen = self.reader.write(request)
        except ReaderError as exc:
            fut.set_exception(WriteError(f"reader lost during write: {exc}"))
            raise
        except WriteError as exc:
            fut.set_exception(exc)
        except Exception as exc:
            log.exception("write crashed")
            fut.set_exception(WriteError(f"write failed: {exc}"))
        else:
            # Emit before resolving: a caller woken by the future (readers.write) must find the written tag already
            # handed to the sink — both reach the loop through call_soon_threadsafe, which keeps this order.
            self._emit(seen)
            fut.set_result(seen)
        finally:
            self._writing = None


def asyncio_sink(loop: asyncio.AbstractEventLoop, handler: Callable[[ReaderEvent], Any]) -> Sink:
    """A sink that runs ``handler(event)`` on the event loop (thread-safe hand-off)."""

    def sink(event: ReaderEvent) -> None:
        try:
            loop.call_soon_threadsafe(handler, event)
        except RuntimeError:  # loop closed during shutdown
            pass

    return sink
