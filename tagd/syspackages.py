"""The Debian packages tagd uses, read from ``system-packages.txt`` beside this module.

That text file is the one list: ``scripts/test`` reads it with plain shell (before any virtual environment
exists) to install what the tests need, and `tagd doctor` builds its "apt install" fixes from it, so the
two can never name different packages.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

LIST = Path(__file__).with_name("system-packages.txt")


@dataclass(frozen=True)
class SystemPackage:
    name: str
    purpose: str  # pcsc | build | test
    why: str


def packages(text: str | None = None) -> list[SystemPackage]:
    """Every package of the list (``text`` for tests; the shipped file otherwise)."""
    out = []
    for line in (LIST.read_text() if text is None else text).splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, purpose, why = (line.split(None, 2) + ["", ""])[:3]
        out.append(SystemPackage(name, purpose, why))
    return out


def names(*purposes: str) -> list[str]:
    """The packages for these purposes, in the list's order."""
    return [p.name for p in packages() if p.purpose in purposes]


def apt_install(*purposes: str) -> str:
    """The command a person types to install the packages for these purposes."""
    return "sudo apt install " + " ".join(names(*purposes))


def missing(wanted: list[str]) -> list[str]:
    """Those of ``wanted`` that dpkg does not list as installed ([] where there is no dpkg: not Debian)."""
    if shutil.which("dpkg-query") is None:
        return []
    out = []
    for name in wanted:
        r = subprocess.run(["dpkg-query", "-W", "-f=${Status}", name], capture_output=True, text=True)
        if r.returncode != 0 or "install ok installed" not in r.stdout:
            out.append(name)
    return out
