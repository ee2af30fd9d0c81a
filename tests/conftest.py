"""Shared test plumbing.

`need(ok, why)`: a test whose environment (pcscd, mosquitto, nfcpy…) is missing is
skipped on a developer's machine but FAILS when TAGD_REQUIRE_ALL=1 (as .ci/run sets),
so CI can never go green by skipping.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"
REQUIRE_ALL = os.environ.get("TAGD_REQUIRE_ALL") == "1"


def need(ok: bool, why: str) -> None:
    if ok:
        return
    if REQUIRE_ALL:
        pytest.fail(f"required by TAGD_REQUIRE_ALL=1 but unavailable: {why}")
    pytest.skip(why)


@pytest.fixture
def fixtures_dir() -> pathlib.Path:
    return FIXTURES


try:  # keep property tests quick and deterministic in CI; a deadline would make slow machines flaky
    from hypothesis import HealthCheck, settings

    settings.register_profile(
        "tagd", max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True
    )
    settings.register_profile("thorough", max_examples=2000, deadline=None)
    settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "tagd"))
except ImportError:  # pragma: no cover
    pass


def until(condition, timeout: float = 3.0) -> bool:
    """Poll ``condition`` until it holds (True) or ``timeout`` seconds pass (False): for what another thread does."""
    import time

    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


class Events:
    """A reader event sink for tests: ``put`` from reader threads, ``wait(kind)`` for the next event of a type."""

    def __init__(self) -> None:
        import queue

        self.q: "queue.Queue" = queue.Queue()

    def put(self, event) -> None:
        self.q.put(event)

    def wait(self, kind, timeout: float = 5.0):
        import queue
        import time

        deadline = time.monotonic() + timeout
        while True:
            try:
                ev = self.q.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no {kind.__name__} within {timeout} s") from None
            if isinstance(ev, kind):
                return ev


@pytest.fixture(scope="session")
def certificate(tmp_path_factory) -> tuple[pathlib.Path, pathlib.Path]:
    """A self-signed certificate for 127.0.0.1 (cert.pem, key.pem), made by the openssl command line."""
    if shutil.which("openssl") is None:
        pytest.fail("the TLS tests need the openssl command (Debian package openssl)")
    d = tmp_path_factory.mktemp("tls")
    cert, key = d / "cert.pem", d / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    return cert, key
