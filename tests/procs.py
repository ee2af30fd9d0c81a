"""Subprocesses for end-to-end tests: `tagd run`, simulators and fake cores, with their output collected."""

from __future__ import annotations

import json
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

FAKE_CORE = Path(__file__).resolve().parent / "daemon" / "fake_core.py"


class Proc:
    """A subprocess whose stdout lines are collected by a thread."""

    def __init__(self, argv, **kw):
        self.p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True, **kw)
        self.lines: queue.Queue = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self):
        for line in self.p.stdout:
            self.lines.put(line.rstrip("\n"))

    def wait_line(self, predicate=lambda line: True, timeout=10.0):
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no matching line within {timeout} s; stderr: {self.stderr_tail()}") from None
            if predicate(line):
                return line

    def send(self, text):
        self.p.stdin.write(text + "\n")
        self.p.stdin.flush()

    def stderr_tail(self):
        if self.p.poll() is None:
            return "(running)"
        return self.p.stderr.read()[-2000:]

    def stop(self, sig=signal.SIGTERM):
        if self.p.poll() is None:
            self.p.send_signal(sig)
            try:
                self.p.wait(10)
            except subprocess.TimeoutExpired:
                self.p.kill()
        return self.p.returncode


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fake_core(port: int) -> Proc:
    """tests/daemon/fake_core.py (a Zaparoo Core stand-in) on ``port``, answering once it says so."""
    core = Proc([sys.executable, str(FAKE_CORE), str(port)])
    core.wait_line(lambda line: line == "ready")
    return core


def emulated_pn532(link: Path, *extra: str) -> Proc:
    """`tagd sim pn532 --link LINK` (its stdin takes place/remove commands), up once it printed its first line."""
    sim = Proc([sys.executable, "-m", "tagd", "sim", "pn532", "--link", str(link), *extra])
    sim.wait_line()
    return sim


def rpc(port, method, params=None, timeout=40):
    body = {"jsonrpc": "2.0", "id": 1, "method": method}
    if params is not None:
        body["params"] = params
    req = urllib.request.Request(f"http://127.0.0.1:{port}/api", json.dumps(body).encode())
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.loads(r.read())


def wait_until(fn, timeout=10.0, step=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = fn()
        if value:
            return value
        time.sleep(step)
    raise AssertionError("condition not met in time")


async def until(predicate, timeout: float = 10.0) -> bool:
    """The event-loop twin of :func:`wait_until`: True once ``predicate()`` is (polled every 10 ms), False after
    ``timeout`` seconds — for timer-driven work that finishes a few loop turns after its delay."""
    import asyncio

    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            return False
        await asyncio.sleep(0.01)
    return True
