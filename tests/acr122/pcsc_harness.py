"""A real pcscd with Debian's vsmartcard-vpcd virtual reader, started and stopped by the tests (CI runs as root).

Why a private daemon: other test runs (and a desktop's own pcscd) may be using the machine's pcscd at the
same time, and pcsc-lite 1.9's daemon always serves ``/run/pcscd/pcscd.comm`` (only the client library
reads ``PCSCLITE_CSOCK_NAME``). So pcscd is started in its own mount namespace with a private directory
bound over ``/run/pcscd``, and this process (and its children) point libpcsclite at the socket inside that
directory. The reader config and vpcd's port are private too. libpcsclite reads the variable once, on the
first PC/SC call of a process, which is why it is set when this module is imported (at collection).
Where namespaces are not available, the system socket is used and no other pcscd may be running.
"""

from __future__ import annotations

import atexit
import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

import pytest

from conftest import need

VPCD_LIB = "/usr/lib/pcsc/drivers/serial/libifdvpcd.so"
READER = "ACR122U Virtual PCD 00 00"  # named like an ACR122U so auto-detection picks it up
SYSTEM_RUN = "/run/pcscd"

# Run in the child: a private mount namespace, then bind argv[1] over /run/pcscd and exec argv[2:].
# ctypes because os.unshare only exists from Python 3.12. No shell: every argument is an argv item.
_NS_EXEC = r"""
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
def ok(rc, what):
    if rc != 0:
        sys.exit(f"{what}: {os.strerror(ctypes.get_errno())}")
ok(libc.unshare(0x00020000), "unshare(CLONE_NEWNS)")
ok(libc.mount(b"none", b"/", None, (1 << 14) | (1 << 18), None), "mount --make-rprivate /")
ok(libc.mount(sys.argv[1].encode(), b"/run/pcscd", None, 4096, None), "mount --bind")
os.execvp(sys.argv[2], sys.argv[2:])
"""

_started: list["Pcscd"] = []


def _private_run_dir() -> str | None:
    """A directory for a private pcscd socket, with PCSCLITE_CSOCK_NAME pointing into it; None: not possible."""
    if os.geteuid() != 0 or shutil.which("pcscd") is None:
        return None
    try:
        os.makedirs(SYSTEM_RUN, exist_ok=True)  # the mount point
    except OSError:
        return None
    given = os.environ.get("PCSCLITE_CSOCK_NAME")
    if given:  # the daemon's socket name is fixed: only a directory can be redirected
        return os.path.dirname(given) if os.path.basename(given) == "pcscd.comm" else None
    run = tempfile.mkdtemp(prefix="tagd-pcscd-")
    probe = subprocess.run([sys.executable, "-c", _NS_EXEC, run, "true"], capture_output=True, timeout=10)
    if probe.returncode != 0:
        os.rmdir(run)
        return None
    atexit.register(shutil.rmtree, run, True)
    os.environ["PCSCLITE_CSOCK_NAME"] = os.path.join(run, "pcscd.comm")
    return run


PRIVATE_RUN = _private_run_dir()


