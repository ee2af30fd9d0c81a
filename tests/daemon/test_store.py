"""The SQLite store: CRUD, WAL, schema version, damaged files, and acknowledged mappings surviving kill -9."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tagd.daemon.mappings import MappingError
from tagd.daemon.store import SCHEMA_VERSION, Store, StoreError
from tagd.token import Token


@pytest.fixture
def store(tmp_path: Path):
    s = Store(tmp_path / "tagd.db")
    yield s
    s.close()


def test_database_uses_wal_and_records_its_schema_version(store: Store) -> None:
    db = sqlite3.connect(store.path)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    db.close()


def test_missing_parent_directory_is_created(tmp_path: Path) -> None:
    s = Store(tmp_path / "a" / "b" / "tagd.db")
    assert s.path.exists()
    s.close()


def test_mapping_crud(store: Store) -> None:
    m = store.add_mapping(label="mario", type="id", match="exact", pattern="04AB", override="**launch:mario")
    assert m.id is not None and m.type == "uid"
    n = store.add_mapping(type="text", match="partial", pattern="zelda", override="z")
    assert [x.id for x in store.mappings()] == [m.id, n.id]
    updated = store.update_mapping(m.id, enabled=False, label="off")
    assert (updated.enabled, updated.label, updated.pattern, updated.added_ns) == (False, "off", "04AB", m.added_ns)
    assert store.mapping(m.id) == updated
    store.delete_mapping(n.id)
    assert [x.id for x in store.mappings()] == [m.id]


def test_update_is_validated_before_writing(store: Store) -> None:
    m = store.add_mapping(type="text", match="exact", pattern="a", override="b")
    with pytest.raises(MappingError, match="invalid regex"):
        store.update_mapping(m.id, match="regex", pattern="(")
    with pytest.raises(MappingError, match="unknown field"):
        store.update_mapping(m.id, colour="red")
    assert store.mapping(m.id) == m


def test_unknown_mapping_id_is_a_mapping_error(store: Store) -> None:
    with pytest.raises(MappingError, match="no mapping with id 42"):
        store.update_mapping(42, label="x")
    with pytest.raises(MappingError, match="no mapping with id 42"):
        store.delete_mapping(42)


def test_ids_are_not_reused_after_delete(store: Store) -> None:
    a = store.add_mapping(type="text", match="exact", pattern="a", override="b")
    store.delete_mapping(a.id)
    b = store.add_mapping(type="text", match="exact", pattern="a", override="b")
    assert b.id > a.id  # creation order stays the id order


def test_history_newest_first_with_success_flag(store: Store) -> None:
    store.add_history(Token(uid="04ab", text="one", reader_id="pn532-x"), True)
    store.add_history(Token(uid="04cd", text="two"), False)
    entries = store.history(10)
    assert [(e.text, e.success) for e in entries] == [("two", False), ("one", True)]
    j = entries[1].to_json()
    assert j["readerId"] == "pn532-x" and j["success"] is True and set(j) >= {"data", "text", "time", "type", "uid"}
    assert len(store.history(1)) == 1


def test_inbox_add_list_delete_clear(store: Store) -> None:
    a = store.add_inbox("Reader lost", "readers", severity=1)
    b = store.add_inbox("Core down", "core")
    assert [m.id for m in store.inbox()] == [a.id, b.id]
    assert a.to_json()["title"] == "Reader lost" and a.to_json()["category"] == "readers"
    assert store.delete_inbox(a.id) is True and store.delete_inbox(a.id) is False
    store.clear_inbox()
    assert store.inbox() == []


def test_unique_inbox_message_is_not_repeated(store: Store) -> None:
    assert store.add_inbox("Core down", "core", unique=True) is not None
    assert store.add_inbox("Core down", "core", unique=True) is None
    assert len(store.inbox()) == 1


def test_data_survives_reopen(tmp_path: Path) -> None:
    s = Store(tmp_path / "t.db")
    m = s.add_mapping(type="uid", match="regex", pattern="^04", override="x")
    s.add_history(Token(text="t"), True)
    s.close()
    s = Store(tmp_path / "t.db")
    assert s.mappings() == [m] and len(s.history()) == 1
    s.close()


def test_a_file_that_is_not_a_database_is_named_in_the_error(tmp_path: Path) -> None:
    path = tmp_path / "tagd.db"
    path.write_bytes(b"this is not sqlite" * 512)
    with pytest.raises(StoreError) as info:
        Store(path)
    assert str(path) in str(info.value) and "not a usable tagd database" in str(info.value)


def test_database_from_a_newer_tagd_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "tagd.db"
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.close()
    with pytest.raises(StoreError, match="newer tagd"):
        Store(path)


WRITER = textwrap.dedent(
    """
    import sys
    from tagd.daemon.store import Store
    s = Store(sys.argv[1])
    print("ready", flush=True)
    n = 0
    while True:
        m = s.add_mapping(type="uid", match="exact", pattern=f"{n:014x}", override="x" * 200)
        print(m.id, flush=True)
        n += 1
    """
)


def test_acknowledged_mappings_survive_kill_9(tmp_path: Path) -> None:
    path = tmp_path / "tagd.db"
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    acknowledged: list[int] = []
    deadline = time.monotonic() + 20
    while len(acknowledged) < 150 and time.monotonic() < deadline:
        acknowledged.append(int(proc.stdout.readline()))
    os.kill(proc.pid, signal.SIGKILL)  # mid-stream: the writer is committing the next rows
    proc.wait()
    rest = proc.stdout.read().split()  # ids printed before the kill but not yet read by us
    acknowledged += [int(x) for x in rest]
    proc.stdout.close()
    assert len(acknowledged) >= 150

    db = sqlite3.connect(path)
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    db.close()
    s = Store(path)
    stored = {m.id for m in s.mappings()}
    s.close()
    assert set(acknowledged) <= stored
