"""Reading the config file: the default path, TOML parsing, validation into :class:`Config`, and the checks
that need the whole file (reader options per driver, mapping entries that must build).

A missing config file means all defaults, unless the user named it (``tagd run --config FILE``): then it is an
error. The default path is ``$XDG_CONFIG_HOME/tagd/config.toml`` (``~/.config/tagd/config.toml``), or ``/etc/tagd/config.toml``
when running as root and that file exists.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from pydantic import ValidationError

from tagd.daemon.config import paths
from tagd.daemon.config.checks import READER_OPTIONS
from tagd.daemon.config.errors import ConfigError, key_path, reason_of
from tagd.daemon.config.schema import Config

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

SYSTEM_CONFIG = Path("/etc/tagd/config.toml")


def default_config_path() -> Path:
    """``/etc/tagd/config.toml`` for root when it exists, else the user's config dir."""
    if hasattr(os, "geteuid") and os.geteuid() == 0 and SYSTEM_CONFIG.exists():
        return SYSTEM_CONFIG
    return paths.user_config_dir() / "config.toml"


def parse_config(text: str, file: str | os.PathLike[str] = "<config>") -> Config:
    """Validate TOML text; ConfigError on any problem (the first one; the rest are counted in the reason)."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        m = re.search(r"line (\d+)", str(exc))
        raise ConfigError(file, f"line {m.group(1)}" if m else "(syntax)", f"invalid TOML: {exc}") from None
    except RecursionError:  # tomllib recurses per level: ~500 nested [ or { exhaust the stack
        raise ConfigError(file, "(syntax)", "invalid TOML: arrays or tables nested too deeply") from None
    try:
        config = Config.model_validate(raw)
    except ValidationError as exc:
        errors = exc.errors()
        first = errors[0]
        for e in errors:  # a bad or missing core type is reported at the key the user must fix
            if e["type"] in ("union_tag_invalid", "union_tag_not_found"):
                e["loc"] = (*e["loc"], "type")
        reason = reason_of(first)
        if len(errors) > 1:
            others = "; ".join(f"{key_path(e['loc'])}: {reason_of(e)}" for e in errors[1:4])
            reason += f" (and {len(errors) - 1} more: {others})"
        raise ConfigError(file, key_path(first["loc"]) or "(top)", reason) from None
    if not config.database.is_absolute():  # relative to the config file, so the file means the same from any cwd
        base = Path(file).parent if not str(file).startswith("<") else Path.cwd()
        config.database = (base / config.database).resolve()
    _check_reader_options(config, file)
    _check_mapping_entries(config, file)
    return config


_ENTRY_KEYS = {"pattern": "match_pattern", "override": "zapscript", "type": "token_key"}  # Mapping field → file key


def _check_mapping_entries(config: Config, file: str | os.PathLike[str]) -> None:
    """Each ``[[mappings.entry]]`` must build: a regex RE2 refuses is a config error at load, not a crash at start."""
    if not config.mappings.entry:
        return
    from tagd.daemon.mappings import MappingError, MappingTable

    for i, entry in enumerate(config.mappings.entry):
        try:
            MappingTable.from_config([entry])
        except MappingError as exc:
            field = exc.field.rpartition(": ")[2]
            raise ConfigError(file, f"mappings.entry[{i}].{_ENTRY_KEYS.get(field, field)}", exc.reason) from None


def _check_reader_options(config: Config, file: str | os.PathLike[str]) -> None:
    for driver, options in config.readers.options.items():
        where = f"readers.options.{driver}"
        schema = READER_OPTIONS.get(driver)
        if schema is None:
            raise ConfigError(file, where, f"no reader driver takes options by this name "
                                           f"(one of {', '.join(sorted(READER_OPTIONS))})")
        for key, value in options.items():
            check = schema.get(key)
            if check is None:
                known = ", ".join(sorted(schema)) or "none"
                raise ConfigError(file, f"{where}.{key}", f"unknown key (the {driver} driver's options: {known})")
            try:
                check(value)
            except ValueError as exc:
                raise ConfigError(file, f"{where}.{key}", str(exc)) from None


def load_config(path: str | os.PathLike[str] | None = None, required: bool = False) -> Config:
    """Load and validate the config file (default path when None). A missing file gives all defaults, unless
    ``required`` (a file the user named, ``tagd run --config FILE``): then it is a ConfigError."""
    file = Path(path) if path is not None else default_config_path()
    if "\x00" in str(file):
        raise ConfigError(str(file).replace("\x00", "\\u0000"), "(file)", "the path contains a NUL character")
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        if required:
            raise ConfigError(file, "(file)", "config file not found") from None
        return Config()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(file, "(file)", f"cannot read: {exc}") from None
    return parse_config(text, file)
