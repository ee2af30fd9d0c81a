"""The daemon's SQLite database: mappings, scan history, the inbox and paired API clients.

The file is made 0600 (owner only) when opened: it holds paired clients' pairing keys.

SQLite in WAL mode: readers never block the writer, and a commit is an append to the WAL. Durability:
history and inbox commit with ``synchronous=NORMAL`` (a commit survives the process being killed; only
a power cut may lose the last ones), mapping writes switch to ``synchronous=FULL`` for their transaction
(fsync before the API acknowledges them: an acknowledged mapping survives kill -9 and a power cut).

Threads: every method takes one lock and holds it for one short statement or transaction, so the Store
can be called straight from the asyncio loop (a history insert is tens of µs) or, for the fsync'ing
mapping writes, through ``asyncio.to_thread`` — both are safe.

Schema versions live in ``PRAGMA user_version``; :data:`MIGRATIONS` upgrades step by step. A file that
is not a database, fails ``quick_check`` or comes from a newer tagd raises :class:`StoreError` naming it.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from tagd.daemon.api.pairing.clients import PairedClient
from tagd.daemon.mappings import Mapping, MappingError
from tagd.token import Token, format_scan_time

MIGRATIONS: list[str] = [
    # version 1
    """
    CREATE TABLE mappings (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        added_ns INTEGER NOT NULL,
        label TEXT NOT NULL DEFAULT '',
        enabled INTEGER NOT NULL DEFAULT 1,
        type TEXT NOT NULL,
        match TEXT NOT NULL,
        pattern TEXT NOT NULL,
        override TEXT NOT NULL
    );
    CREATE TABLE history (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        scan_ns INTEGER NOT NULL,
        type TEXT NOT NULL,
        uid TEXT NOT NULL,
        text TEXT NOT NULL,
        data TEXT NOT NULL,
        reader_id TEXT,
        source TEXT NOT NULL DEFAULT '',
        success INTEGER NOT NULL
    );
    CREATE INDEX history_scan ON history(scan_ns);
    CREATE TABLE inbox (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        text TEXT NOT NULL,
        body TEXT NOT NULL DEFAULT '',
        category TEXT NOT NULL DEFAULT '',
        severity INTEGER NOT NULL DEFAULT 0,
        created_ns INTEGER NOT NULL
    );
    """,
    # version 2: clients paired through /api/pair (their pairing keys are secrets: the file is 0600)
    """
    CREATE TABLE clients (
        client_id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        auth_token TEXT NOT NULL UNIQUE,
        pairing_key BLOB NOT NULL,
        role TEXT NOT NULL DEFAULT 'member',
        created_at INTEGER NOT NULL,
        last_seen_at INTEGER NOT NULL
    );
    """,
]
SCHEMA_VERSION = len(MIGRATIONS)
HISTORY_KEEP_NS = 30 * 24 * 3600 * 10**9  # Zaparoo keeps 30 days of scan history by default

_MAPPING_COLUMNS = ("label", "enabled", "type", "match", "pattern", "override")


class StoreError(Exception):
    """The database file cannot be used; the message names the file and why."""


@dataclass(frozen=True)
class HistoryEntry:
    scan_ns: int
    type: str
    uid: str
    text: str
    data: str
    reader_id: str | None
    success: bool
    source: str = ""

    def to_json(self) -> dict[str, Any]:
        """Zaparoo's launch entry (``tokens.history``)."""
        out: dict[str, Any] = {"data": self.data, "success": self.success, "text": self.text,
                               "time": format_scan_time(self.scan_ns), "type": self.type, "uid": self.uid}
        if self.reader_id:
            out["readerId"] = self.reader_id
        return out


@dataclass(frozen=True)
class InboxMessage:
    id: int
    text: str
    category: str
    created_ns: int
    severity: int = 0
    body: str = ""

    def to_json(self) -> dict[str, Any]:
        """Zaparoo's inbox message (``text`` is its title)."""
        out: dict[str, Any] = {"id": self.id, "title": self.text, "severity": self.severity,
                               "createdAt": format_scan_time(self.created_ns)}
        if self.body:
            out["body"] = self.body
        if self.category:
            out["category"] = self.category
        return out


