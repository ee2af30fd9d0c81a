"""What the Zaparoo App sees of tagd (issue 12): version gates, launch, mappings, inbox.added, answers without a core.

The App's gates are facts from zaparoo-app src/lib/featureGates.ts (and clients.current at 2.16.0 in
ConnectionProvider.tsx); APP_GATES holds them as the App has them, and a test checks them against the App's
own file when its mirror is on this machine.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
from pathlib import Path

import aiohttp
import pytest

import conftest
from fake_core import FakeCore, free_port
from tagd.daemon.api import corelevel, nocore
from tagd.daemon.config import Config
from tagd.daemon.service import Daemon
from tagd.token import Token
from test_api import make_config
from test_pipeline import MARIO, make_rig  # noqa: F401 (fixture)
from test_api_transport import daemon, session  # noqa: F401 (fixtures)

APP_REPO = Path("/work/.mirror/ZaparooProject+zaparoo-app/repo")
APP_GATES = {  # feature → since, as in the App
    "inbox": "2.8.0", "mediaScrapers": "2.12.0", "mediaGenerate": "2.7.0", "mediaCleanOrphans": "2.12.0",
    "mediaTags": "2.7.0", "mediaBrowseAllSearch": "2.10.0", "mediaDisambiguatingTags": "2.15.0",
    "mediaLibrary": "2.15.0", "mediaFavorites": "2.15.0", "activeMediaZapScript": "2.9.0",
    "backgroundMediaSlot": "2.15.0", "readOnlyMappings": "2.15.0", "remoteInput": "2.10.0",
    "deviceLinking": "2.16.0", "profiles": "2.16.0", "clientCapabilities": "2.16.0",
}


def app_satisfies(current: str, minimum: str) -> bool:
    """The App's src/lib/coreVersion.ts satisfies(), written from its text: dev builds pass every gate."""
    semver = re.compile(r"^(\d+)\.(\d+)\.(\d+)(?:[-+].*)?$")
    dev = (not current or current == "DEVELOPMENT" or any(m in current for m in ("-dev", "-rc", "-beta", "-alpha"))
           or not semver.match(current))
    if dev:
        return True
    a, b = semver.match(current), semver.match(minimum)
    return tuple(map(int, a.groups())) >= tuple(map(int, b.groups()))


def app_enables(version: str) -> set[str]:
    return {name for name, since in APP_GATES.items() if app_satisfies(version, since)}


async def rpc(session, daemon, method, params=None):
    msg = {"jsonrpc": "2.0", "id": 1, "method": method}
    if params is not None:
        msg["params"] = params
    async with session.post(f"http://127.0.0.1:{daemon.api.port}/api", json=msg) as r:
        return await r.json()


async def eventually(predicate, timeout=5.0):
    for _ in range(int(timeout / 0.02)):
        if predicate():
            return True
        await asyncio.sleep(0.02)
    return False


@pytest.fixture
async def core_rig(tmp_path):
    """tagd fronting a fake Zaparoo Core whose version the test sets."""
    core = FakeCore(free_port())
    await core.start()
    d = Daemon(make_config(tmp_path, core=[{"type": "zaparoo", "url": f"ws://127.0.0.1:{core.port}/api/v0.1"}]),
               tmp_path / "config.toml")
    await d.start()
    yield core, d
    await d.stop()
    await core.stop()


# --- version ------------------------------------------------------------------


def test_the_gate_table_is_the_apps():
    assert {g.name: g.since for g in corelevel.GATES} == APP_GATES
    conftest.need(APP_REPO.exists(), "the zaparoo-app mirror is not on this machine")
    text = subprocess.run(["git", "-C", str(APP_REPO), "show", "HEAD:src/lib/featureGates.ts"],
                          capture_output=True, text=True, check=True).stdout
    found = dict(re.findall(r"(\w+): \{\s*since: \"([\d.]+)\"", text))
    provider = subprocess.run(["git", "-C", str(APP_REPO), "show", "HEAD:src/components/ConnectionProvider.tsx"],
                              capture_output=True, text=True, check=True).stdout
    found["clientCapabilities"] = re.search(r'CLIENT_CAPABILITIES_SINCE = "([\d.]+)"', provider)[1]
    found.pop("screenshot", None)  # the commented-out example in the App's file
    assert found == APP_GATES


