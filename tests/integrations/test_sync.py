"""The retroshelf queue against the test server: batches, same values on retry, backoff, relink, quarantine."""

from __future__ import annotations

import pytest
from service_helpers import FakeTime, client
from servers import Retroshelf, Serving

from tagd.integrations.accounts import Retroshelf as Account
from tagd.integrations.sessions import Session
from tagd.integrations.store import IntegrationStore
from tagd.integrations.sync import SyncWorker

T0 = 1_781_229_600


def sessions(n: int, start: int = T0, step: int = 3600) -> list[Session]:
    return [Session(f"Roms/SFC/Game {i}.sfc", f"Game {i}", 60 + i, start + i * step, "snes") for i in range(n)]


async def run(server: Retroshelf, store: IntegrationStore, t: FakeTime, batch: int = 50, relinks=None) -> SyncWorker:
    async with Serving(server.app()) as s:
        acct = Account(client("retroshelf", t, timeout=0.5), s.url, server.access_token, server.sync_client_id)
        worker = SyncWorker(store, lambda: acct, batch=batch, sleep=t.sleep, clock=t.clock,
                            on_relink=(relinks.append if relinks is not None else lambda e: None))
        await worker.drain()
        await acct.http.aclose()
    return worker


@pytest.fixture
def store(tmp_path):
    s = IntegrationStore(tmp_path / "tagd.db")
    yield s
    s.close()


async def test_queued_sessions_go_in_batches_oldest_first_and_keep_the_results(store):
    store.add_sessions(sessions(120)[::-1])  # queued newest first: sent by when they were played
    server = Retroshelf()
    await run(server, store, FakeTime(), batch=50)
    assert [len(b) for b in server.batches] == [50, 50, 20]
    assert [s["devicePlayedAt"] for s in server.sessions] == sorted(s["devicePlayedAt"] for s in server.sessions)
    assert store.counts()["synced"] == 120
    row = store.sessions(limit=1)[0]
    assert row["matched"] == 1 and row["game_name"] == row["rom_name"]


async def test_a_week_offline_then_the_server_returns_everything_syncs_in_order(store):
    store.add_sessions(sessions(7 * 8, step=3 * 3600))  # 8 sessions a day for 7 days
    server = Retroshelf()
    server.faults = ["reset"] * 6 + [503] * 6  # down, then failing, for a while
    t = FakeTime()
    await run(server, store, t, batch=20)
    assert len(server.sessions) == 56
    assert [s["devicePlayedAt"] for s in server.sessions] == [T0 + i * 3 * 3600 for i in range(56)]
    assert t.sleeps[:4] == [5.0, 10.0, 20.0, 40.0]  # backoff doubles while it is down


async def test_a_retry_sends_exactly_the_same_values_and_the_server_keeps_one_copy(store):
    store.add_sessions(sessions(3))
    server = Retroshelf()
    server.faults = ["garble"]  # the batch lands, the answer is garbage: sent again as it was
    await run(server, store, FakeTime())
    assert len(server.batches) == 2 and server.batches[0] == server.batches[1]
    assert len(server.sessions) == 3 and store.counts()["synced"] == 3


async def test_a_429_waits_for_retry_after(store):
    store.add_sessions(sessions(2))
    server = Retroshelf()
    server.faults = [429]
    t = FakeTime()
    await run(server, store, t)
    assert t.sleeps == [7.0] and store.counts()["synced"] == 2


async def test_a_server_that_hangs_is_waited_out_and_retried(store):
    store.add_sessions(sessions(1))
    server = Retroshelf()
    server.faults = ["hang"]
    t = FakeTime()
    await run(server, store, t)
    server.release()
    assert store.counts()["synced"] == 1 and t.sleeps == [5.0]


async def test_401_stops_and_asks_to_link_again_keeping_the_queue(store):
    store.add_sessions(sessions(5))
    server = Retroshelf()
    server.revoked = True
    relinks: list = []
    await run(server, store, FakeTime(), relinks=relinks)
    assert len(relinks) == 1 and store.counts()["pending"] == 5 and server.sessions == []


async def test_a_rejected_session_is_quarantined_and_the_rest_of_its_batch_goes(store):
    store.add_sessions(sessions(9))
    server = Retroshelf()
    server.reject = {"Roms/SFC/Game 4.sfc"}
    await run(server, store, FakeTime())
    counts = store.counts()
    assert counts["synced"] == 8 and counts["failed"] == 1
    failed = store.sessions("failed")[0]
    assert failed["rom_path"] == "Roms/SFC/Game 4.sfc" and "romPath is not acceptable" in failed["error"]
    server.reject = set()
    assert store.retry() == 1
    await run(server, store, FakeTime())
    assert store.counts()["synced"] == 9 and len(server.sessions) == 9