class Store:
    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        # called with each new inbox message, outside the lock (the daemon sends it to clients as inbox.added)
        self.on_inbox: Callable[[InboxMessage], None] | None = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=5.0)
            self._owner_only()
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"{self.path}: cannot open the database: {exc}") from None
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            check = self._db.execute("PRAGMA quick_check").fetchone()[0]
            if check != "ok":
                raise StoreError(f"{self.path}: the database is damaged ({check}); move it away to start afresh")
            self._migrate()
            self._owner_only()
            self._db.execute("DELETE FROM history WHERE scan_ns < ?", (time.time_ns() - HISTORY_KEEP_NS,))
        except sqlite3.DatabaseError as exc:
            self._db.close()
            raise StoreError(f"{self.path}: not a usable tagd database ({exc}); move it away to start afresh") from None
        except StoreError:
            self._db.close()
            raise

    def _migrate(self) -> None:
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise StoreError(f"{self.path}: schema version {version} is from a newer tagd (this one knows {SCHEMA_VERSION})")
        for n in range(version, SCHEMA_VERSION):
            self._db.execute("BEGIN IMMEDIATE")
            try:
                for statement in MIGRATIONS[n].split(";"):
                    if statement.strip():
                        self._db.execute(statement)
                self._db.execute(f"PRAGMA user_version = {n + 1}")
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def _owner_only(self) -> None:
        """chmod 0600 the database and its WAL files (paired clients' keys are in it)."""
        for suffix in ("", "-wal", "-shm"):
            try:
                os.chmod(f"{self.path}{suffix}", 0o600)
            except FileNotFoundError:
                pass

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # --- mappings -----------------------------------------------------------

    def _durable(self, sql: str, args: tuple[Any, ...]) -> sqlite3.Cursor:
        """One statement in its own transaction, fsync'd before returning (synchronous=FULL)."""
        self._db.execute("PRAGMA synchronous=FULL")
        try:
            return self._db.execute(sql, args)
        finally:
            self._db.execute("PRAGMA synchronous=NORMAL")

    @staticmethod
    def _row_to_mapping(row: tuple[Any, ...]) -> Mapping:
        id_, added_ns, label, enabled, type_, match, pattern, override = row
        return Mapping.model_construct(id=id_, added_ns=added_ns, label=label, enabled=bool(enabled), type=type_,
                                       match=match, pattern=pattern, override=override, source="")

    def add_mapping(self, mapping: Mapping | None = None, **fields: Any) -> Mapping:
        """Store a new mapping (a Mapping, or its fields validated here: MappingError if bad); returns it with its id.

        The row is on disk (fsync'd) when this returns."""
        m = mapping if mapping is not None else Mapping.build(**fields)
        with self._lock:
            cur = self._durable(
                "INSERT INTO mappings (added_ns, label, enabled, type, match, pattern, override) VALUES (?,?,?,?,?,?,?)",
                (m.added_ns, m.label, int(m.enabled), m.type, m.match, m.pattern, m.override),
            )
        return m.model_copy(update={"id": cur.lastrowid, "source": ""})

    def mappings(self) -> list[Mapping]:
        """All stored mappings, enabled or not, in creation order."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, added_ns, label, enabled, type, match, pattern, override FROM mappings ORDER BY id"
            ).fetchall()
        return [self._row_to_mapping(r) for r in rows]

    def mapping(self, id: int) -> Mapping | None:
        with self._lock:
            row = self._db.execute(
                "SELECT id, added_ns, label, enabled, type, match, pattern, override FROM mappings WHERE id = ?", (id,)
            ).fetchone()
        return self._row_to_mapping(row) if row else None

    def update_mapping(self, id: int, **fields: Any) -> Mapping:
        """Change the given fields (label, enabled, type, match, pattern, override); the result is validated first.

        MappingError for an unknown id, an unknown field or an invalid result."""
        unknown = set(fields) - set(_MAPPING_COLUMNS)
        if unknown:
            raise MappingError(sorted(unknown)[0], "unknown field")
        current = self.mapping(id)
        if current is None:
            raise MappingError("id", f"no mapping with id {id}")
        merged = {k: getattr(current, k) for k in _MAPPING_COLUMNS} | fields
        new = Mapping.build(**merged, id=id, added_ns=current.added_ns)
        with self._lock:
            cur = self._durable(
                "UPDATE mappings SET label=?, enabled=?, type=?, match=?, pattern=?, override=? WHERE id=?",
                (new.label, int(new.enabled), new.type, new.match, new.pattern, new.override, id),
            )
        if cur.rowcount == 0:
            raise MappingError("id", f"no mapping with id {id}")
        return new

    def delete_mapping(self, id: int) -> None:
        """Delete a mapping; MappingError if there is none with this id."""
        with self._lock:
            cur = self._durable("DELETE FROM mappings WHERE id = ?", (id,))
        if cur.rowcount == 0:
            raise MappingError("id", f"no mapping with id {id}")

    # --- history ------------------------------------------------------------

    def add_history(self, token: Token, success: bool) -> None:
        """Record a launch (the token as launched, i.e. after mappings) and whether any core took it."""
        with self._lock:
            self._db.execute(
                "INSERT INTO history (scan_ns, type, uid, text, data, reader_id, source, success) VALUES (?,?,?,?,?,?,?,?)",
                (token.scan_ns, token.type, token.uid, token.text, token.data, token.reader_id, token.source,
                 int(success)),
            )

    def history(self, limit: int = 100) -> list[HistoryEntry]:
        """The latest launches, newest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT scan_ns, type, uid, text, data, reader_id, success, source FROM history"
                " ORDER BY id DESC LIMIT ?", (max(0, int(limit)),)
            ).fetchall()
        return [HistoryEntry(r[0], r[1], r[2], r[3], r[4], r[5], bool(r[6]), r[7]) for r in rows]

    # --- inbox --------------------------------------------------------------

    def add_inbox(self, text: str, category: str = "", severity: int = 0, body: str = "",
                  unique: bool = False) -> InboxMessage | None:
        """Add a message. ``unique=True`` skips it (returns None) when the same text+category is already there,
        so a flapping reader or a core that stays down does not flood the inbox."""
        now = time.time_ns()
        with self._lock:
            if unique and self._db.execute(
                "SELECT 1 FROM inbox WHERE text = ? AND category = ?", (text, category)
            ).fetchone():
                return None
            cur = self._db.execute(
                "INSERT INTO inbox (text, body, category, severity, created_ns) VALUES (?,?,?,?,?)",
                (text, body, category, int(severity), now),
            )
        assert cur.lastrowid is not None
        message = InboxMessage(cur.lastrowid, text, category, now, int(severity), body)
        if self.on_inbox is not None:
            try:
                self.on_inbox(message)
            except Exception:  # telling clients must not undo the message
                logging.getLogger(__name__).exception("announcing an inbox message failed")
        return message

    def inbox(self) -> list[InboxMessage]:
        """All messages, oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, text, category, created_ns, severity, body FROM inbox ORDER BY id"
            ).fetchall()
        return [InboxMessage(*r) for r in rows]

    def delete_inbox(self, id: int) -> bool:
        """Delete one message; False if there was none with this id."""
        with self._lock:
            return self._db.execute("DELETE FROM inbox WHERE id = ?", (id,)).rowcount > 0

    def clear_inbox(self) -> None:
        with self._lock:
            self._db.execute("DELETE FROM inbox")

    # --- paired API clients ----------------------------------------------------

    _CLIENT_COLUMNS = "client_id, name, auth_token, pairing_key, role, created_at, last_seen_at"

    def add_client(self, client: PairedClient) -> None:
        with self._lock:
            self._durable(f"INSERT INTO clients ({self._CLIENT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
                          (client.client_id, client.name, client.auth_token, client.pairing_key, client.role,
                           client.created_at, client.last_seen_at))

    def count_clients(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT count(*) FROM clients").fetchone()[0])

    def clients(self) -> list[PairedClient]:
        with self._lock:
            rows = self._db.execute(f"SELECT {self._CLIENT_COLUMNS} FROM clients ORDER BY created_at, rowid").fetchall()
        return [PairedClient(r[0], r[1], r[2], bytes(r[3]), r[4], r[5], r[6]) for r in rows]

    def client_by_token(self, auth_token: str) -> PairedClient | None:
        with self._lock:
            r = self._db.execute(f"SELECT {self._CLIENT_COLUMNS} FROM clients WHERE auth_token = ?",
                                 (auth_token,)).fetchone()
        return None if r is None else PairedClient(r[0], r[1], r[2], bytes(r[3]), r[4], r[5], r[6])

    def touch_client(self, auth_token: str) -> None:
        with self._lock:
            self._db.execute("UPDATE clients SET last_seen_at = ? WHERE auth_token = ?", (int(time.time()), auth_token))

    def delete_client(self, client_id: str) -> bool:
        with self._lock:
            return self._durable("DELETE FROM clients WHERE client_id = ?", (client_id,)).rowcount > 0
