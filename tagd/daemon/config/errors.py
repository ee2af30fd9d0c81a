"""ConfigError, and how pydantic's validation errors become its key path (``core[1].url``) and reason.

Every config problem — at load, in ``settings.update``, in a reader option — reaches the user as one
``FILE: KEY: REASON`` line, so the translation lives here once.
"""

from __future__ import annotations

import os
from typing import Any

class ConfigError(ValueError):
    """A bad configuration: ``str()`` is ``FILE: KEY: REASON``."""

    def __init__(self, file: str | os.PathLike[str], key: str, reason: str) -> None:
        self.file = str(file)
        self.key = key
        self.reason = reason
        super().__init__(f"{self.file}: {key}: {reason}")


# the [[core]] types (schema.CoreConfig's discriminator values): the tag pydantic adds to an error's location
CORE_TYPES = ("zaparoo", "mqtt", "exec", "webhook", "stdout")


def key_path(loc: tuple[Any, ...]) -> str:
    """Pydantic's error location as a config key: ``("core", 1, "zaparoo", "url")`` → ``core[1].url``."""
    out = ""
    parts = list(loc)
    for i, part in enumerate(parts):
        if isinstance(part, int):
            out += f"[{part}]"
            continue
        # the discriminated union adds the tag ("zaparoo") after the list index: not a key the user wrote
        if i >= 2 and parts[i - 2] == "core" and isinstance(parts[i - 1], int) and part in CORE_TYPES:
            continue
        out += f".{part}" if out else str(part)
    return out


def reason_of(err: dict[str, Any]) -> str:
    if err["type"] == "extra_forbidden":
        return "unknown key"
    if err["type"] == "missing":
        return "required key is missing"
    if err["type"] == "union_tag_invalid":
        return f"must be one of {', '.join(CORE_TYPES)}, not {err.get('ctx', {}).get('tag')!r}"
    if err["type"] == "union_tag_not_found":
        return f"required key is missing (one of {', '.join(CORE_TYPES)})"
    if err["type"] == "bool_type":
        return f"must be a boolean, true or false, not {err.get('input')!r}"
    if err["type"] in ("float_type", "int_type"):
        what = "a whole number" if err["type"] == "int_type" else "a number"
        return f"must be {what}, not {err.get('input')!r}"
    return err["msg"].removeprefix("Value error, ")
