"""Where tokens live: one JSON file per service in ``credentials/`` next to the database, mode 0600 (dir 0700).

Written atomically (a temp file created 0600, fsync, rename) so a crash leaves the old credentials or the new
ones — this matters for RomM's single-use refresh tokens, which must be on disk before they are used. Nothing
here logs a value; :func:`redacted` gives the non-secret view the API and the CLI show.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

SERVICES = ("retroshelf", "romm", "playren")
SECRET_KEYS = frozenset({"access_token", "refresh_token", "token", "key", "device_code", "password"})


class CredentialsError(Exception):
    pass


def credentials_dir(database: str | os.PathLike[str]) -> Path:
    return Path(database).parent / "credentials"


class Credentials:
    """The credential files of one tagd (``directory`` = :func:`credentials_dir` of its database)."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.dir = Path(directory)

    def path(self, service: str) -> Path:
        if service not in SERVICES:
            raise CredentialsError(f"unknown service {service!r} (one of {', '.join(SERVICES)})")
        return self.dir / f"{service}.json"

    def load(self, service: str) -> dict[str, Any] | None:
        """The stored record, or None if not linked. A broken file is an error naming it (never its content)."""
        path = self.path(service)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise CredentialsError(f"{path}: cannot read: {exc.strerror}") from None
        try:
            data = json.loads(text)
        except ValueError:
            raise CredentialsError(f"{path}: not valid JSON; run tagd unlink {service} and link again") from None
        if not isinstance(data, dict):
            raise CredentialsError(f"{path}: not a JSON object; run tagd unlink {service} and link again")
        return data

    def mtime(self, service: str) -> float | None:
        try:
            return self.path(service).stat().st_mtime_ns / 1e9
        except OSError:
            return None

    def save(self, service: str, data: dict[str, Any]) -> Path:
        path = self.path(service)
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.dir, 0o700)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(data, fh, indent=1, sort_keys=True)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return path

    def update(self, service: str, **changes: Any) -> dict[str, Any]:
        data = self.load(service) or {}
        data.update(changes)
        self.save(service, data)
        return data

    def delete(self, service: str) -> bool:
        try:
            self.path(service).unlink()
            return True
        except FileNotFoundError:
            return False


def redacted(data: dict[str, Any] | None) -> dict[str, Any]:
    """A record without its secrets (their presence shown as ``True``)."""
    if not data:
        return {}
    return {k: (True if k in SECRET_KEYS and v else v) for k, v in data.items() if k not in SECRET_KEYS or v}
