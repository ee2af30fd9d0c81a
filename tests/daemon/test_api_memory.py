"""What clients can make the API hold (issue 13 item 3, bench/stress.py's RSS peak): a batch runs alone for its
client and few batches run at once for all; clients that never read are dropped once their answers together pass
the answer budget; memory is given back after a burst."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from tagd.daemon import heap
from tagd.daemon.api import server as api_server
from tagd.daemon.api.jsonrpc import is_batch
from tagd.daemon.api.server import ApiServer
from test_api_hostile import api  # noqa: F401  (a fixture)

BIG = 500_000  # test_api_hostile's big answer


class Running:
    """The ``slow`` requests running at once, by the kind their params name."""

    def __init__(self) -> None:
        self.now: list[str] = []
        self.seen: list[tuple[str, ...]] = []  # what ran together, each time one started


@pytest.fixture
async def slow_api(api: ApiServer) -> ApiServer:  # noqa: F811
    """test_api_hostile's server (its ``big`` answers 500 KB), with ``slow``: records what runs beside it."""
    running = Running()

    @api.dispatcher.method("slow")
    async def slow(params: Any) -> str:
        running.now.append(params["kind"])
        running.seen.append(tuple(sorted(running.now)))
        await asyncio.sleep(0.02)
        running.now.remove(params["kind"])
        return "ok"

    api.running = running
    return api


def masked_text_frame(payload: bytes) -> bytes:
    assert len(payload) < 1 << 16
    length = bytes([0x80 | len(payload)]) if len(payload) < 126 else bytes([0x80 | 126]) + len(payload).to_bytes(2, "big")
    return b"\x81" + length + b"\0\0\0\0" + payload  # a zero mask leaves the payload as is


async def websocket(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    r, w = await asyncio.open_connection("127.0.0.1", port)
    w.write(b"GET /api HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
    assert (await r.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 101")
    return r, w


def test_a_batch_is_told_from_one_request_by_its_first_character() -> None:
    assert is_batch(' \n\t[{"id": 1}]') and is_batch(b"[") and is_batch(" " * 100 + "[")
    assert not is_batch('{"id": [1]}') and not is_batch(b" {") and not is_batch("")


def slow(kind: str, i: int = 1) -> dict:
    return {"jsonrpc": "2.0", "id": i, "method": "slow", "params": {"kind": kind}}


async def answers(r: asyncio.StreamReader, n: int) -> None:
    got = b""
    while got.count(b'"result"') < n:
        got += await asyncio.wait_for(r.read(4096), 5)


async def test_a_clients_batch_runs_alone_none_of_its_other_requests_beside_it(slow_api: ApiServer) -> None:
    api = slow_api
    r, w = await websocket(api.port)
    w.write(masked_text_frame(json.dumps(slow("single")).encode())
            + masked_text_frame(json.dumps([slow("batch", i) for i in range(3)]).encode())
            + masked_text_frame(json.dumps(slow("single")).encode()) * 3)
    await answers(r, 4 + 1)  # the single answers and the batch's one array
    assert ("batch",) in api.running.seen and ("single", "single", "single") in api.running.seen
    assert not [s for s in api.running.seen if "batch" in s and "single" in s]
    w.close()


async def test_at_most_max_batches_are_answered_at_once_for_all_clients(slow_api: ApiServer) -> None:
    api = slow_api
    clients = [await websocket(api.port) for _ in range(5)]
    for _, w in clients:
        w.write(masked_text_frame(json.dumps([slow("batch", i) for i in range(2)]).encode()))
    for r, _ in clients:
        await answers(r, 1)
    assert max(len(s) for s in api.running.seen) == api_server.MAX_BATCHES
    for _, w in clients:
        w.close()


async def test_clients_that_never_read_are_dropped_once_their_answers_pass_the_budget(api: ApiServer,  # noqa: F811
                                                                                     monkeypatch) -> None:
    monkeypatch.setattr(api.answers, "limit", 2 * BIG)
    held = []
    for _ in range(6):
        r, w = await websocket(api.port)
        w.write(masked_text_frame(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "big"}).encode()) * 40)  # 40 answers of 300 KB, none read
        held.append(w)
    peak = 0
    for _ in range(500):
        peak = max(peak, api.answers.total)
        if not api.clients:
            break
        await asyncio.sleep(0.01)
    assert not api.clients and api.dropped == 6
    # past the budget, only a client with nothing waiting gets an answer: one each at most beyond it
    assert peak <= api.answers.limit + 6 * (BIG + 100)
    assert api.answers.total == 0  # the dropped clients' answers were let go
    for w in held:
        w.close()


async def test_memory_is_given_back_once_a_second_after_large_answers(monkeypatch) -> None:
    calls: list[tuple[str, int, int]] = []

    class FakeLibc:
        def mallopt(self, param: int, value: int) -> int:
            calls.append(("mallopt", param, value))
            return 1

        def malloc_trim(self, pad: int) -> int:
            calls.append(("malloc_trim", pad, 0))
            return 1

    monkeypatch.setattr(heap, "_glibc", FakeLibc)
    trimmer = heap.Trimmer(delay=0.05)
    for _ in range(5):
        trimmer.soon()
    assert calls == [("mallopt", heap.M_MMAP_THRESHOLD, heap.THRESHOLD), ("mallopt", heap.M_TRIM_THRESHOLD, heap.THRESHOLD)]
    await asyncio.sleep(0.1)
    assert calls[2:] == [("malloc_trim", 0, 0)] and trimmer.trims == 1
    trimmer.soon()
    await asyncio.sleep(0.1)
    assert trimmer.trims == 2 and len(calls) == 4  # the thresholds are set once


async def test_without_glibc_nothing_is_tuned_or_trimmed(monkeypatch) -> None:
    monkeypatch.setattr(heap, "_glibc", lambda: None)
    trimmer = heap.Trimmer(delay=0.01)
    trimmer.soon()
    await asyncio.sleep(0.05)
    assert trimmer.trims == 0


async def test_a_notification_from_another_thread_reaches_clients_through_the_loop(api: ApiServer) -> None:  # noqa: F811
    r, w = await websocket(api.port)
    while not api.clients:
        await asyncio.sleep(0.01)
    await asyncio.to_thread(api.broadcast, "clients.paired", {"id": "x"})  # as pairing does, from its thread
    assert b"clients.paired" in await asyncio.wait_for(r.read(4096), 5)
    w.close()