def _pcscd_running() -> bool:
    for comm in glob.glob("/proc/[0-9]*/comm"):
        try:
            with open(comm) as f:
                if f.read().strip() == "pcscd":
                    return True
        except OSError:
            pass
    return False


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Pcscd:
    """One pcscd (foreground, debug off) serving vpcd on a free port; start()/stop() may repeat."""

    def __init__(self, workdir: str) -> None:
        need(shutil.which("pcscd") is not None, "pcscd is not installed (apt-get install pcscd libccid)")
        need(os.path.exists(VPCD_LIB), "vsmartcard-vpcd is not installed (apt-get install vsmartcard-vpcd)")
        need(os.geteuid() == 0, "pcscd must run as root")
        try:
            import smartcard.scard  # noqa: F401
        except ImportError:
            need(False, "pyscard is not installed (pip install 'tagd[pcsc]', needs libpcsclite-dev)")
        if PRIVATE_RUN is None:
            need(not _pcscd_running(), "another pcscd is running and no private one can be started; stop it first")
        self.private = PRIVATE_RUN is not None
        self.port = _free_port()
        self.conf = os.path.join(workdir, "reader.conf.d")
        os.makedirs(self.conf, exist_ok=True)
        with open(os.path.join(self.conf, "vpcd"), "w") as f:
            f.write(f'FRIENDLYNAME "ACR122U Virtual PCD"\nDEVICENAME /dev/null:{self.port}\nLIBPATH {VPCD_LIB}\n'
                    f"CHANNELID {self.port}\n")
        self.log = os.path.join(workdir, "pcscd.log")
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 10.0) -> "Pcscd":
        from tagd.readers.acr122 import list_pcsc_readers

        argv = ["pcscd", "-f", "-c", self.conf]
        if self.private:
            argv = [sys.executable, "-c", _NS_EXEC, PRIVATE_RUN, *argv]
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=log)
        if self not in _started:
            _started.append(self)
        deadline = time.monotonic() + timeout
        while READER not in list_pcsc_readers():
            if time.monotonic() > deadline or self.proc.poll() is not None:
                self.stop()
                with open(self.log, "rb") as f:
                    tail = f.read()[-500:].decode(errors="replace")
                raise AssertionError(f"pcscd with vpcd did not come up within {timeout:g} s; its log ends: {tail}")
            time.sleep(0.05)
        if self.proc.poll() is not None:  # another pcscd answered; this one gave up
            self.stop()
            raise AssertionError(f"pcscd exited at start (another one serving the socket?); see {self.log}")
        return self

    def stop(self) -> None:
        """Stop pcscd (also while readers are using it: that is how the tests lose a reader)."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


def wait_slot(present: bool, timeout: float = 5.0) -> None:
    """Wait until pcscd itself reports the virtual reader's slot with a card (or empty): its poll is ~400 ms."""
    from smartcard import scard as s

    hr, ctx = s.SCardEstablishContext(s.SCARD_SCOPE_USER)
    assert hr == s.SCARD_S_SUCCESS, s.SCardGetErrorMessage(hr)
    try:
        want = s.SCARD_STATE_PRESENT if present else s.SCARD_STATE_EMPTY
        state = s.SCARD_STATE_UNAWARE
        deadline = time.monotonic() + timeout
        while True:
            hr, states = s.SCardGetStatusChange(ctx, 200, [(READER, state)])
            if hr == s.SCARD_S_SUCCESS:
                state = states[0][1] & ~s.SCARD_STATE_CHANGED
                if state & want:
                    return
            elif hr != s.SCARD_E_TIMEOUT:
                raise AssertionError(f"SCardGetStatusChange: {s.SCardGetErrorMessage(hr)}")
            if time.monotonic() > deadline:
                raise AssertionError(f"pcscd did not see the slot {'filled' if present else 'empty'} in {timeout:g} s")
    finally:
        s.SCardReleaseContext(ctx)


@atexit.register
def _stop_all() -> None:
    """Never leave a pcscd behind, even when a test run is interrupted."""
    for d in _started:
        d.stop()


_shared: list[Pcscd] = []


@pytest.fixture(scope="module")
def pcscd(tmp_path_factory):
    """The one pcscd with vpcd, running for the module; tests that stop it must start it again (ensure_running).

    Every module that imports this fixture gets the same daemon (only one can serve the private socket),
    and it stops when the module ends: left running, its "ACR122U" readers would be auto-detected by the
    reader manager in other areas' tests.
    """
    if not _shared:
        _shared.append(Pcscd(str(tmp_path_factory.mktemp("pcscd"))))
    d = _shared[0]
    ensure_running(d)
    yield d
    d.stop()


def ensure_running(d: Pcscd) -> None:
    if not d.running:
        d.start()


@pytest.fixture
def rig(pcscd):  # noqa: F811
    """(virtual card, ReaderWorker running acr122:<vpcd reader>, wait(kind), its ReaderAdded)."""
    from conftest import Events
    from tagd.readers.base import ReaderAdded, ReaderWorker, open_reader
    from tagd.sim.acr122 import VirtualAcr122

    ensure_running(pcscd)
    events = Events()
    sim = VirtualAcr122(pcscd.port)
    worker = ReaderWorker(open_reader(f"acr122:{READER}"), events.put, retry=0.3).start()
    added = events.wait(ReaderAdded)
    yield sim, worker, events.wait, added
    sim.remove()
    if pcscd.running:
        wait_slot(present=False)  # the next test's reader must open on an empty slot
    worker.stop()
