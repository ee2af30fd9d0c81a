"""The files tagd installs into the system (udev rules, modprobe blacklist, systemd unit) and where they go.

Found in the source checkout's ``udev/`` or, for an installed package, where the wheel's data files went
(``share/tagd/udev`` under the venv, ``/usr/local``, or ``~/.local`` for ``pip install --user``): the
installed distribution's file list says where, so every install scheme is covered without guessing.
The systemd unit is optional (installed when shipped). udev is reloaded and the tty/usb devices
re-triggered only when installing into the running system (``root`` is ``/``): a ``--root`` install
prepares an image or a test tree, whose udev is not ours to poke.
"""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
from pathlib import Path
from typing import Callable

FILES = {
    "60-tagd.rules": "etc/udev/rules.d/60-tagd.rules",
    "blacklist-tagd-pn533.conf": "etc/modprobe.d/blacklist-tagd-pn533.conf",
    "tagd.service": "etc/systemd/system/tagd.service",
}
REQUIRED = ("60-tagd.rules", "blacklist-tagd-pn533.conf")
CHECKOUT = Path(__file__).resolve().parent.parent / "udev"
RELOAD = (["udevadm", "control", "--reload"],
          ["udevadm", "trigger", "--subsystem-match=tty", "--subsystem-match=usb"])


def _installed_dirs() -> list[Path]:
    """Where pip put the data files of the installed ``tagd`` distribution (none for a plain checkout)."""
    from importlib import metadata

    try:
        files = metadata.files("tagd") or []
    except metadata.PackageNotFoundError:
        return []
    return [Path(str(f.locate())).resolve().parent for f in files if f.name == REQUIRED[0] and "udev" in f.parts]


def candidate_dirs() -> list[Path]:
    """The checkout first (a developer's edits win), then the installed data files, then the usual prefixes."""
    share = Path("share") / "tagd" / "udev"
    return ([CHECKOUT] + _installed_dirs()
            + [Path(sys.prefix) / share, Path(site.USER_BASE or "~/.local").expanduser() / share])


def source_dir() -> Path:
    for candidate in candidate_dirs():
        if all((candidate / name).is_file() for name in REQUIRED):
            return candidate
    raise FileNotFoundError("tagd's udev files are missing (looked in " + ", ".join(map(str, candidate_dirs())) + ")")


def install(root: str = "/", dry_run: bool = False, out: Callable[[str], None] = print,
            reload: bool | None = None, run: Callable[..., object] = subprocess.run,
            which: Callable[[str], str | None] = shutil.which) -> int:
    """Copy the files under ``root``; then reload udev (by default only when ``root`` is ``/``)."""
    src = source_dir()
    for name, dest in FILES.items():
        if not (src / name).is_file():
            out(f"skip {name}: not shipped with this tagd")
            continue
        target = Path(root) / dest
        out(f"{'would install' if dry_run else 'install'} {src / name} -> {target}")
        if not dry_run:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src / name, target)
            os.chmod(target, 0o644)
    if reload is None:
        reload = os.path.abspath(root) == "/"
    if dry_run or not reload:
        return 0
    if not which("udevadm"):
        out("udevadm not found: re-plug the reader (or reboot) for the rules to apply")
        return 0
    for argv in RELOAD:
        run(list(argv), check=False)
    out("udev rules reloaded; re-plug the reader (and reboot once if the pn533 modules were loaded)")
    return 0
