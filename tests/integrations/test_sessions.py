"""Play sessions: the tracker's rules, the platform hint table, and the store's one-transaction switch."""

from __future__ import annotations

import pytest

from tagd.integrations.sessions import (PLATFORM_HINTS, OpenSession, SessionTracker, clean_name, media_session,
                                        platform_hint)
from tagd.integrations.store import IntegrationStore, session_json

T0 = 1_781_229_600.0
CHRONO = {"systemId": "SNES", "systemName": "Super Nintendo", "mediaPath": "Roms/SFC/Chrono Trigger.sfc",
          "mediaName": "Chrono Trigger"}


@pytest.mark.parametrize("system, hint", [("SNES", "snes"), ("GBA", "gba"), ("PSX", "psx"), ("Arcade", "arcade"),
                                          ("Genesis", "genesis"), ("Nintendo64", "n64"), ("GameboyColor", "gbc"),
                                          ("SomethingNew", "somethingnew"), ("", "")])
def test_platform_hints_from_zaparoo_system_ids(system, hint):
    assert platform_hint(system) == hint


def test_the_config_overrides_a_hint_and_every_table_value_is_a_lower_case_slug():
    assert platform_hint("SNES", {"SNES": "sfc"}) == "sfc"
    assert all(v == v.lower() and " " not in v for v in PLATFORM_HINTS.values())


def test_clean_names_drop_extension_and_tags():
    assert clean_name("/roms/SNES/Chrono Trigger (USA) [!].sfc") == "Chrono Trigger"
    assert clean_name("C:\\Games\\Doom.zip") == "Doom"
    assert clean_name("**launch.random:snes") == "**launch.random:snes"


def test_a_session_runs_from_started_to_stopped_with_its_fields():
    tracker = SessionTracker()
    ended, finished = tracker.start(media_session(CHRONO, T0), T0)
    assert ended is None and finished is None
    ended, finished = tracker.stop(T0 + 5400.9)
    assert finished is not None and ended is not None
    assert (finished.rom_path, finished.rom_name, finished.duration, finished.played_at, finished.platform_hint) == \
        ("Roms/SFC/Chrono Trigger.sfc", "Chrono Trigger", 5400, int(T0), "snes")


def test_the_next_start_ends_the_session_under_way():
    tracker = SessionTracker()
    tracker.start(media_session(CHRONO, T0), T0)
    ended, finished = tracker.start(media_session({**CHRONO, "mediaPath": "b.sfc", "mediaName": "B"}, T0 + 60), T0 + 60)
    assert finished is not None and finished.rom_name == "Chrono Trigger" and finished.duration == 60
    assert tracker.current is not None and tracker.current.rom_name == "B"


def test_sessions_shorter_than_the_minimum_are_dropped():
    tracker = SessionTracker(min_duration=30)
    tracker.start(media_session(CHRONO, T0), T0)
    assert tracker.stop(T0 + 29.9)[1] is None
    tracker.start(media_session(CHRONO, T0), T0)
    assert tracker.stop(T0 + 30)[1] is not None


def test_a_media_started_without_media_is_no_session():
    assert media_session({"systemId": "SNES"}, T0) is None
    assert media_session("garbage", T0) is None
    assert media_session({"mediaPath": "/x/Y (Europe).md"}, T0).rom_name == "Y"  # type: ignore[union-attr]


def test_the_store_ends_one_session_and_opens_the_next_in_one_transaction(tmp_path):
    store = IntegrationStore(tmp_path / "tagd.db")
    tracker = SessionTracker()
    first = media_session(CHRONO, T0)
    tracker.start(first, T0)
    tracker.stored(store.switch(None, None, first))  # type: ignore[arg-type]
    second = media_session({**CHRONO, "mediaPath": "b.sfc"}, T0 + 100)
    ended, finished = tracker.start(second, T0 + 100)
    new_id = store.switch(ended, finished, second)
    rows = {r["id"]: r for r in store.sessions()}
    assert rows[ended.id]["status"] == "pending" and rows[ended.id]["duration"] == 100  # type: ignore[union-attr]
    assert rows[new_id]["status"] == "open"
    assert store.counts() == {"open": 1, "pending": 1, "synced": 0, "failed": 0}
    assert store.drop_open() == 1
    assert session_json(store.pending(10)[0])["devicePlayedAt"] == int(T0)
    store.close()


def test_a_too_short_session_leaves_no_row(tmp_path):
    store = IntegrationStore(tmp_path / "tagd.db")
    tracker = SessionTracker()
    s = OpenSession("x.sfc", "X", "SNES", T0, "core")
    tracker.start(s, T0)
    tracker.stored(store.switch(None, None, s))  # type: ignore[arg-type]
    store.switch(*tracker.stop(T0 + 3), None)
    assert store.sessions() == []
    store.close()


def test_the_tables_live_beside_the_daemons_own_in_the_same_file(tmp_path):
    from tagd.daemon.store import Store

    daemon_store = Store(tmp_path / "tagd.db")
    store = IntegrationStore(tmp_path / "tagd.db")
    store.close()
    again = IntegrationStore(tmp_path / "tagd.db")  # a second open migrates nothing and keeps the rows
    assert again.counts()["pending"] == 0
    again.close()
    daemon_store.close()
