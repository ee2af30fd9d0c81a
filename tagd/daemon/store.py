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

Errors say what really happened (:func:`explain`): a database another program holds locked, a read-only file
system, a full disk and a damaged file are four different messages, because their remedies differ — only the last
one is "move it away", which for the others would throw every mapping away for nothing. Every method raises
:class:`StoreError` (never a bare ``sqlite3`` error), so callers report one clear line instead of a traceback.

Bounds: history keeps a launch's text and data up to :data:`HISTORY_TEXT_MAX` / :data:`HISTORY_DATA_MAX`
(longer ones are cut and end in ``…``): the biggest tag tagd reads fits in full, and a page of history stays small
whatever was sent to ``run``.
"""

from __future__ import annotations

import errno
import logging
import os
import sqlite3
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

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

HISTORY_TEXT_MAX = 4096  # bytes of UTF-8 kept of a launch's text (an NTAG216 holds 868; a Classic 4K ~3,300)
HISTORY_DATA_MAX = 8192  # hex digits kept of its data: a whole MIFARE Classic 4K memory
TRUNCATED = "…"

_MAPPING_COLUMNS = ("label", "enabled", "type", "match", "pattern", "override")
_SELECT_MAPPING = "id, added_ns, label, enabled, type, match, pattern, override"  # _row_to_mapping's order


class StoreError(Exception):
    """The database file cannot be used, or a statement failed; the message names the file and why."""


def explain(exc: BaseException, path: Path) -> str:
    """What an SQLite (or OS) error means for the user, with the remedy that fits it."""
    if isinstance(exc, OSError):
        if exc.errno == errno.EROFS:
            return f"{path}: the file system holding it is read-only ({exc.strerror})"
        return f"{path}: {exc.strerror or exc}"
    name = getattr(exc, "sqlite_errorname", "") or ""
    text = str(exc)
    if name.startswith("SQLITE_BUSY") or name.startswith("SQLITE_LOCKED") or "locked" in text:
        return (f"{path}: the database is locked by another program (is another tagd running with it?); "
                "stop that program, or give this tagd another database")
    if name.startswith("SQLITE_FULL") or "disk is full" in text:
        return f"{path}: the disk is full; free some space"
    if name.startswith("SQLITE_READONLY") or name.startswith("SQLITE_CANTOPEN") or name.startswith("SQLITE_IOERR"):
        return f"{path}: {_why_not_writable(path) or text}"
    if name in ("SQLITE_NOTADB", "SQLITE_CORRUPT") or "not a database" in text or "malformed" in text:
        return f"{path}: not a usable tagd database ({text}); move it away to start afresh"
    return f"{path}: {text}"


def _why_not_writable(path: Path) -> str:
    """The OS's reason a database file or its directory (where the WAL files go) cannot be written, if any."""
    for target in (path.parent, path):
        try:
            if os.statvfs(target).f_flag & os.ST_RDONLY:
                return f"the file system holding it is read-only ({os.strerror(errno.EROFS)})"
        except OSError:
            continue
    for target, mode in ((path.parent, os.W_OK | os.X_OK), (path, os.R_OK | os.W_OK)):
        if target.exists() and not os.access(target, mode):
            return f"{target}: {os.strerror(errno.EACCES)}"
    return ""


def _clip(text: str, max_bytes: int) -> str:
    """``text`` cut to at most ``max_bytes`` of UTF-8 (on a character boundary), ending in … when cut."""
    raw = text.encode("utf-8", "surrogatepass")
    if len(raw) <= max_bytes:
        return text
    keep = max_bytes - len(TRUNCATED.encode())
    return raw[:keep].decode("utf-8", "ignore") + TRUNCATED


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
    id: int = 0  # the row id: tokens.history's paging cursor

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


def _make_parent(path: Path) -> None:
    """Create the database's directory; an error names the part of the path that is in the way."""
    for parent in reversed(path.parents):
        if parent.exists() and not parent.is_dir():
            raise NotADirectoryError(errno.ENOTDIR, f"{parent} is a file, not a directory")
    path.parent.mkdir(parents=True, exist_ok=True)


