"""A fake clock whose sleep advances it (no test really waits) and a ServiceClient built on it; and tests/daemon on
the path, whose fake Zaparoo Core is the stand-in Core here too."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from tagd.integrations.client import ServiceClient

DAEMON_TESTS = str(Path(__file__).resolve().parent.parent / "daemon")
if DAEMON_TESTS not in sys.path:
    sys.path.append(DAEMON_TESTS)


class FakeTime:
    def __init__(self, start: float = 1_781_229_600.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


def client(service: str, t: FakeTime, timeout: float = 2.0, retries: int = 3) -> ServiceClient:
    return ServiceClient(service, timeout=timeout, retries=retries, sleep=t.sleep, clock=t.clock)
