"""The integrations' tables in the daemon's SQLite file: play sessions, the RomM catalog, deck progress, state.

Its own connection to the same database (WAL: readers never block the writer) and its own schema version row,
so the daemon's :class:`~tagd.daemon.store.Store` and this one evolve without sharing a migration list. Every
change that must not half-happen is one transaction: ending a session and opening the next, marking a synced
batch with retroshelf's results, recording a written card. A commit survives kill -9 (WAL, synchronous=NORMAL).

Session rows go ``open`` → ``pending`` (ended, queued for retroshelf) → ``synced`` | ``failed`` (a 4xx
rejected it: quarantined until ``tagd sessions retry``). A session shorter than the minimum is deleted in the
transaction that ends it.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any, Iterable

from tagd.integrations.sessions import OpenSession, Session

MIGRATIONS = [
    """
    CREATE TABLE play_sessions (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        rom_path TEXT NOT NULL,
        rom_name TEXT NOT NULL DEFAULT '',
        rom_hash TEXT NOT NULL DEFAULT '',
        system_id TEXT NOT NULL DEFAULT '',
        platform_hint TEXT NOT NULL DEFAULT '',
        source TEXT NOT NULL DEFAULT '',
        started_at REAL NOT NULL,
        played_at INTEGER,
        duration INTEGER,
        status TEXT NOT NULL,
        error TEXT NOT NULL DEFAULT '',
        attempts INTEGER NOT NULL DEFAULT 0,
        matched INTEGER,
        game_id TEXT,
        game_name TEXT,
        synced_at REAL
    );
    CREATE INDEX play_sessions_queue ON play_sessions(status, played_at, id);
    CREATE TABLE romm_roms (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL,
        fs_name TEXT NOT NULL,
        fs_name_no_ext TEXT NOT NULL,
        platform_id INTEGER NOT NULL,
        platform_slug TEXT NOT NULL,
        platform_name TEXT NOT NULL,
        crc_hash TEXT NOT NULL,
        md5_hash TEXT NOT NULL,
        sha1_hash TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        cover_url TEXT NOT NULL
    );
    CREATE INDEX romm_roms_fs ON romm_roms(fs_name);
    CREATE TABLE deck_cards (
        deck TEXT NOT NULL,
        item TEXT NOT NULL,
        position INTEGER NOT NULL,
        title TEXT NOT NULL,
        subtitle TEXT NOT NULL DEFAULT '',
        text TEXT NOT NULL,
        cover_url TEXT NOT NULL DEFAULT '',
        uid TEXT NOT NULL DEFAULT '',
        written_at REAL,
        PRIMARY KEY (deck, item)
    );
    CREATE TABLE integration_state (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    """,
]
VERSION_KEY = "schema_version"

SESSION_COLUMNS = ("id", "rom_path", "rom_name", "rom_hash", "system_id", "platform_hint", "source", "started_at",
                   "played_at", "duration", "status", "error", "attempts", "matched", "game_id", "game_name",
                   "synced_at")
ROM_COLUMNS = ("id", "name", "fs_name", "fs_name_no_ext", "platform_id", "platform_slug", "platform_name", "crc_hash",
               "md5_hash", "sha1_hash", "updated_at", "cover_url")
STATUSES = ("open", "pending", "synced", "failed")


class IntegrationStore:
    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=10.0)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._migrate()

    def _migrate(self) -> None:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute("CREATE TABLE IF NOT EXISTS integration_meta (key TEXT PRIMARY KEY, value TEXT)")
                row = self._db.execute("SELECT value FROM integration_meta WHERE key = ?", (VERSION_KEY,)).fetchone()
                version = int(row[0]) if row else 0
                if version > len(MIGRATIONS):
                    raise sqlite3.DatabaseError(f"{self.path}: integration tables from a newer tagd (v{version})")
                for n in range(version, len(MIGRATIONS)):
                    for statement in MIGRATIONS[n].split(";"):
                        if statement.strip():
                            self._db.execute(statement)
                self._db.execute("INSERT OR REPLACE INTO integration_meta VALUES (?, ?)", (VERSION_KEY, len(MIGRATIONS)))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _tx(self, fn: Any) -> Any:
        """Run fn(db) in one IMMEDIATE transaction under the lock."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                out = fn(self._db)
                self._db.execute("COMMIT")
                return out
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def _rows(self, sql: str, args: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._db.execute(sql, tuple(args)).fetchall()

    # --- sessions -------------------------------------------------------------------

    def switch(self, ended: OpenSession | None, finished: Session | None, new: OpenSession | None) -> int | None:
        """In one transaction: the ended session becomes pending (or is deleted when too short), the new one opens.
        Returns the new session's row id."""
        def run(db: sqlite3.Connection) -> int | None:
            if ended is not None and ended.id is not None:
                if finished is None:
                    db.execute("DELETE FROM play_sessions WHERE id = ? AND status = 'open'", (ended.id,))
                else:
                    db.execute("UPDATE play_sessions SET status='pending', duration=?, played_at=?, rom_name=?,"
                               " rom_hash=?, platform_hint=? WHERE id = ? AND status = 'open'",
                               (finished.duration, finished.played_at, finished.rom_name, finished.rom_hash,
                                finished.platform_hint, ended.id))
            if new is None:
                return None
            cur = db.execute("INSERT INTO play_sessions (rom_path, rom_name, rom_hash, system_id, source, started_at,"
                             " status) VALUES (?,?,?,?,?,?, 'open')",
                             (new.rom_path, new.rom_name, new.rom_hash, new.system_id, new.source, new.started_at))
            return cur.lastrowid
        return self._tx(run)

    def add_sessions(self, sessions: Iterable[Session]) -> int:
        """Queue finished sessions directly (imports, tests, the bench)."""
        rows = [(s.rom_path, s.rom_name, s.rom_hash, s.system_id, s.platform_hint, s.source, float(s.played_at),
                 s.played_at, s.duration) for s in sessions]
        self._tx(lambda db: db.executemany(
            "INSERT INTO play_sessions (rom_path, rom_name, rom_hash, system_id, platform_hint, source, started_at,"
            " played_at, duration, status) VALUES (?,?,?,?,?,?,?,?,?, 'pending')", rows))
        return len(rows)

    def drop_open(self) -> int:
        """Sessions left open by a tagd that did not stop cleanly: their length is unknown, so they are dropped."""
        return self._tx(lambda db: db.execute("DELETE FROM play_sessions WHERE status = 'open'").rowcount)

    def enrich(self, session_id: int, rom_name: str = "", rom_hash: str = "") -> None:
        with self._lock:
            self._db.execute("UPDATE play_sessions SET rom_name = CASE WHEN ? != '' THEN ? ELSE rom_name END,"
                             " rom_hash = CASE WHEN ? != '' THEN ? ELSE rom_hash END WHERE id = ?",
                             (rom_name, rom_name, rom_hash, rom_hash, session_id))

    def pending(self, limit: int) -> list[dict[str, Any]]:
        """The oldest queued sessions (by when they were played), at most ``limit``."""
        rows = self._rows(f"SELECT {', '.join(SESSION_COLUMNS)} FROM play_sessions WHERE status = 'pending'"
                          " ORDER BY played_at, id LIMIT ?", (int(limit),))
        return [dict(zip(SESSION_COLUMNS, r)) for r in rows]

    def mark_synced(self, ids: list[int], results: list[dict[str, Any]], now: float) -> None:
        """The batch was accepted: every row synced, with retroshelf's result for it (matched, gameId, gameName)."""
        def run(db: sqlite3.Connection) -> None:
            for i, session_id in enumerate(ids):
                r = results[i] if i < len(results) else {}
                matched = r.get("matched")
                db.execute("UPDATE play_sessions SET status='synced', synced_at=?, error='', attempts=attempts+1,"
                           " matched=?, game_id=?, game_name=? WHERE id = ? AND status = 'pending'",
                           (now, None if matched is None else int(bool(matched)), _opt_str(r.get("gameId")),
                            _opt_str(r.get("gameName")), session_id))
        self._tx(run)

    def mark_failed(self, ids: list[int], error: str) -> None:
        self._tx(lambda db: db.executemany(
            "UPDATE play_sessions SET status='failed', error=?, attempts=attempts+1 WHERE id = ?",
            [(error[:500], i) for i in ids]))

    def note_attempt(self, ids: list[int], error: str) -> None:
        """A transient failure: the rows stay pending, the error is shown until the next attempt."""
        self._tx(lambda db: db.executemany(
            "UPDATE play_sessions SET error=?, attempts=attempts+1 WHERE id = ?", [(error[:500], i) for i in ids]))

    def retry(self, ids: Iterable[int] | None = None) -> int:
        """Quarantined sessions back to the queue (all of them, or the given ids)."""
        if ids is None:
            return self._tx(lambda db: db.execute(
                "UPDATE play_sessions SET status='pending', error='' WHERE status='failed'").rowcount)
        wanted = [(int(i),) for i in ids]
        return self._tx(lambda db: sum(db.execute(
            "UPDATE play_sessions SET status='pending', error='' WHERE status='failed' AND id = ?", w).rowcount
            for w in wanted))

    def sessions(self, status: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """Newest first; all statuses or one."""
        where, args = ("WHERE status = ?", [status]) if status else ("", [])
        rows = self._rows(f"SELECT {', '.join(SESSION_COLUMNS)} FROM play_sessions {where}"
                          " ORDER BY started_at DESC, id DESC LIMIT ?", [*args, int(limit)])
        return [dict(zip(SESSION_COLUMNS, r)) for r in rows]

    def session(self, session_id: int) -> dict[str, Any] | None:
        rows = self._rows(f"SELECT {', '.join(SESSION_COLUMNS)} FROM play_sessions WHERE id = ?", (session_id,))
        return dict(zip(SESSION_COLUMNS, rows[0])) if rows else None

    def counts(self) -> dict[str, int]:
        out = {s: 0 for s in STATUSES}
        for status, n in self._rows("SELECT status, COUNT(*) FROM play_sessions GROUP BY status"):
            out[status] = n
        return out

    # --- RomM catalog -------------------------------------------------------------------

    def upsert_roms(self, roms: Iterable[Any]) -> int:
        rows = [tuple(getattr(r, c) for c in ROM_COLUMNS) for r in roms]
        self._tx(lambda db: db.executemany(
            f"INSERT OR REPLACE INTO romm_roms ({', '.join(ROM_COLUMNS)}) VALUES ({', '.join('?' * len(ROM_COLUMNS))})",
            rows))
        return len(rows)

    def roms(self, search: str = "", platform: str = "", limit: int = 100000) -> list[dict[str, Any]]:
        clauses, args = [], []
        if search:
            clauses.append("(name LIKE ? ESCAPE '\\' OR fs_name LIKE ? ESCAPE '\\')")
            pattern = "%" + search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            args += [pattern, pattern]
        if platform:
            clauses.append("platform_slug = ?")
            args.append(platform)
        where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
        rows = self._rows(f"SELECT {', '.join(ROM_COLUMNS)} FROM romm_roms {where} ORDER BY platform_slug, name, id"
                          " LIMIT ?", [*args, int(limit)])
        return [dict(zip(ROM_COLUMNS, r)) for r in rows]

    def find_rom(self, fs_name: str = "", name: str = "", platform: str = "", rom_hash: str = "") -> dict[str, Any] | None:
        """A ROM by hash, else by file name, else by clean name — within the platform when one is given."""
        tries = []
        if rom_hash:
            tries.append(("(md5_hash = ? OR sha1_hash = ? OR crc_hash = ?)", [rom_hash.lower()] * 3))
        if fs_name:
            tries.append(("fs_name = ?", [fs_name]))
        if name:
            tries.append(("(name = ? COLLATE NOCASE OR fs_name_no_ext = ? COLLATE NOCASE)", [name, name]))
        for clause, args in tries:
            for plat in ([platform, ""] if platform else [""]):
                extra = " AND platform_slug = ?" if plat else ""
                rows = self._rows(f"SELECT {', '.join(ROM_COLUMNS)} FROM romm_roms WHERE {clause}{extra} LIMIT 1",
                                  [*args, *([plat] if plat else [])])
                if rows:
                    return dict(zip(ROM_COLUMNS, rows[0]))
        return None

    def rom_count(self) -> int:
        return self._rows("SELECT COUNT(*) FROM romm_roms")[0][0]

    # --- deck progress ----------------------------------------------------------------------

    def plan_deck(self, deck: str, items: list[dict[str, Any]]) -> None:
        """Add the deck's items that are not there yet (kept in order); items already written stay written."""
        def run(db: sqlite3.Connection) -> None:
            for pos, it in enumerate(items):
                db.execute("INSERT INTO deck_cards (deck, item, position, title, subtitle, text, cover_url)"
                           " VALUES (?,?,?,?,?,?,?) ON CONFLICT(deck, item) DO UPDATE SET position=excluded.position,"
                           " title=excluded.title, subtitle=excluded.subtitle, cover_url=excluded.cover_url,"
                           " text=CASE WHEN written_at IS NULL THEN excluded.text ELSE text END",
                           (deck, it["item"], pos, it["title"], it.get("subtitle", ""), it["text"],
                            it.get("cover_url", "")))
        self._tx(run)

    def deck(self, deck: str, items: Iterable[str] | None = None) -> list[dict[str, Any]]:
        cols = ("item", "position", "title", "subtitle", "text", "cover_url", "uid", "written_at")
        rows = self._rows(f"SELECT {', '.join(cols)} FROM deck_cards WHERE deck = ? ORDER BY position", (deck,))
        out = [dict(zip(cols, r)) for r in rows]
        if items is not None:
            wanted = set(items)
            out = [r for r in out if r["item"] in wanted]
        return out

    def card_written(self, deck: str, item: str, uid: str, now: float | None = None) -> None:
        self._tx(lambda db: db.execute("UPDATE deck_cards SET uid=?, written_at=? WHERE deck=? AND item=?",
                                       (uid, time.time() if now is None else now, deck, item)))

    def card_on_tag(self, uid: str) -> dict[str, Any] | None:
        """The card last written to this tag, in any deck."""
        rows = self._rows("SELECT deck, item, title FROM deck_cards WHERE uid = ? AND uid != '' ORDER BY written_at DESC"
                          " LIMIT 1", (uid,))
        return {"deck": rows[0][0], "item": rows[0][1], "title": rows[0][2]} if rows else None

    def forget_tag(self, uid: str) -> None:
        """Another card goes on this tag (--overwrite): the old card is no longer written anywhere."""
        self._tx(lambda db: db.execute("UPDATE deck_cards SET uid='', written_at=NULL WHERE uid = ?", (uid,)))

    # --- small state ------------------------------------------------------------------------

    def get_state(self, key: str, default: str = "") -> str:
        rows = self._rows("SELECT value FROM integration_state WHERE key = ?", (key,))
        return rows[0][0] if rows else default

    def set_state(self, key: str, value: str) -> None:
        self._tx(lambda db: db.execute("INSERT OR REPLACE INTO integration_state VALUES (?, ?)", (key, value)))


def _opt_str(v: Any) -> str | None:
    return v if isinstance(v, str) else None


def session_json(row: dict[str, Any]) -> dict[str, Any]:
    """A stored session as the API and the CLI show it (retroshelf's field names, plus its queue state)."""
    out: dict[str, Any] = {"id": row["id"], "romPath": row["rom_path"], "romName": row["rom_name"],
                           "platformHint": row["platform_hint"], "systemId": row["system_id"],
                           "devicePlayedAt": row["played_at"] if row["played_at"] is not None else int(row["started_at"]),
                           "duration": row["duration"], "status": row["status"], "attempts": row["attempts"]}
    if row["rom_hash"]:
        out["romHash"] = row["rom_hash"]
    if row["error"]:
        out["error"] = row["error"]
    if row["matched"] is not None:
        out["matched"] = bool(row["matched"])
    for key, col in (("gameId", "game_id"), ("gameName", "game_name")):
        if row[col]:
            out[key] = row[col]
    return out
