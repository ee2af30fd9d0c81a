"""Issue 13 item 10: each database failure gets its own true message — a locked database, a read-only file system,
a full disk (mappings.new and history: no silent drop, no traceback per call) and a database path under a file."""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import need
from test_api import daemon, make_config  # noqa: F401 (fixture)
from tagd.daemon.service import Daemon
from tagd.daemon.store import Store, StoreError
from tagd.token import Token


async def call(d, method, params=None):
    msg = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params or {}}
    return await d.api.dispatcher.handle_text(json.dumps(msg))


def fill_disk(store: Store) -> None:
    """SQLite's own 'database or disk is full' (SQLITE_FULL): the file may not grow by another page."""
    pages = store._db.execute("PRAGMA page_count").fetchone()[0]
    store._db.execute(f"PRAGMA max_page_count = {pages}")


def free_disk(store: Store) -> None:
    store._db.execute("PRAGMA max_page_count = 1073741823")


def test_a_locked_database_says_locked_not_move_it_away(tmp_path, monkeypatch):
    path = tmp_path / "tagd.db"
    Store(path).close()
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    monkeypatch.setattr(Store, "timeout", 0.05)
    try:
        with pytest.raises(StoreError) as info:
            Store(path)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    message = str(info.value)
    assert str(path) in message and "locked by another program" in message and "move it away" not in message


def test_a_database_on_a_read_only_file_system_says_read_only(tmp_path):
    mnt = tmp_path / "ro"
    mnt.mkdir()
    mounted = shutil.which("mount") and subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mnt)],
                                                       capture_output=True).returncode == 0
    need(bool(mounted), "mounting a tmpfs (root in a container that allows it) to make a read-only file system")
    try:
        Store(mnt / "tagd.db").close()
        subprocess.run(["mount", "-o", "remount,ro", str(mnt)], check=True)
        with pytest.raises(StoreError) as info:
            Store(mnt / "tagd.db")
    finally:
        subprocess.run(["umount", "-l", str(mnt)])
    message = str(info.value)
    assert "read-only" in message and "move it away" not in message, message


async def test_disk_full_on_mappings_new_answers_disk_full_without_a_traceback(daemon, caplog):
    fill_disk(daemon.store)
    big = "x" * 20_000  # needs new pages
    with caplog.at_level(logging.ERROR):
        for _ in range(3):
            answer = await call(daemon, "mappings.new", {"type": "text", "match": "exact", "pattern": big,
                                                         "override": "y"})
            assert "disk is full" in answer["error"]["message"], answer
            assert "mapping not saved" in answer["error"]["message"]
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"
    free_disk(daemon.store)
    assert "result" in await call(daemon, "mappings.new", {"type": "text", "match": "exact", "pattern": big,
                                                           "override": "y"})


async def test_disk_full_history_is_reported_once_and_counted_not_silently_dropped(daemon, caplog):
    await asyncio.sleep(0)
    fill_disk(daemon.store)
    with caplog.at_level(logging.INFO):
        for i in range(5):
            await daemon.pipeline.run_token(Token(text="t" + "x" * 20_000 + str(i), source="api"))
        errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
        assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"
        assert len([r for r in errors if "not recorded in history" in r.getMessage()]) == 1
        assert "disk is full" in errors[0].getMessage()
        free_disk(daemon.store)
        await daemon.pipeline.run_token(Token(text="after", source="api"))
    assert any("5 launch(es) before this one were not recorded" in r.getMessage() for r in caplog.records)
    assert daemon.store.history(1)[0].text == "after"


async def test_a_database_path_under_a_file_names_the_database_key(tmp_path):
    blocker = tmp_path / "afile"
    blocker.write_text("x")
    config = make_config(tmp_path, database=str(blocker / "tagd.db"))
    d = Daemon(config, tmp_path / "config.toml")
    with pytest.raises(StoreError) as info:
        await d.start()
    message = str(info.value)
    assert "database" in message and str(tmp_path / "config.toml") in message
    assert f"{blocker} is a file, not a directory" in message and "Errno" not in message


def test_tagd_run_with_a_database_under_a_file_exits_2_naming_the_key(tmp_path):
    blocker = tmp_path / "afile"
    blocker.write_text("x")
    config = tmp_path / "config.toml"
    config.write_text(f'database = "{blocker}/tagd.db"\n[readers]\nauto_detect = false\n'
                      '[api]\nlisten = "127.0.0.1:0"\n')
    run = subprocess.run([sys.executable, "-m", "tagd", "run", "--config", str(config)], capture_output=True,
                         text=True, timeout=30)
    assert run.returncode == 2 and f"{config}: database:" in run.stderr and "is a file" in run.stderr, run.stderr
    assert "Traceback" not in run.stderr