class Store:
    timeout = 5.0  # seconds to wait for another connection's lock before "the database is locked"

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        # called with each new inbox message, outside the lock (the daemon sends it to clients as inbox.added)
        self.on_inbox: Callable[[InboxMessage], None] | None = None
        try:
            _make_parent(self.path)
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=self.timeout)
            self._owner_only()
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot open the database: {explain(exc, self.path)}") from None
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            check = self._db.execute("PRAGMA quick_check").fetchone()[0]
            if check != "ok":
                raise StoreError(f"{self.path}: the database is damaged ({check}); move it away to start afresh")
            self._migrate()
            self._owner_only()
            self._db.execute("DELETE FROM history WHERE scan_ns < ?", (time.time_ns() - HISTORY_KEEP_NS,))
        except sqlite3.Error as exc:
            self._db.close()
            raise StoreError(explain(exc, self.path)) from None
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

    @contextmanager
    def _locked(self, failed: str) -> Iterator[sqlite3.Connection]:
        """The connection, under the lock; an SQLite error becomes a StoreError saying ``failed`` and why."""
        with self._lock:
            try:
                yield self._db
            except sqlite3.Error as exc:
                raise StoreError(f"{failed}: {explain(exc, self.path)}") from None

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
        with self._locked("mapping not saved"):
            cur = self._durable(
                "INSERT INTO mappings (added_ns, label, enabled, type, match, pattern, override) VALUES (?,?,?,?,?,?,?)",
                (m.added_ns, m.label, int(m.enabled), m.type, m.match, m.pattern, m.override),
            )
        return m.model_copy(update={"id": cur.lastrowid, "source": ""})

    def mappings(self) -> list[Mapping]:
        """All stored mappings, enabled or not, in creation order."""
        with self._locked("cannot read the mappings") as db:
            rows = db.execute(f"SELECT {_SELECT_MAPPING} FROM mappings ORDER BY id").fetchall()
        return [self._row_to_mapping(r) for r in rows]

    def mapping(self, id: int) -> Mapping | None:
        with self._locked("cannot read the mapping") as db:
            row = db.execute(f"SELECT {_SELECT_MAPPING} FROM mappings WHERE id = ?", (id,)).fetchone()
        return self._row_to_mapping(row) if row else None

    def update_mapping(self, id: int, **fields: Any) -> Mapping:
        """Change the given fields (label, enabled, type, match, pattern, override); the result is validated first.

        MappingError for an unknown id, an unknown field or an invalid result."""
        unknown = set(fields) - set(_MAPPING_COLUMNS)
        if unknown:
            raise MappingError(sorted(unknown)[0], "unknown field")
        # Read, merge and write under one hold of the lock: two updates of different fields of one mapping at once
        # each merged into the row as it was before either, and the second write undid the first.
        with self._locked("mapping not saved") as db:
            row = db.execute(f"SELECT {_SELECT_MAPPING} FROM mappings WHERE id = ?", (id,)).fetchone()
            if row is None:
                raise MappingError("id", f"no mapping with id {id}")
            current = self._row_to_mapping(row)
            merged = {k: getattr(current, k) for k in _MAPPING_COLUMNS} | fields
            new = Mapping.build(**merged, id=id, added_ns=current.added_ns)
            self._durable("UPDATE mappings SET label=?, enabled=?, type=?, match=?, pattern=?, override=? WHERE id=?",
                          (new.label, int(new.enabled), new.type, new.match, new.pattern, new.override, id))
        return new

    def delete_mapping(self, id: int) -> None:
        """Delete a mapping; MappingError if there is none with this id."""
        with self._locked("mapping not deleted"):
            cur = self._durable("DELETE FROM mappings WHERE id = ?", (id,))
        if cur.rowcount == 0:
            raise MappingError("id", f"no mapping with id {id}")

    # --- history ------------------------------------------------------------

    def add_history(self, token: Token, success: bool) -> None:
        """Record a launch (the token as launched, i.e. after mappings) and whether any core took it.

        Text and data are kept up to HISTORY_TEXT_MAX bytes / HISTORY_DATA_MAX digits."""
        with self._locked("launch not recorded in history") as db:
            db.execute(
                "INSERT INTO history (scan_ns, type, uid, text, data, reader_id, source, success) VALUES (?,?,?,?,?,?,?,?)",
                (token.scan_ns, _clip(token.type, 64), _clip(token.uid, 64), _clip(token.text, HISTORY_TEXT_MAX),
                 _clip(token.data, HISTORY_DATA_MAX), token.reader_id, _clip(token.source, 256), int(success)),
            )

    def history(self, limit: int = 100, before: int | None = None) -> list[HistoryEntry]:
        """The latest launches, newest first; ``before`` (a row id) pages on from an earlier answer."""
        with self._locked("cannot read the history") as db:
            rows = db.execute(
                "SELECT scan_ns, type, uid, text, data, reader_id, success, source, id FROM history"
                " WHERE id < ? ORDER BY id DESC LIMIT ?", (2**63 - 1 if before is None else before, max(0, int(limit)))
            ).fetchall()
        return [HistoryEntry(r[0], r[1], r[2], r[3], r[4], r[5], bool(r[6]), r[7], r[8]) for r in rows]

    def prune_history(self, days: int, now_ns: int | None = None) -> int:
        """Forget launches older than ``days`` days (Core's ``[readers] scan_history``); 0 keeps all. The count."""
        if days <= 0:
            return 0
        cutoff = (time.time_ns() if now_ns is None else now_ns) - days * 86_400 * 1_000_000_000
        with self._locked("old history not pruned"):
            return self._durable("DELETE FROM history WHERE scan_ns < ?", (cutoff,)).rowcount

    # --- inbox --------------------------------------------------------------

    def add_inbox(self, text: str, category: str = "", severity: int = 0, body: str = "",
                  unique: bool = False) -> InboxMessage | None:
        """Add a message. ``unique=True`` skips it (returns None) when the same text+category is already there,
        so a flapping reader or a core that stays down does not flood the inbox."""
        now = time.time_ns()
        with self._locked("inbox message not saved") as db:
            if unique and db.execute(
                "SELECT 1 FROM inbox WHERE text = ? AND category = ?", (text, category)
            ).fetchone():
                return None
            cur = db.execute(
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
        with self._locked("cannot read the inbox") as db:
            rows = db.execute(
                "SELECT id, text, category, created_ns, severity, body FROM inbox ORDER BY id"
            ).fetchall()
        return [InboxMessage(*r) for r in rows]

    def delete_inbox(self, id: int) -> bool:
        """Delete one message; False if there was none with this id."""
        with self._locked("inbox message not deleted") as db:
            return db.execute("DELETE FROM inbox WHERE id = ?", (id,)).rowcount > 0

    def clear_inbox(self) -> None:
        with self._locked("inbox not cleared") as db:
            db.execute("DELETE FROM inbox")


    # --- paired API clients ----------------------------------------------------

    _CLIENT_COLUMNS = "client_id, name, auth_token, pairing_key, role, created_at, last_seen_at"

    def add_client(self, client: PairedClient) -> None:
        with self._locked("paired client not saved"):
            self._durable(f"INSERT INTO clients ({self._CLIENT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
                          (client.client_id, client.name, client.auth_token, client.pairing_key, client.role,
                           client.created_at, client.last_seen_at))

    def count_clients(self) -> int:
        with self._locked("cannot read the paired clients"):
            return int(self._db.execute("SELECT count(*) FROM clients").fetchone()[0])

    def clients(self) -> list[PairedClient]:
        with self._locked("cannot read the paired clients"):
            rows = self._db.execute(f"SELECT {self._CLIENT_COLUMNS} FROM clients ORDER BY created_at, rowid").fetchall()
        return [PairedClient(r[0], r[1], r[2], bytes(r[3]), r[4], r[5], r[6]) for r in rows]

    def client_by_token(self, auth_token: str) -> PairedClient | None:
        with self._locked("cannot read the paired clients"):
            r = self._db.execute(f"SELECT {self._CLIENT_COLUMNS} FROM clients WHERE auth_token = ?",
                                 (auth_token,)).fetchone()
        return None if r is None else PairedClient(r[0], r[1], r[2], bytes(r[3]), r[4], r[5], r[6])

    def touch_client(self, auth_token: str) -> None:
        with self._locked("paired client not updated"):
            self._db.execute("UPDATE clients SET last_seen_at = ? WHERE auth_token = ?", (int(time.time()), auth_token))

    def delete_client(self, client_id: str) -> bool:
        with self._locked("paired client not deleted"):
            return self._durable("DELETE FROM clients WHERE client_id = ?", (client_id,)).rowcount > 0
