"""Writing ``settings.update`` changes to the config file, as Zaparoo Core does, atomically (temp file + rename).

The file as it is on disk is edited in place with tomlkit, so comments, layout and edits not yet reloaded
stay; a file that does not exist yet, or one tomlkit cannot edit in place, is written whole (also by tomlkit).
Settings are never kept in the database, so the file is the one source of truth and ``settings.reload``
means what it says. tomlkit is imported only here, on the first write: a daemon that never writes its config
does not load it.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Iterable

from tagd.daemon.config.errors import ConfigError
from tagd.daemon.config.loading import parse_config
from tagd.daemon.config.schema import Config, ReaderConnect
from tagd.daemon.config.settings import SETTINGS_KEYS

log = logging.getLogger(__name__)


def config_text(config: Config) -> str:
    """The whole config as TOML, its non-default values only."""
    import tomlkit

    return tomlkit.dumps(config.model_dump(mode="json", exclude_defaults=True, exclude_none=True))


def _write_atomically(file: Path, text: str) -> None:
    """Temp file in the same directory, fsync, rename: a crash leaves the old file or the new one, never half."""
    import tempfile  # only settings.update writes the config: not loaded at start

    try:
        file.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".config-", suffix=".toml", dir=file.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, file)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise ConfigError(file, "(file)", f"cannot write: {exc}") from None


def save_config(config: Config, path: str | os.PathLike[str]) -> None:
    """Write the whole config as TOML (non-default values only). ConfigError if it cannot."""
    _write_atomically(Path(path), config_text(config))


def _connect_entry(entry: dict[str, Any]) -> dict[str, Any]:
    defaults = ReaderConnect.model_fields
    return {k: v for k, v in entry.items() if k in ("driver", "path") or v != defaults[k].default}


def _edit_settings(text: str, wanted: Config, keys: Iterable[str]) -> str:
    """``text`` with only the settings ``keys`` set to their values in ``wanted``: comments and layout stay."""
    import tomlkit  # only settings.update edits the file

    doc = tomlkit.parse(text)
    values = wanted.model_dump(mode="json")
    for key in keys:
        if key not in SETTINGS_KEYS:
            continue  # a fixed setting, sent unchanged
        *parents, leaf = SETTINGS_KEYS[key]
        table: Any = doc
        source: Any = values
        for name in parents:
            if name not in table:
                table[name] = tomlkit.table(is_super_table=True)
            table, source = table[name], source[name]
        value = source[leaf]
        if leaf == "connect":
            entries = [_connect_entry(c) for c in value]
            if isinstance(table.get(leaf), tomlkit.items.Array) or not entries:
                array = tomlkit.array()
                for c in entries:
                    inline = tomlkit.inline_table()
                    inline.update(c)
                    array.append(inline)
                value = array
            else:
                value = tomlkit.aot()
                for c in entries:
                    value.append(tomlkit.item(c))
        table[leaf] = value
    return tomlkit.dumps(doc)


def update_settings(config: Config, update: dict[str, Any], path: str | os.PathLike[str]) -> Config:
    """``settings.update``: the running config with the Zaparoo keys applied (returned), and the same keys changed
    in the file as it is on disk now — its comments, its layout and any edit made since the last reload are kept.
    A file with an error is not overwritten: ConfigError naming it, and nothing changes."""
    new = config.with_settings(update)
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        save_config(new, file)
        return new
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(file, "(file)", f"cannot read: {exc}") from None
    try:
        wanted = parse_config(text, file).with_settings(update)
    except ConfigError as exc:
        raise ConfigError(exc.file, exc.key, f"{exc.reason} (fix the file: settings.update did not write it)") from None
    edited = None
    try:
        edited = _edit_settings(text, wanted, update)
        if parse_config(edited, file) != wanted:
            edited = None
    except Exception as exc:  # tomlkit could not place a value: write the whole file instead
        log.debug("editing %s in place failed: %s", file, exc)
        edited = None
    if edited is None:
        log.warning("%s: rewritten whole (its comments are lost): the settings could not be edited in place", file)
        edited = config_text(wanted)
    _write_atomically(file, edited)
    return new
