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
from procs import free_port  # noqa: F401 (the brokers' ports; re-exported for the MQTT tests)

MOSQUITTO = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None)


class Broker:
    def __init__(self, tmp: Path, port: int, persistence: bool = False, tls: tuple[Path, Path] | None = None,
                 users: dict[str, str] | None = None) -> None:
        self.port = port
        self.conf = tmp / f"mosquitto-{port}.conf"
        store = f"persistence true\npersistence_location {tmp}/\nautosave_interval 1\n" if persistence else \
            "persistence false\n"
        # as root, mosquitto drops to its own user, which could not read or write the test's private directory
        lines = [f"listener {port} 127.0.0.1", "user root", store.rstrip()]
        if tls is not None:
            lines += [f"certfile {tls[0]}", f"keyfile {tls[1]}"]
        if users:
            passwd = tmp / f"passwd-{port}"
            passwd.write_text("")
            for user, password in users.items():
                subprocess.run(["mosquitto_passwd", "-b", str(passwd), user, password], check=True, capture_output=True)
            lines += ["allow_anonymous false", f"password_file {passwd}"]
        else:
            lines.append("allow_anonymous true")
        self.conf.write_text("\n".join(lines) + "\n")
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


