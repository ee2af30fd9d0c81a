"""Which readers run: the configured ones, plus PN532s found on serial ports and ACR122Us in pcscd's list.

Configured readers get a :class:`ReaderWorker` each, which reopens its device every ``retry`` seconds
while it is missing. With auto-detect, a detection thread scans whenever the
:class:`~tagd.readers.hotplug.DeviceWatcher` reports a change, and at least every ``scan_interval``:

- serial nodes nobody serves yet are probed once (:func:`~tagd.readers.hotplug.probe_pn532`); a PN532
  gets a worker; a port without one is remembered by its node identity and left alone until the node
  changes (re-plugged, or udev changed its permissions); a port another process holds is retried later;
- a detected reader whose node disappeared is stopped (pruned); a quick replug that keeps the node is
  the worker's own reconnect;
- PC/SC readers whose name contains "ACR122" get a worker while pcscd lists them.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any, Callable, Collection

from tagd.readers import registry
from tagd.readers.base import ReaderInfo, ReaderWorker, Sink, driver_class, open_reader, parse_connect
from tagd.readers.hotplug import SERIAL_PATTERNS, DeviceWatcher, Probe, node_identity, probe_pn532, serial_candidates

log = logging.getLogger(__name__)

DETECTABLE = ("pn532uart", "acr122")  # what auto-detection can find: a PN532 on a serial port, an ACR122U in pcscd
BUSY_RETRY = 10.0  # seconds before looking again at a port another program holds
PCSC_PREFIX = "pcsc:"
# a configured one of these serves its reader: do not detect it
PCSC_DRIVERS = tuple(n for n, spec in registry.by_name().items() if spec.module == "tagd.readers.acr122")


def _device_of(driver: str, path: str) -> str:
    """The device node a configured reader uses, so that auto-detection never probes it."""
    if driver == "nfcpy" and path.startswith("tty:"):  # nfcpy's tty:USB0:pn532 means /dev/ttyUSB0
        name = path.split(":")[1]
        return os.path.realpath(f"/dev/tty{name}" if os.path.exists(f"/dev/tty{name}") else f"/dev/{name}")
    return os.path.realpath(path) if path.startswith("/") else path


class ReaderManager:
    def __init__(self, sink: Sink, connect: list[str], auto_detect: bool = True,
                 options: dict[str, dict[str, Any]] | None = None, scan_interval: float = 1.0,
                 retry: float = 1.0, patterns: tuple[str, ...] = SERIAL_PATTERNS,
                 probe: Callable[[str], Probe] = probe_pn532, use_udev: bool = True,
                 detect: Collection[str] = DETECTABLE) -> None:
        self.sink = sink
        self.connect = list(connect)
        self.auto_detect = auto_detect
        self.detect = frozenset(detect)  # which kinds auto-detection looks for: pn532uart (serial), acr122 (PC/SC)
        self.options = options or {}
        self.scan_interval = scan_interval
        self.retry = retry
        self.patterns = patterns
        self.probe = probe
        self.use_udev = use_udev
        self._configured: dict[str, ReaderWorker] = {}  # connect string → worker
        self._detected: dict[str, ReaderWorker] = {}  # serial name or "pcsc:<reader name>" → worker
        self._failed: dict[str, tuple[tuple[int, ...] | None, float]] = {}  # real node → (identity, retry at)
        self._stop = threading.Event()
        self._detect_stop = threading.Event()  # ends auto-detection alone (reconfigure turned it off)
        self._thread: threading.Thread | None = None
        self._watcher: DeviceWatcher | None = None
        self._lock = threading.Lock()

    def options_for(self, driver: str) -> dict[str, Any]:
        """Per-driver options; an alias (``pn532``, ``acr122pcsc``) also finds those of the drivers it extends
        (``pn532uart``; ``acr122`` and ``pcsc``), the most specific name winning."""
        cls = driver_class(driver)
        names = [c.__dict__["driver"] for c in reversed(cls.__mro__) if "driver" in c.__dict__] if cls else []
        merged: dict[str, Any] = {}
        for name in [*names, driver]:
            merged.update(self.options.get(name, {}))
        return merged

    def start(self) -> None:
        for connect in self.connect:
            self._open_configured(connect)
        if self.auto_detect:
            self._start_detection()

    def stop(self) -> None:
        self._stop.set()
        self._stop_detection()
        for w in self.workers():
            w.stop()

    def reconfigure(self, connect: list[str], auto_detect: bool,
                    options: dict[str, dict[str, Any]] | None = None, detect: Collection[str] = DETECTABLE) -> None:
        """Apply a changed reader config (settings.update, settings.reload) without a restart.

        A configured reader that is no longer listed, or whose options changed, is stopped (its ReaderLost
        says so); new entries open. Detected readers are dropped when auto-detection is turned off, and when
        the options change (the next pass finds them again, with the new options). Blocks while workers stop:
        call it from a thread."""
        options = options or {}
        options_changed = options != self.options or frozenset(detect) != self.detect
        self.options = options
        self.detect = frozenset(detect)
        if not auto_detect or options_changed:
            self._stop_detection()
        with self._lock:
            stale = [c for c, w in self._configured.items() if c not in connect or
                     w.reader.options != self.options_for(parse_connect(c)[0])]
            stopped = [self._configured.pop(c) for c in stale]
            if not auto_detect or options_changed:
                stopped += self._detected.values()
                self._detected.clear()
                self._failed.clear()
        for worker in stopped:
            worker.stop()
        self.connect = list(connect)
        for c in self.connect:
            if c not in self._configured:
                self._open_configured(c)
        self.auto_detect = auto_detect
        if auto_detect and self._thread is None:
            self._start_detection()

    def _open_configured(self, connect: str) -> None:
        try:
            driver, _ = parse_connect(connect)
            reader = open_reader(connect, self.options_for(driver))
        except ValueError as exc:
            log.error("reader %s: %s", connect, exc)
            return
        with self._lock:
            self._configured[connect] = ReaderWorker(reader, self.sink, self.retry).start()

    def _start_detection(self) -> None:
        self._detect_stop.clear()
        self._watcher = DeviceWatcher(self.patterns, self.use_udev)
        log.debug("reader auto-detection: watching with %s", self._watcher.sources or ["a periodic scan"])
        self._thread = threading.Thread(target=self._scan_loop, name="reader-detect", daemon=True)
        self._thread.start()

    def _stop_detection(self) -> None:
        self._detect_stop.set()
        if self._watcher is not None:
            self._watcher.wake()
        if self._thread:
            self._thread.join(5)
            self._thread = None
        if self._watcher is not None:
            self._watcher.close()
            self._watcher = None

    def _stopping(self) -> bool:
        return self._stop.is_set() or self._detect_stop.is_set()

    def workers(self) -> list[ReaderWorker]:
        with self._lock:
            return list(self._configured.values()) + list(self._detected.values())

    def worker(self, reader_id: str) -> ReaderWorker | None:
        for w in self.workers():
            if w.serves(reader_id) is not None:
                return w
        return None

    def infos(self) -> list[ReaderInfo]:
        return [info for w in self.workers() for info in w.infos]

    # --- auto-detection ---------------------------------------------------
    def _scan_loop(self) -> None:
        watcher = self._watcher
        assert watcher is not None
        while not self._stopping():
            try:
                self.scan_once()
            except Exception:
                log.exception("reader auto-detection failed")
            watcher.wait(self.scan_interval)

    def scan_once(self) -> None:
        """One pass: PC/SC readers, then prune vanished serial readers and probe new serial nodes (each kind only
        when :attr:`detect` has it)."""
        if "acr122" in self.detect:
            self._scan_pcsc()
        self._prune_serial()
        if "pn532uart" in self.detect:
            self._scan_serial()

    def _in_use(self) -> set[str]:
        return {_device_of(w.reader.driver, w.reader.path) for w in self.workers()}

    def _prune_serial(self) -> None:
        with self._lock:
            gone = [name for name in self._detected if not name.startswith(PCSC_PREFIX) and not os.path.exists(name)]
            stopped = [self._detected.pop(name) for name in gone]
        for worker in stopped:
            log.info("reader on %s unplugged", worker.reader.path)
            worker.stop()

    def _scan_serial(self) -> None:
        candidates = serial_candidates(self.patterns)
        for real in [r for r in self._failed if r not in candidates]:
            del self._failed[real]
        used = self._in_use()
        now = time.monotonic()
        for real, name in candidates.items():
            if real in used or self._stopping():
                continue
            identity = node_identity(real)
            failed = self._failed.get(real)
            if failed is not None and failed[0] == identity and now < failed[1]:
                continue
            result = self.probe(name)
            if result is Probe.PN532:
                self._failed.pop(real, None)
                log.info("PN532 found on %s", name)
                self._add_detected(name, f"pn532uart:{name}")
                used.add(real)
            elif result is not Probe.GONE:
                retry_at = now + BUSY_RETRY if result is Probe.BUSY else float("inf")
                self._failed[real] = (identity, retry_at)
                log.debug("no PN532 on %s (%s)", name, result.value)

    def _scan_pcsc(self) -> None:
        """ACR122U readers come and go in pcscd's reader list (nothing to probe: pcscd knows what they are)."""
        try:
            from tagd.readers.acr122 import list_pcsc_readers
        except ImportError:
            return
        names = {n for n in list_pcsc_readers() if "acr122" in n.lower()}
        with self._lock:
            gone = [k for k in self._detected if k.startswith(PCSC_PREFIX) and k[len(PCSC_PREFIX):] not in names]
            stopped = [self._detected.pop(k) for k in gone]
        for worker in stopped:
            worker.stop()
        served = {w.reader.path for w in self.workers() if w.reader.driver in PCSC_DRIVERS}
        for name in sorted(names - served):
            self._add_detected(PCSC_PREFIX + name, f"acr122:{name}")

    def _add_detected(self, key: str, connect: str) -> None:
        reader = open_reader(connect, self.options_for(parse_connect(connect)[0]))
        with self._lock:
            if not self._stopping():  # not after reconfigure() turned detection off mid-pass
                self._detected[key] = ReaderWorker(reader, self.sink, self.retry).start()