async def test_version_without_a_core_enables_the_app_features_tagd_serves(daemon, session):
    result = (await rpc(session, daemon, "version"))["result"]
    assert result["platform"] == "tagd"
    enabled = app_enables(result["version"])
    assert {"inbox", "readOnlyMappings"} <= enabled  # tagd's own features are on
    # and nothing tagd-side that tagd does not serve: the App asks clients.current from 2.16.0
    assert ("clientCapabilities" in enabled) == ("clients.current" in daemon.api.dispatcher.methods)


async def test_version_is_a_release_to_the_app_with_tagds_version_as_build_metadata(daemon, session):
    version = (await rpc(session, daemon, "version"))["result"]["version"]
    level, _, meta = version.partition("+")
    # a release, not a development build (which would pass every gate whatever tagd serves); with clients.current
    # served (pairing) tagd reaches the App's top gate, so "not every gate" no longer tells the two apart
    assert corelevel.parse(level) and not corelevel.is_development(version)
    assert meta.startswith("tagd.")
    assert corelevel.version_string("2.15.0", "0.2.0-dev1+g1") == "2.15.0+tagd.0.2.0.dev1.g1"  # never "-dev"


@pytest.mark.parametrize("core_version, expected", [
    ("2.9.0", "2.9.0"),     # an older Core: nothing past what it serves
    ("2.11.3", "2.10.0"),   # the App's gates at 2.12 need Core's scrapers
    ("2.6.0", corelevel.FLOOR),
])
async def test_version_when_fronting_a_core_is_what_the_pair_serves(core_rig, session, core_version, expected):
    core, daemon = core_rig
    core.answers["version"] = {"version": core_version, "platform": "mister"}
    assert await eventually(lambda: daemon.zaparoo_core().connected)
    result = (await rpc(session, daemon, "version"))["result"]
    assert result["platform"] == "mister"  # the App's platform-specific controls are the core machine's
    assert result["version"].split("+")[0] == expected
    for name, since in APP_GATES.items():  # every gate the App enables works through the pair
        if app_satisfies(result["version"], since):
            gate = next(g for g in corelevel.GATES if g.name == name)
            assert corelevel.gate_works(gate, daemon.api.dispatcher.methods, core_version)


async def test_version_with_a_development_core_is_limited_by_tagds_own_features(core_rig, session):
    core, daemon = core_rig
    core.answers["version"] = {"version": "2.16.0-dev", "platform": "linux"}
    assert await eventually(lambda: daemon.zaparoo_core().connected)
    version = (await rpc(session, daemon, "version"))["result"]["version"]
    assert version.split("+")[0] == corelevel.api_level(daemon.api.dispatcher.methods, None)


def test_api_level_rule():
    served = {"inbox", "inbox.delete", "inbox.clear", "mappings", "clients.current"}
    assert corelevel.api_level(served, None) == "2.16.0"
    assert corelevel.api_level(served - {"clients.current"}, None) == "2.15.0"
    assert corelevel.api_level(served - {"inbox.clear"}, None) == "2.7.0"  # inbox is tagd's: it must work
    assert corelevel.api_level(served, "2.16.1") == "2.16.0"
    assert corelevel.api_level(served, "2.14.0") == "2.12.0"


# --- launch, mappings, inbox ------------------------------------------------------


async def test_launch_is_run_with_mappings_history_and_tokens_added(daemon, session):
    await rpc(session, daemon, "mappings.new", {"type": "text", "match": "exact", "pattern": "old", "override": "@SNES/new"})
    async with session.ws_connect(f"ws://127.0.0.1:{daemon.api.port}/api") as ws:
        assert (await rpc(session, daemon, "launch", {"text": "old"}))["result"] == {}
        note = json.loads((await ws.receive(timeout=3)).data)
    assert note["method"] == "tokens.added" and note["params"]["text"] == "old"
    assert await eventually(lambda: daemon.store.history(1))
    assert daemon.store.history(1)[0].text == "@SNES/new"  # mapped, recorded
    assert (await rpc(session, daemon, "launch", "plain text"))["result"] == {}  # the string form too


