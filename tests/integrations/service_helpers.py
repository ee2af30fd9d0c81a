"""A fake clock whose sleep advances it (no test really waits) and a ServiceClient built on it."""

from __future__ import annotations

import asyncio

from tagd.integrations.client import ServiceClient


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
