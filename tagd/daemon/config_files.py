"""What a reload reads: the config file and the mapping files, read whole before anything is applied.

A reload (SIGHUP, ``settings.reload``, ``mappings.reload``) is all or nothing. :func:`read_files` reads the config
file and every mapping file into a :class:`ConfigFiles` first; only when that succeeded does the daemon apply it, so a
problem found while reading leaves the running config, readers, cores and mappings exactly as they were.

What counts as a problem, and why:

- the config file was there (at start, or written by ``settings.update``) and now is missing, unreadable, empty or
  not valid TOML: a file being replaced by an editor or a deploy script is not "use every default" — reading it so
  once closed the reader, dropped every core, turned auto-detection on and cleared the API keys;
- nesting deep enough to exhaust the parser's stack (~500 ``[``) is a config error, not a RecursionError;
- a broken mapping file is *not* a reason to refuse: it is skipped and named (``problems``), as at start, so one
  bad file costs only its own mappings.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from tagd.daemon.config import Config, ConfigError, load_config, parse_config
from tagd.daemon.mappings import Mapping, MappingError, MappingTable, load_mapping_file, mapping_files, mappings_dir_for


@dataclass(frozen=True)
class ConfigFiles:
    config: Config
    file_mappings: list[Mapping] = field(default_factory=list)  # config entries, then mapping files in path order
    problems: list[str] = field(default_factory=list)  # the mapping files skipped, each with why


def read_file_mappings(config: Config, config_path: str | os.PathLike[str]) -> tuple[list[Mapping], list[str]]:
    """The config's entries, then each mapping file in path order. A broken file is skipped and named in the
    problems (the others still load); the config's entries were checked when the config loaded."""
    problems: list[str] = []
    try:
        out = MappingTable.from_config(config.mappings.entry, str(config_path))
    except MappingError as exc:  # a Config built in code, not by load_config
        out, problems = [], [str(exc)]
    for file in mapping_files(mappings_dir_for(config_path)):
        try:
            out.extend(load_mapping_file(file))
        except MappingError as exc:
            problems.append(str(exc))
    return out, problems


def read_files(config_path: str | os.PathLike[str], existed: bool) -> ConfigFiles:
    """Everything a reload applies, or ConfigError naming the file and why (then nothing is to change).

    ``existed``: the config file was there before; then it must still be, and hold something. Blocking: call it
    from a thread."""
    path = Path(config_path)
    if not existed:
        config = load_config(path)  # never had one: all defaults, unless it has appeared
    else:
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ConfigError(path, "(file)", "the config file is gone (moved, deleted, or being replaced)") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(path, "(file)", f"cannot read: {exc}") from None
        if not text.strip():
            raise ConfigError(path, "(file)", "the config file is empty (half-written?)")
        config = parse_config(text, path)
    try:
        file_mappings, problems = read_file_mappings(config, path)
    except RecursionError:  # a mapping file's own nesting is caught per file; anything else must not half-apply
        raise ConfigError(path, "(mappings)", "nested too deeply to read") from None
    return ConfigFiles(config, file_mappings, problems)
