"""Which readers run: the configured ones, plus PN532s found on serial ports (auto-detect, hotplug).

Configured readers get a :class:`ReaderWorker` each, which reopens its device every second while it is
missing. With auto-detect, a scan every second looks at serial device nodes: a new node is probed once
(wake-up + SAMConfiguration + GetFirmwareVersion, short timeouts, exclusive open) and, if a PN532
answers, gets a worker; a node that fails is remembered (by device number and inode) and not probed
again until it changes; a worker whose node disappeared is stopped, so unplugged readers are pruned.
"""

from __future__ import annotations

import glob
import logging
import os
import threading
from typing import Any

from tagd.readers.base import ReaderError, ReaderInfo, ReaderWorker, Sink, open_reader

log = logging.getLogger(__name__)

SERIAL_PATTERNS = ("/dev/ttyUSB*", "/dev/ttyACM*", "/dev/tagd-pn532*")


def _node_id(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_rdev, st.st_ino)


class ReaderManager:
    def __init__(self, sink: Sink, connect: list[str], auto_detect: bool = True,
                 options: dict[str, dict[str, Any]] | None = None, scan_interval: float = 1.0,
                 retry: float = 1.0, patterns: tuple[str, ...] = SERIAL_PATTERNS) -> None:
        self.sink = sink
        self.connect = list(connect)
        self.auto_detect = auto_detect
        self.options = options or {}
        self.scan_interval = scan_interval
        self.retry = retry
        self.patterns = patterns
        self._configured: list[ReaderWorker] = []
        self._detected: dict[str, ReaderWorker] = {}
        self._failed: dict[str, tuple[int, int] | None] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def start(self) -> None:
        for connect in self.connect:
            try:
                reader = open_reader(connect, self.options.get(connect.split(":", 1)[0], {}))
            except ValueError as exc:
                log.error("reader %s: %s", connect, exc)
                continue
            self._configured.append(ReaderWorker(reader, self.sink, self.retry).start())
        if self.auto_detect:
            self._thread = threading.Thread(target=self._scan_loop, name="reader-detect", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(5)
        for w in self.workers():
            w.stop()

    def workers(self) -> list[ReaderWorker]:
        with self._lock:
            return self._configured + list(self._detected.values())

    def worker(self, reader_id: str) -> ReaderWorker | None:
        for w in self.workers():
            if w.info is not None and w.info.reader_id == reader_id:
                return w
        return None

    def infos(self) -> list[ReaderInfo]:
        return [w.info for w in self.workers() if w.info is not None]

    # --- auto-detection ---------------------------------------------------
    def _in_use(self) -> set[str]:
        return {os.path.realpath(w.reader.path) for w in self.workers()}

    def _scan_loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.scan_once()
            except Exception:
                log.exception("reader auto-detection failed")
            self._stop.wait(self.scan_interval)

    def scan_once(self) -> None:
        """One pass: prune detected readers whose node is gone, probe nodes nobody serves yet; PC/SC too."""
        self._scan_pcsc()
        with self._lock:
            gone = [path for path in self._detected if not path.startswith("pcsc:") and not os.path.exists(path)]
            stopped = [self._detected.pop(path) for path in gone]
        for worker in stopped:  # pruned: the device node vanished (a quick replug is the worker's own job)
            worker.stop()
        nodes = sorted({p for pattern in self.patterns for p in glob.glob(pattern) if os.path.exists(p)})
        for path in [p for p in self._failed if not os.path.exists(p)]:
            del self._failed[path]
        used = self._in_use()
        for node in nodes:
            real = os.path.realpath(node)
            if real in used or (node in self._failed and self._failed[node] == _node_id(node)):
                continue
            if self._probe(node):
                reader = open_reader(f"pn532uart:{node}", self.options.get("pn532uart", {}))
                with self._lock:
                    self._detected[node] = ReaderWorker(reader, self.sink, self.retry).start()
                used.add(real)
            else:
                self._failed[node] = _node_id(node)

    def _scan_pcsc(self) -> None:
        """ACR122U readers come and go in pcscd's reader list (nothing to probe: pcscd knows what they are)."""
        try:
            from tagd.readers.acr122 import list_pcsc_readers
        except ImportError:
            return
        names = {n for n in list_pcsc_readers() if "acr122" in n.lower()}
        key = "pcsc:{}".format
        with self._lock:
            gone = [k for k in self._detected if k.startswith("pcsc:") and k[5:] not in names]
            stopped = [self._detected.pop(k) for k in gone]
        for worker in stopped:
            worker.stop()
        served = {w.reader.path for w in self.workers() if w.reader.driver in ("acr122", "pcsc")}
        for name in sorted(names - served):
            reader = open_reader(f"acr122:{name}", self.options.get("acr122", {}))
            with self._lock:
                self._detected[key(name)] = ReaderWorker(reader, self.sink, self.retry).start()

    def _probe(self, path: str) -> bool:
        reader = open_reader(f"pn532uart:{path}")
        try:
            reader.open()
        except (ReaderError, ValueError, OSError) as exc:
            log.debug("probe %s: no PN532 (%s)", path, exc)
            return False
        else:
            reader.close()
            return True
        finally:
            reader.dispose()
