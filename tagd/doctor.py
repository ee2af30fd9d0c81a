"""`tagd doctor`: find what stops a reader from working, and say how to fix it.

Every check reads the system through a :class:`System` (a root prefix plus a few probes), so the tests
run the same checks against a fake root filesystem. Each check gives ok/FAIL, what it saw and the fix.
"""

from __future__ import annotations

import getpass
import glob
import grp
import os
import socket
import stat as statmod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable
from urllib.parse import urlparse

SERIAL_GLOBS = ("dev/ttyUSB*", "dev/ttyACM*", "dev/tagd-pn532*")
KERNEL_NFC_MODULES = ("pn533_usb", "pn533", "nfc")


@dataclass
class Result:
    name: str
    ok: bool
    detail: str
    fix: str = ""


def _port_in_use(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return True
    return False


def _reachable(host: str, port: int) -> str | None:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return None
    except OSError as exc:
        return exc.strerror or str(exc)


def _pyscard_ok() -> str | None:
    try:
        import smartcard.scard  # noqa: F401
    except Exception as exc:  # ImportError, or a broken build
        return str(exc)
    return None


@dataclass
class System:
    root: str = "/"
    user: str = field(default_factory=getpass.getuser)
    stat: Callable[[str], os.stat_result] = os.stat
    group_name: Callable[[int], str] = lambda gid: grp.getgrgid(gid).gr_name
    port_in_use: Callable[[str, int], bool] = _port_in_use
    reachable: Callable[[str, int], str | None] = _reachable
    pyscard_error: Callable[[], str | None] = _pyscard_ok

    def path(self, rel: str) -> Path:
        return Path(self.root) / rel

    def user_groups(self) -> set[str]:
        groups = set()
        try:
            for line in self.path("etc/group").read_text().splitlines():
                parts = line.split(":")
                if len(parts) >= 4 and self.user in parts[3].split(","):
                    groups.add(parts[0])
        except OSError:
            pass
        return groups


def check_serial(sys_: System) -> list[Result]:
    nodes = sorted({p for g in SERIAL_GLOBS for p in glob.glob(str(sys_.path(g)))})
    if not nodes:
        return [Result("serial ports", True, "no USB serial ports (fine if you use an ACR122U)")]
    out = []
    groups = sys_.user_groups()
    for node in nodes:
        shown = "/" + os.path.relpath(node, sys_.root)
        try:
            st = sys_.stat(node)
        except OSError as exc:
            out.append(Result(f"serial {shown}", False, f"cannot stat: {exc}", "re-plug the reader"))
            continue
        group = sys_.group_name(st.st_gid)
        rw_group = st.st_mode & (statmod.S_IRGRP | statmod.S_IWGRP) == (statmod.S_IRGRP | statmod.S_IWGRP)
        rw_other = st.st_mode & (statmod.S_IROTH | statmod.S_IWOTH) == (statmod.S_IROTH | statmod.S_IWOTH)
        if sys_.user == "root" or rw_other or (rw_group and group in groups):
            out.append(Result(f"serial {shown}", True, f"group {group}, mode {oct(st.st_mode & 0o777)}: accessible"))
        else:
            out.append(Result(f"serial {shown}", False,
                              f"owned by group {group} (mode {oct(st.st_mode & 0o777)}); {sys_.user} is not in it",
                              f"sudo usermod -aG {group} {sys_.user}  (then log out and in), or sudo tagd install-udev "
                              f"for the plugdev rules"))
    return out


def check_kernel_modules(sys_: System) -> Result:
    loaded = set()
    try:
        for line in sys_.path("proc/modules").read_text().splitlines():
            loaded.add(line.split(" ", 1)[0])
    except OSError:
        pass
    loaded |= {m for m in KERNEL_NFC_MODULES if sys_.path(f"sys/module/{m}").is_dir()}
    bad = [m for m in KERNEL_NFC_MODULES if m in loaded]
    if bad:
        return Result("kernel NFC modules", False, f"loaded: {', '.join(bad)} — they grab the ACR122U (LIBUSB_ERROR_BUSY)",
                      "sudo tagd install-udev (blacklists them), then sudo modprobe -r " + " ".join(bad))
    return Result("kernel NFC modules", True, "pn533/nfc not loaded")


def check_pcsc(sys_: System) -> list[Result]:
    out = []
    sock = sys_.path("run/pcscd/pcscd.comm")
    if sock.exists():
        out.append(Result("pcscd", True, "running (socket /run/pcscd/pcscd.comm)"))
    else:
        out.append(Result("pcscd", False, "not running (no /run/pcscd/pcscd.comm)",
                          "sudo apt install pcscd libccid && sudo systemctl enable --now pcscd"))
    err = sys_.pyscard_error()
    out.append(Result("pyscard", err is None, "importable" if err is None else f"cannot import: {err}",
                      "" if err is None else "sudo apt install libpcsclite-dev && pip install 'tagd[pcsc]'"))
    return out


def check_udev(sys_: System) -> Result:
    rules = sys_.path("etc/udev/rules.d/60-tagd.rules")
    if rules.is_file():
        return Result("udev rules", True, "/etc/udev/rules.d/60-tagd.rules installed")
    return Result("udev rules", False, "/etc/udev/rules.d/60-tagd.rules missing", "sudo tagd install-udev")


def check_config(sys_: System, config_path: str | None) -> tuple[Result, object | None]:
    from tagd.daemon.config import ConfigError, default_config_path, load_config

    path = config_path or str(default_config_path())
    try:
        config = load_config(path)
    except ConfigError as exc:
        return Result("config", False, str(exc), f"edit {path}"), None
    exists = os.path.exists(path)
    return Result("config", True, f"{path} is valid" if exists else f"{path} absent: defaults apply"), config


def check_port(sys_: System, config) -> Result:
    listen = config.api.listen if config is not None else "127.0.0.1:7497"
    host, _, port = listen.rpartition(":")
    if int(port) and sys_.port_in_use(host.strip("[]"), int(port)):
        return Result("API port", False, f"{listen} is in use by another program (or tagd is already running)",
                      "stop the other program, or set [api] listen to a free port")
    return Result("API port", True, f"{listen} is free")


def check_cores(sys_: System, config) -> list[Result]:
    out = []
    for core in getattr(config, "core", []) or []:
        if core.type != "zaparoo":
            continue
        url = urlparse(str(core.url))
        port = url.port or (443 if url.scheme == "wss" else 7497)
        err = sys_.reachable(url.hostname or "", port)
        out.append(Result(f"core {url.hostname}:{port}", err is None,
                          "reachable" if err is None else f"not reachable: {err}",
                          "" if err is None else "is Zaparoo Core running there? check the [[core]] url and the network"))
    return out


def run_checks(sys_: System, config_path: str | None = None) -> list[Result]:
    results = check_serial(sys_)
    results.append(check_kernel_modules(sys_))
    results += check_pcsc(sys_)
    results.append(check_udev(sys_))
    cfg_result, config = check_config(sys_, config_path)
    results.append(cfg_result)
    results.append(check_port(sys_, config))
    results += check_cores(sys_, config)
    return results


def report(results: list[Result], out=print) -> int:
    for r in results:
        out(f"{'ok  ' if r.ok else 'FAIL'}  {r.name}: {r.detail}")
        if not r.ok and r.fix:
            out(f"      fix: {r.fix}")
    failed = sum(not r.ok for r in results)
    out(f"{len(results) - failed} ok, {failed} failed")
    return 0 if failed == 0 else 1
