"""Tap latency while 10,000 queued play sessions sync to retroshelf. The last line is one JSON object with the figures.

    python bench/sessions_sync.py [N]

A daemon in this process (store, pipeline, integrations) with a recording forwarder; the retroshelf stand-in from
tests/integrations/servers.py in another process. First taps with nothing syncing (baseline), then the same taps
while the N sessions queued in SQLite go out in batches of 50: a tap's latency is from the reader event to the
forwarder's launch. Target: the p99 during the sync within 1 ms of the baseline's (the queue never holds up taps:
its database work runs in threads and each batch is a few ms of loop time).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "integrations"))

from common import free_port, pct  # noqa: E402 (bench/common.py)


async def taps(daemon, launched: dict, count: int, gap: float, until=None) -> list[float]:
    from tagd.readers.base import TagGone, TagSeen
    from tagd.token import Token

    lat = []
    i = 0
    while (until is None and i < count) or (until is not None and not until()):
        uid = f"04{i:012x}"
        t0 = time.perf_counter()
        task = daemon.pipeline.submit(TagSeen("bench-1", Token(type="NTAG", uid=uid, text=f"@SNES/{i}")))
        if task is not None:
            await task
        lat.append((launched[uid] - t0) * 1000)
        daemon.pipeline.submit(TagGone("bench-1"))
        i += 1
        await asyncio.sleep(gap)
    return lat


async def main(n: int) -> dict:
    from servers import Retroshelf

    from tagd.daemon.config import Config
    from tagd.daemon.forwarders import Forwarder
    from tagd.daemon.service import Daemon
    from tagd.integrations.credentials import Credentials, credentials_dir
    from tagd.integrations.sessions import Session
    from tagd.integrations.store import IntegrationStore

    tmp = tempfile.mkdtemp()
    db = os.path.join(tmp, "tagd.db")
    store = IntegrationStore(db)
    store.add_sessions(Session(f"Roms/SFC/Game {i}.sfc", f"Game {i}", 60 + i % 300, 1_781_229_600 + 90 * i, "snes")
                       for i in range(n))
    store.close()

    port = free_port()
    server = subprocess.Popen([sys.executable, str(ROOT / "tests" / "integrations" / "servers.py"), str(port)],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert server.stdout is not None and server.stdout.readline().strip() == "ready"
    import threading

    threading.Thread(target=server.stdout.read, daemon=True).start()  # it prints a line per session: keep reading
    shelf = Retroshelf()

    launched: dict[str, float] = {}

    class Recorder(Forwarder):
        kind = "bench"

        async def launch(self, token) -> None:
            launched[token.uid] = time.perf_counter()

    config = Config.model_validate({"database": db, "readers": {"auto_detect": False},
                                    "api": {"listen": "127.0.0.1:0"}})
    daemon = Daemon(config, os.path.join(tmp, "config.toml"))
    await daemon.start()
    daemon.pipeline.forwarders = [Recorder("bench")]
    daemon.pipeline.connect_grace = 0
    try:
        baseline = await taps(daemon, launched, 400, 0.005)
        Credentials(credentials_dir(db)).save("retroshelf", {
            "base_url": f"http://127.0.0.1:{port}", "client_id": "rs_test_client",
            "access_token": shelf.access_token, "sync_client_id": shelf.sync_client_id})
        t0 = time.monotonic()
        daemon.integrations.poke()
        worker = daemon.integrations.worker  # (its counter: reading the table here would wait on the worker's lock)
        during = await taps(daemon, launched, 0, 0.005, until=lambda: worker.synced >= n)
        sync_s = time.monotonic() - t0
        batches = daemon.integrations.worker.sent_batches
    finally:
        await daemon.stop()
        server.kill()
        server.wait()
    return {"sessions": n, "sync_s": round(sync_s, 2), "sessions_per_s": round(n / sync_s),
            "batches": batches, "taps_baseline": len(baseline), "taps_during_sync": len(during),
            "tap_p50_ms_baseline": round(pct(baseline, 50), 3), "tap_p99_ms_baseline": round(pct(baseline, 99), 3),
            "tap_p50_ms_during_sync": round(pct(during, 50), 3), "tap_p99_ms_during_sync": round(pct(during, 99), 3),
            "tap_max_ms_during_sync": round(max(during), 3)}


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    result = asyncio.run(main(n))
    print(f"{n} sessions synced in {result['sync_s']} s ({result['batches']} batches); "
          f"tap p50/p99 {result['tap_p50_ms_baseline']}/{result['tap_p99_ms_baseline']} ms idle, "
          f"{result['tap_p50_ms_during_sync']}/{result['tap_p99_ms_during_sync']} ms while syncing "
          f"({result['taps_during_sync']} taps)")
    print(json.dumps(result))