async def test_mappings_list_source_and_read_only_and_file_mappings_only_when_asked(tmp_path, session):
    (tmp_path / "config.toml").write_text('[[mappings.entry]]\nmatch_pattern = "04aabb"\nzapscript = "@NES/x"\n')
    d = Daemon(make_config(tmp_path), tmp_path / "config.toml")
    await d.start()
    try:
        await d.reload_mappings()
        await rpc(session, d, "mappings.new", {"type": "uid", "match": "exact", "pattern": "0411", "override": "@GB/y"})
        rows = (await rpc(session, d, "mappings"))["result"]["mappings"]
        assert [(m["pattern"], m["source"], m["readOnly"]) for m in rows] == [("0411", "database", False)]
        rows = (await rpc(session, d, "mappings", {"includeReadOnly": True}))["result"]["mappings"]
        assert [(m["pattern"], m["source"], m["readOnly"]) for m in rows] == [
            ("0411", "database", False), ("04aabb", "file", True)]
        file_row = rows[1]
        assert file_row["id"] == "" and file_row["added"] == "" and file_row["type"] == "uid"
        assert file_row["override"] == "@NES/x" and file_row["enabled"] is True
        assert "config.toml" in file_row["label"]  # where to edit it
        err = (await rpc(session, d, "mappings", {"includeReadOnly": "yes"}))["error"]
        assert err["code"] == 1 and "includeReadOnly" in err["message"]
    finally:
        await d.stop()


async def test_inbox_added_is_sent_for_every_inbox_message(daemon, session):
    async with session.ws_connect(f"ws://127.0.0.1:{daemon.api.port}/api") as ws:
        daemon.store.add_inbox("Launches are not reaching zaparoo", "core", severity=2, body="refused")
        await asyncio.to_thread(daemon.store.add_inbox, "From another thread", "readers", 1)
        got = [json.loads((await ws.receive(timeout=3)).data) for _ in range(2)]
        daemon.store.add_inbox("Launches are not reaching zaparoo", "core", severity=2, unique=True)  # not added
        await rpc(session, daemon, "health")
        with pytest.raises(asyncio.TimeoutError):
            await ws.receive(timeout=0.3)
    assert [g["method"] for g in got] == ["inbox.added", "inbox.added"]
    first = got[0]["params"]
    assert first["title"] == "Launches are not reaching zaparoo" and first["severity"] == 2 and first["body"] == "refused"
    assert isinstance(first["id"], int) and first["createdAt"]
    assert got[1]["params"]["title"] == "From another thread"


# --- without a core -----------------------------------------------------------------


async def test_without_a_core_the_polled_methods_answer_the_truth_in_the_apps_shapes(daemon, session):
    media = (await rpc(session, daemon, "media"))["result"]
    db = media["database"]  # the App's isIndexResponse: exists and indexing are booleans
    assert db["exists"] is False and db["indexing"] is False and media["active"] == []
    assert (await rpc(session, daemon, "systems", {"all": True}))["result"] == {"systems": []}
    assert (await rpc(session, daemon, "media.active"))["result"] is None
    limits = (await rpc(session, daemon, "settings.playtime.limits"))["result"]
    assert limits["enabled"] is False and limits["warnings"] == []
    play = (await rpc(session, daemon, "playtime"))["result"]
    assert play["state"] == "reset" and play["sessionActive"] is False
    assert (await rpc(session, daemon, "profiles"))["result"] == {"profiles": []}
    assert (await rpc(session, daemon, "media.scrape.status"))["result"]["scraping"] is False


async def test_without_a_core_other_core_methods_say_no_core_is_configured(daemon, session):
    err = (await rpc(session, daemon, "media.search", {"query": "mario"}))["error"]
    assert err["code"] == -32601  # the App reads -32601 as "not supported here" and degrades quietly
    assert err["message"].startswith("no Zaparoo Core configured: media.search")
    assert (await rpc(session, daemon, "no.such.method"))["error"] == {"code": -32601, "message": "Method not found"}


