"""A started daemon carries only what its configuration uses: the memory budget (45 MB idle, bench/daemon.py)
depends on heavy modules loading on demand. Each check runs in a fresh interpreter."""

from __future__ import annotations

import json
import subprocess
import sys

SCRIPT = """
import asyncio, json, sys
from tagd.daemon.config import Config
from tagd.daemon.service import Daemon

async def main():
    raw = json.loads(sys.argv[1])
    d = Daemon(Config.model_validate(raw), sys.argv[2] + "/config.toml", extra_readers=[f"file:{sys.argv[2]}/tag"])
    await d.start()
    await asyncio.sleep(0.3)
    loaded = sorted(sys.modules)
    await d.stop()
    print(json.dumps(loaded))

asyncio.run(main())
"""

# (ctypes is not heavy: 0.2 MB, loaded by tagd.daemon.heap to give ~0.6 MB of freed heap back after start)
HEAVY = {"aiohttp", "re2", "smartcard", "nfc", "pyudev", "tagd.sim", "tagd.readers.acr122",
         "tagd.readers.nfcpy_reader", "tagd.ndef.dumps", "zeroconf", "ifaddr", "cryptography", "ecdsa", "paho",
         "httpx", "reportlab", "segno", "tagd.daemon.fabric", "tagd.integrations.http",
         "tagd.integrations.client"}  # the web services: loaded once one is linked


def heavy(loaded: set[str]) -> set[str]:
    return {h for h in HEAVY for m in loaded if m == h or m.startswith(h + ".")}


def loaded_modules(tmp_path, **extra) -> set[str]:
    raw = {"readers": {"auto_detect": False}, "database": str(tmp_path / "tagd.db"), "api": {"listen": "127.0.0.1:0"}}
    raw.update(extra)
    out = subprocess.run([sys.executable, "-c", SCRIPT, json.dumps(raw), str(tmp_path)], capture_output=True,
                         text=True, timeout=60, check=True)
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def test_a_daemon_with_a_file_reader_and_no_regex_loads_none_of_the_heavy_modules(tmp_path):
    assert heavy(loaded_modules(tmp_path)) == set()


def test_a_regex_mapping_loads_re2_and_a_zaparoo_core_does_not_load_aiohttp(tmp_path):
    loaded = loaded_modules(
        tmp_path, mappings={"entry": [{"token_key": "value", "match_pattern": "/^mario/", "zapscript": "x"}]},
        core=[{"type": "zaparoo", "url": "ws://127.0.0.1:9/api/v0.1"}])
    assert heavy(loaded) == {"re2"}
