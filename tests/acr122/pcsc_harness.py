"""A real pcscd with Debian's vsmartcard-vpcd virtual reader, started and stopped by the tests (CI runs as root).

pcsc-lite 1.9's daemon always serves /run/pcscd/pcscd.comm, so only one of these can run at a time; the
reader config (and vpcd's port) is private to the test run.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import time

from conftest import need

VPCD_LIB = "/usr/lib/pcsc/drivers/serial/libifdvpcd.so"
READER = "ACR122U Virtual PCD 00 00"  # named like an ACR122U so auto-detection picks it up


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pcscd_running() -> bool:
    for comm in glob.glob("/proc/[0-9]*/comm"):
        try:
            with open(comm) as f:
                if f.read().strip() == "pcscd":
                    return True
        except OSError:
            pass
    return False


class Pcscd:
    def __init__(self, workdir: str) -> None:
        need(shutil.which("pcscd") is not None, "pcscd is not installed (apt-get install pcscd libccid)")
        need(os.path.exists(VPCD_LIB), "vsmartcard-vpcd is not installed (apt-get install vsmartcard-vpcd)")
        need(os.geteuid() == 0, "pcscd must run as root")
        try:
            import smartcard.scard  # noqa: F401
        except ImportError:
            need(False, "pyscard is not installed (pip install 'tagd[pcsc]', needs libpcsclite-dev)")
        need(not _pcscd_running(), "another pcscd is running; stop it first")
        self.port = _free_port()
        self.conf = os.path.join(workdir, "reader.conf.d")
        os.makedirs(self.conf, exist_ok=True)
        with open(os.path.join(self.conf, "vpcd"), "w") as f:
            f.write(f'FRIENDLYNAME "ACR122U Virtual PCD"\nDEVICENAME /dev/null:{self.port}\nLIBPATH {VPCD_LIB}\n'
                    f"CHANNELID {self.port}\n")
        self.proc: subprocess.Popen | None = None

    def start(self) -> "Pcscd":
        from tagd.readers.acr122 import list_pcsc_readers

        self.proc = subprocess.Popen(["pcscd", "-f", "-c", self.conf], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while READER not in list_pcsc_readers():
            if time.monotonic() > deadline or self.proc.poll() is not None:
                self.stop()
                raise AssertionError("pcscd with vpcd did not come up within 10 s")
            time.sleep(0.1)
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None
