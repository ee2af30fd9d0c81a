"""The files tagd installs into the system (udev rules, modprobe blacklist, systemd unit) and where they go.

Found in the source checkout's ``udev/`` or, for an installed package, in ``<prefix>/share/tagd/udev``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

FILES = {
    "60-tagd.rules": "etc/udev/rules.d/60-tagd.rules",
    "blacklist-tagd-pn533.conf": "etc/modprobe.d/blacklist-tagd-pn533.conf",
    "tagd.service": "etc/systemd/system/tagd.service",
}


def source_dir() -> Path:
    for candidate in (Path(__file__).resolve().parent.parent / "udev", Path(sys.prefix) / "share" / "tagd" / "udev"):
        if (candidate / "60-tagd.rules").is_file():
            return candidate
    raise FileNotFoundError("tagd's udev files are missing (expected udev/ in the source or share/tagd/udev)")


def install(root: str = "/", dry_run: bool = False, out=print) -> int:
    """Copy the files under ``root``; then reload udev when installing into the real system."""
    src = source_dir()
    for name, dest in FILES.items():
        target = Path(root) / dest
        out(f"{'would install' if dry_run else 'install'} {src / name} -> {target}")
        if not dry_run:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src / name, target)
            os.chmod(target, 0o644)
    if not dry_run and os.path.abspath(root) == "/" and shutil.which("udevadm"):
        for argv in (["udevadm", "control", "--reload"], ["udevadm", "trigger", "--subsystem-match=tty",
                                                         "--subsystem-match=usb"]):
            subprocess.run(argv, check=False)
        out("udev rules reloaded; re-plug the reader (and reboot once if the pn533 modules were loaded)")
    return 0
