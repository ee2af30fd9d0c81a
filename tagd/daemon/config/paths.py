"""Where tagd keeps its files by default, by the XDG Base Directory rules (tagd runs on Linux).

``$XDG_CONFIG_HOME`` / ``$XDG_DATA_HOME`` when set to an absolute path (the spec says a relative one is to be
ignored), else ``~/.config`` / ``~/.local/share``; tagd's own directory inside.
"""

from __future__ import annotations

import os
from pathlib import Path


def _xdg(variable: str, fallback: str) -> Path:
    value = os.environ.get(variable, "")
    base = Path(value) if value and os.path.isabs(value) else Path.home() / fallback
    return base / "tagd"


def user_config_dir() -> Path:
    return _xdg("XDG_CONFIG_HOME", ".config")


def user_data_dir() -> Path:
    return _xdg("XDG_DATA_HOME", ".local/share")