def test_no_core_answers_are_fresh_copies():
    nocore.answer("media")["active"].append("x")
    assert nocore.answer("media")["active"] == []


# --- settings -------------------------------------------------------------------------


APP_SWITCHES = {"audioScanFeedback": False, "debugLogging": True, "runZapScript": False, "errorReporting": True,
                "launchGuardEnabled": True, "launchGuardTimeout": 20.0, "launchGuardDelay": 1.5,
                "launchGuardRequireConfirm": True}


async def test_settings_app_switches_are_stored_and_survive_a_restart(tmp_path, session):
    d = Daemon(make_config(tmp_path), tmp_path / "config.toml")
    await d.start()
    try:
        assert (await rpc(session, d, "settings.update", APP_SWITCHES))["result"] == {}
        shown = (await rpc(session, d, "settings"))["result"]
        assert {k: shown[k] for k in APP_SWITCHES} == APP_SWITCHES
    finally:
        await d.stop()
    from tagd.daemon.config import load_config
    again = Daemon(load_config(tmp_path / "config.toml"), tmp_path / "config.toml")
    await again.start()
    try:
        shown = (await rpc(session, again, "settings"))["result"]
        assert {k: shown[k] for k in APP_SWITCHES} == APP_SWITCHES
    finally:
        await again.stop()


async def test_debug_logging_changes_the_log_level_at_run_time(daemon, session):
    import logging

    before = logging.getLogger().level
    await rpc(session, daemon, "settings.update", {"debugLogging": True})
    assert logging.getLogger().level == logging.DEBUG
    await rpc(session, daemon, "settings.update", {"debugLogging": False})
    assert logging.getLogger().level == before


def test_audio_scan_feedback_is_the_acr122_buzzer_unless_the_driver_option_says_otherwise():
    quiet = Config.model_validate({"audio": {"scan_feedback": False}})
    assert quiet.driver_options()["acr122"]["buzzer"] is False and quiet.driver_options()["pcsc"]["buzzer"] is False
    explicit = Config.model_validate({"audio": {"scan_feedback": False},
                                      "readers": {"options": {"acr122": {"buzzer": True}}}})
    assert explicit.driver_options()["acr122"]["buzzer"] is True


async def test_run_zapscript_off_announces_and_records_taps_but_does_not_forward(make_rig):
    rig = make_rig()
    rig.p.config = rig.config.model_copy(update={"run_zapscript": False})
    await rig.seen(MARIO)
    assert rig.fw.launched == [] and "tokens.added" in rig.methods()
    [entry] = rig.store.history(1)
    assert entry.text == MARIO.text and entry.success is False
    await rig.gone()
    await rig.seen(Token(uid="04cc", text="**write:x"))
    assert rig.p.pending_write is None  # arms nothing either, as Core ignores ZapScript


async def test_profile_settings_without_a_core_say_profiles_are_the_cores(daemon, session):
    shown = (await rpc(session, daemon, "settings"))["result"]
    assert shown["profilesRequireForLaunch"] is False and shown["profilesSwapData"] is False
    err = (await rpc(session, daemon, "settings.update", {"profilesRequireForLaunch": True}))["error"]
    assert err["code"] == 1 and err["message"].startswith("no Zaparoo Core configured")


async def test_profile_settings_go_to_the_core_and_are_read_from_it(core_rig, session):
    core, daemon = core_rig
    core.answers["settings"] = {"profilesRequireForLaunch": True, "profilesSwapData": False}
    assert await eventually(lambda: daemon.zaparoo_core().connected)
    assert (await rpc(session, daemon, "settings"))["result"]["profilesRequireForLaunch"] is True
    assert (await rpc(session, daemon, "settings.update", {"profilesSwapData": True}))["result"] == {}
    [sent] = [r for r in core.requests if r["method"] == "settings.update"]
    assert sent["params"] == {"profilesSwapData": True}
