"""tagd.daemon.heap and discovery: freed heap goes back to the system, and zeroconf loads without its compiled modules."""

from __future__ import annotations

import subprocess
import sys

CHURN = """
import sys
from tagd.daemon.heap import give_back as trim

def rss_kb():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
junk = [bytes(1000) + str(i).encode() for i in range(50_000)]  # ~50 MB in blocks malloc serves (pymalloc takes ≤ 512 B)
keep = junk[::1000]  # a few survivors pin nothing but their own blocks
del junk
before = rss_kb()
assert trim() is True, "glibc has malloc_trim"
print(before, rss_kb())
"""


def test_trim_gives_freed_small_blocks_back_to_the_system():
    out = subprocess.run([sys.executable, "-c", CHURN], capture_output=True, text=True, timeout=60, check=True)
    before, after = map(int, out.stdout.split())
    assert before - after > 10_000, f"RSS {before} kB → {after} kB: trim gave back less than 10 MB of ~50 MB freed"


ZEROCONF = """
import sys
from tagd.daemon.discovery import load_zeroconf
load_zeroconf()
compiled = sorted(m.__name__ for m in list(sys.modules.values())
                  if getattr(m, "__name__", "").startswith("zeroconf") and str(getattr(m, "__file__", "")).endswith(".so"))
from zeroconf import ServiceInfo
info = ServiceInfo("_zaparoo._tcp.local.", "x._zaparoo._tcp.local.", port=7497, parsed_addresses=["127.0.0.1"])
print(compiled, info.port)
"""


def test_zeroconf_is_loaded_from_its_python_modules_and_works():
    out = subprocess.run([sys.executable, "-c", ZEROCONF], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.split() == ["[]", "7497"]


async def test_a_started_daemon_gives_its_start_up_garbage_back_once_settled(tmp_path, monkeypatch):
    import asyncio

    import tagd.daemon.service as service
    from tagd.daemon.config import Config

    monkeypatch.setattr(service, "SETTLE_SECONDS", 0.05)
    config = Config.model_validate({"readers": {"auto_detect": False}, "database": str(tmp_path / "tagd.db"),
                                    "api": {"listen": "127.0.0.1:0"}})
    daemon = service.Daemon(config, tmp_path / "config.toml")
    await daemon.start()
    try:
        assert daemon.api.heap.trims == 0
        for _ in range(60):
            if daemon.api.heap.trims:
                break
            await asyncio.sleep(0.05)
        assert daemon.api.heap.trims == 1
    finally:
        await daemon.stop()
