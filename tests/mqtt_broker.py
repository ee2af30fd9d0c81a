"""A real mosquitto broker for tests, on a free loopback port, started and stopped by the test.

``persistence=True`` gives it a persistence file, so a restart keeps sessions and queued QoS-1 messages
(what a broker restart mid-stream needs to lose nothing).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Iterator

import pytest
from conftest import need

MOSQUITTO = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Broker:
    def __init__(self, tmp: Path, port: int, persistence: bool = False) -> None:
        self.port = port
        self.conf = tmp / f"mosquitto-{port}.conf"
        # as root mosquitto drops to its own user, which could not write the test's private directory
        store = f"persistence true\npersistence_location {tmp}/\nautosave_interval 1\nuser root\n" if persistence else \
            "persistence false\n"
        self.conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\n{store}")
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen([MOSQUITTO, "-c", str(self.conf)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("mosquitto did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(5)
            self.proc = None


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    need(MOSQUITTO is not None, "mosquitto is not installed (apt-get install mosquitto)")
    b = Broker(tmp_path, free_port())
    b.start()
    yield b
    b.stop()


