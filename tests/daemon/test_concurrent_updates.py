"""Issue 13 item 2: concurrent settings.update and mappings.update lose nothing — every acknowledged change is in the
running daemon and on disk (it was: two updates of different keys lost one in 29 of 40 tries)."""

from __future__ import annotations

import asyncio
import json

import pytest

from tagd.daemon.config import load_config
from tagd.daemon.service import Daemon

ROUNDS = 8


@pytest.fixture
async def daemon(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text(f'database = "{tmp_path / "tagd.db"}"\n# a comment that must survive\n'
                    '[readers]\nauto_detect = false\n[api]\nlisten = "127.0.0.1:0"\n')
    d = Daemon(load_config(path), path)
    await d.start()
    yield d
    await d.stop()


async def call(d, method, params):
    text = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
    return await d.api.dispatcher.handle_text(text)


def settings_for(n: int) -> list[dict]:
    """Four writers, each on its own key (every key settings.update changes but auto-detection, which would probe
    serial ports), with values unique to round n."""
    return [{"readersScanExitDelay": float(n) + 0.5}, {"readersScanIgnoreSystems": [f"SYS{n}"]},
            {"readersScanMode": "hold" if n % 2 else "tap"},
            {"readersConnect": [{"driver": "file", "path": f"/tmp/tagd-concurrent-{n}.txt", "enabled": False}]}]


def check_settings(settings: dict, n: int) -> None:
    assert settings["readersScanExitDelay"] == float(n) + 0.5
    assert settings["readersScanIgnoreSystems"] == [f"SYS{n}"]
    assert settings["readersScanMode"] == ("hold" if n % 2 else "tap")
    assert [c["path"] for c in settings["readersConnect"]] == [f"/tmp/tagd-concurrent-{n}.txt"]


async def test_concurrent_settings_updates_on_different_keys_all_reach_memory_and_the_file(daemon):
    for n in range(ROUNDS):
        answers = await asyncio.gather(*(call(daemon, "settings.update", u) for u in settings_for(n)))
        assert all(a.get("result") == {} for a in answers), answers
        check_settings((await call(daemon, "settings", None))["result"], n)  # in the running daemon
        on_disk = load_config(daemon.config_path)  # and in the file
        check_settings(on_disk.settings_json(), n)
    assert "# a comment that must survive" in daemon.config_path.read_text()


async def test_concurrent_mapping_updates_on_different_fields_all_reach_the_store_and_the_table(daemon):
    assert "result" in await call(daemon, "mappings.new", {"type": "text", "match": "exact", "pattern": "p0",
                                                           "override": "o0", "label": "l0"})
    [mapping] = daemon.store.mappings()
    for n in range(1, ROUNDS * 2):
        updates = [{"label": f"l{n}"}, {"override": f"o{n}"}, {"pattern": f"p{n}"}, {"enabled": bool(n % 2)},
                   {"match": "partial" if n % 2 else "exact"}]
        answers = await asyncio.gather(*(call(daemon, "mappings.update", {"id": mapping.id} | u) for u in updates))
        assert all(a.get("result") == {} for a in answers), answers
        stored = daemon.store.mapping(mapping.id)
        assert (stored.label, stored.override, stored.pattern, stored.enabled, stored.match) == (
            f"l{n}", f"o{n}", f"p{n}", bool(n % 2), "partial" if n % 2 else "exact")
        listed = [m for m in (await call(daemon, "mappings", None))["result"]["mappings"]]
        assert [(m["label"], m["override"], m["pattern"]) for m in listed] == [(f"l{n}", f"o{n}", f"p{n}")]
        assert [m.override for m in daemon.pipeline.mappings.mappings] == ([f"o{n}"] if n % 2 else [])


async def test_a_reload_during_settings_updates_leaves_memory_matching_the_file(daemon):
    for n in range(ROUNDS):
        calls = [call(daemon, "settings.update", u) for u in settings_for(n)] + [call(daemon, "settings.reload", None)]
        answers = await asyncio.gather(*calls)
        assert all(a.get("result") == {} for a in answers), answers
        assert load_config(daemon.config_path).settings_json() == (await call(daemon, "settings", None))["result"]
