"""End to end: `tagd run` + an emulated PN532 + a stand-in Zaparoo Core (media.started/stopped) + the service stand-ins.

A tap launches, the core reports the game, RomM's last played is set, the stop ends the session and retroshelf
receives it once. A daemon killed with -9 in the middle of a sync batch loses and duplicates nothing. Tokens never
appear in the daemon's log, `settings`, API errors or `tagd doctor`.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from service_helpers import DAEMON_TESTS  # noqa: F401  (puts tests/daemon on the path)
from servers import ROMM_CLIENT_TOKEN, Retroshelf
from test_e2e import Proc, rpc, wait_until  # noqa: I001
from test_e2e import Stack as E2EStack

from conftest import FIXTURES
from fake_core import free_port
from tagd.integrations.credentials import Credentials, credentials_dir
from tagd.integrations.sessions import Session
from tagd.integrations.store import IntegrationStore

HERE = Path(__file__).resolve().parent
SHELF = Retroshelf()  # its default token and sync client id are what the standalone server accepts
EXTRA = """
[[mappings.entry]]
token_key = "value"
match_pattern = "/system:snes$/"
zapscript = "Chrono Trigger.sfc"

[sessions]
min_duration = 0
"""


class Stack(E2EStack):
    """tests/daemon's stack with the daemon logging at INFO (-v), so the secrets check reads a real log."""

    def start_daemon(self, env=None):
        d = Proc([sys.executable, "-m", "tagd", "-v", "run", "--config", str(self.config)], env=env)
        wait_until(lambda: self._health(), timeout=15)
        wait_until(lambda: rpc(self.api_port, "readers")["result"]["readers"], timeout=10)
        return d


class Services:
    def __init__(self, tmp_path: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = Proc([sys.executable, str(HERE / "servers.py"), str(self.port)])
        self.proc.wait_line(lambda line: line == "ready")
        creds = Credentials(credentials_dir(tmp_path / "tagd.db"))
        creds.save("retroshelf", {"base_url": self.url, "client_id": "rs_test_client", "access_token": SHELF.access_token,
                                  "sync_client_id": SHELF.sync_client_id, "linked_at": 1})
        creds.save("romm", {"url": self.url + "/romm", "access_token": ROMM_CLIENT_TOKEN, "auth": "client token"})

    def wait(self, kind: str, timeout: float = 15.0) -> object:
        return json.loads(self.proc.wait_line(lambda line: kind in json.loads(line), timeout))[kind]

    def drained(self) -> list[dict]:
        return [json.loads(x) for x in list(self.proc.lines.queue)]


@pytest.fixture
def services(tmp_path):
    s = Services(tmp_path)
    yield s
    s.proc.stop()


def test_tap_launch_session_reaches_retroshelf_once_and_romm_marks_it_played(tmp_path, services):
    stack = Stack(tmp_path, extra=EXTRA)
    try:
        stack.sim.send(f"place {FIXTURES / 'snes-ntag215.nfc'}")
        assert stack.core_request("run")["params"]["text"] == "Chrono Trigger.sfc"
        assert services.wait("played") == 1  # RomM: last played, on media.started
        time.sleep(1.1)
        rpc(stack.api_port, "stop")  # the stand-in Core answers with media.stopped: the session ends
        session = services.wait("session")
        assert session["romPath"] == "/games/Chrono Trigger.sfc" and session["platformHint"] == "snes"
        assert session["romName"] == "Chrono Trigger" and session["romHash"] == "ab" * 16  # from RomM
        assert session["duration"] >= 1
        listed = wait_until(lambda: rpc(stack.api_port, "sessions", {"status": "synced"})["result"]["sessions"])
        assert listed[0]["matched"] is True and listed[0]["gameName"] == "Chrono Trigger"
        time.sleep(1.0)
        assert not [x for x in services.drained() if "session" in x]  # once
        status = rpc(stack.api_port, "integrations")["result"]
        assert status["retroshelf"]["state"] == "linked" and status["romm"]["state"] == "linked"
    finally:
        stack.close()
    check_no_secrets(tmp_path, stack, services)


def check_no_secrets(tmp_path: Path, stack: Stack, services: Services) -> None:
    """The daemon's log, settings, an API error, the CLI and `tagd doctor` never show a token."""
    secrets = [SHELF.access_token, ROMM_CLIENT_TOKEN]
    texts = [stack.daemon.p.stderr.read()]
    texts.append(subprocess.run([sys.executable, "-m", "tagd", "doctor", "--config", str(stack.config)],
                                capture_output=True, text=True, timeout=60).stdout)
    texts.append(subprocess.run([sys.executable, "-m", "tagd", "sessions", "--config", str(stack.config)],
                                capture_output=True, text=True, timeout=60).stdout)
    assert "tagd ready" in texts[0], "the daemon's log is missing"
    for text in texts:
        for secret in secrets:
            assert secret not in text


def test_secrets_stay_out_of_settings_errors_and_logs_while_running(tmp_path, services):
    stack = Stack(tmp_path, extra=EXTRA)
    try:
        answers = [rpc(stack.api_port, "settings"), rpc(stack.api_port, "integrations"),
                   rpc(stack.api_port, "sessions", {"status": "bogus"}), rpc(stack.api_port, "sessions.retry", {"ids": "x"})]
    finally:
        stack.close()
    text = json.dumps(answers)
    assert "error" in text
    for secret in (SHELF.access_token, ROMM_CLIENT_TOKEN):
        assert secret not in text
    check_no_secrets(tmp_path, stack, services)


def test_kill_9_during_a_sync_batch_loses_nothing_and_duplicates_nothing(tmp_path, services):
    n = 3000
    store = IntegrationStore(tmp_path / "tagd.db")
    store.add_sessions(Session(f"Roms/SFC/Game {i}.sfc", f"Game {i}", 60, 1_781_229_600 + 60 * i, "snes")
                       for i in range(n))
    store.close()
    stack = Stack(tmp_path, core=False, extra="[sessions]\nsync_batch = 20\n")
    services.wait("batch")  # the daemon is sending
    stack.daemon.p.send_signal(signal.SIGKILL)  # mid-queue (and likely mid-batch)
    stack.daemon.p.wait()
    got_before = sum(1 for x in services.drained() if "session" in x)
    stack.daemon = stack.start_daemon()
    try:
        wait_until(lambda: rpc(stack.api_port, "sessions", {"limit": 1})["result"]["counts"]["synced"] == n,
                   timeout=90, step=0.5)
    finally:
        stack.close()
    received = [x["session"] for x in services.drained() if "session" in x]
    assert got_before < n  # the kill did land before the end
    keys = [(s["romPath"], s["devicePlayedAt"], s["duration"]) for s in received]
    assert len(set(keys)) == len(keys)
    store = IntegrationStore(tmp_path / "tagd.db")
    counts = store.counts()
    store.close()
    assert counts["synced"] == n and counts["pending"] == 0
