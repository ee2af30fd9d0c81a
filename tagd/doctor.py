"""`tagd doctor`: find what stops a reader from working, and say how to fix it.

Every check reads the system through a :class:`System`: files under a root prefix (``/dev``, ``/etc/group``,
``/etc/passwd``, ``/proc``, ``/sys/module``, ``/run/pcscd``, ``/etc/udev/rules.d``, ``/etc/modprobe.d``) plus
a few probes that cannot be files (stat of a device node, binding a port, connecting to the core, importing
pyscard). Tests swap the probes and build a fake root, so the checks that run on a user's machine are the
ones tested. Each check gives ok/FAIL, what it saw, and the command that fixes it.
"""

from __future__ import annotations

import getpass
import glob
import os
import re
import socket
import stat as statmod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlparse

SERIAL_GLOBS = ("dev/ttyUSB*", "dev/ttyACM*", "dev/tagd-pn532*")
KERNEL_NFC_MODULES = ("pn533_usb", "pn533", "nfc")
RULES = "etc/udev/rules.d/60-tagd.rules"
BLACKLIST = "etc/modprobe.d/blacklist-tagd-pn533.conf"
PCSCD_SOCKET = "run/pcscd/pcscd.comm"
DEFAULT_LISTEN = ":7497"  # as [api] listen's default


@dataclass
class Result:
    name: str
    ok: bool
    detail: str
    fix: str = ""


def _port_in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
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


def _pyscard_error() -> str | None:
    try:
        import smartcard.scard  # noqa: F401
    except Exception as exc:  # ImportError, or a broken build
        return str(exc)
    return None


def _invoking_user() -> str:
    """The user whose access matters: under ``sudo tagd doctor`` that is the one who typed sudo, not root
    (root can open every port, so checking root would hide the very problem the user has)."""
    sudo_user = os.environ.get("SUDO_USER")
    if sudo_user and sudo_user != "root" and os.geteuid() == 0:
        return sudo_user
    return getpass.getuser()


def _missing_packages(names: list[str]) -> list[str]:
    from tagd.syspackages import missing

    return missing(names)


def _shipped_dir() -> Path | None:
    from tagd.system_files import source_dir

    try:
        return source_dir()
    except FileNotFoundError:
        return None


@dataclass
class System:
    root: str = "/"
    user: str = field(default_factory=_invoking_user)
    stat: Callable[[str], os.stat_result] = os.stat
    port_in_use: Callable[[str, int], bool] = _port_in_use
    reachable: Callable[[str, int], str | None] = _reachable
    pyscard_error: Callable[[], str | None] = _pyscard_error
    shipped_dir: Callable[[], Path | None] = _shipped_dir
    missing_packages: Callable[[list[str]], list[str]] = _missing_packages

    def path(self, rel: str) -> Path:
        return Path(self.root) / rel

    def shown(self, path: str | Path) -> str:
        return "/" + os.path.relpath(path, self.root)

    def _table(self, rel: str) -> list[list[str]]:
        try:
            return [line.split(":") for line in self.path(rel).read_text().splitlines() if line.strip()]
        except OSError:
            return []

    def group_name(self, gid: int) -> str:
        for row in self._table("etc/group"):
            if len(row) >= 3 and row[2] == str(gid):
                return row[0]
        return str(gid)

    def user_groups(self) -> set[str]:
        """The user's groups as the root's /etc/group and /etc/passwd (primary group) say."""
        groups = {row[0] for row in self._table("etc/group") if len(row) >= 4 and self.user in row[3].split(",")}
        for row in self._table("etc/passwd"):
            if len(row) >= 4 and row[0] == self.user and row[3].isdigit():
                groups.add(self.group_name(int(row[3])))
        return groups

    def process_running(self, name: str) -> bool:
        for comm in glob.glob(str(self.path("proc/*/comm"))):
            try:
                if Path(comm).read_text().strip() == name:
                    return True
            except OSError:
                continue
        return False


def check_serial(sys_: System) -> list[Result]:
    nodes = sorted({p for g in SERIAL_GLOBS for p in glob.glob(str(sys_.path(g)))})
    if not nodes:
        return [Result("serial ports", True, "no USB serial ports (fine with an ACR122U; plug a PN532 in to check it)")]
    out = []
    groups = sys_.user_groups()
    for node in nodes:
        shown = sys_.shown(node)
        try:
            st = sys_.stat(node)
        except OSError as exc:
            out.append(Result(f"serial {shown}", False, f"cannot stat: {exc.strerror or exc}",
                              "re-plug the reader; if this is a stale tagd-pn532 link, sudo udevadm trigger"))
            continue
        group, mode = sys_.group_name(st.st_gid), statmod.S_IMODE(st.st_mode)
        rw = statmod.S_IRGRP | statmod.S_IWGRP
        if sys_.user == "root" or mode & 0o006 == 0o006 or (mode & rw == rw and group in groups):
            out.append(Result(f"serial {shown}", True, f"group {group}, mode {mode:04o}: {sys_.user} can use it"))
        elif mode & rw != rw:
            out.append(Result(f"serial {shown}", False, f"group {group}, mode {mode:04o}: the group cannot read and write it",
                              "sudo tagd install-udev (gives plugdev read/write on reader ports), then re-plug"))
        else:
            out.append(Result(f"serial {shown}", False,
                              f"group {group} (mode {mode:04o}); {sys_.user} is not in group {group}",
                              f"sudo usermod -aG {group} {sys_.user}  (then log out and in), or sudo tagd install-udev "
                              f"and join plugdev"))
    return out


def check_kernel_modules(sys_: System) -> Result:
    loaded = set()
    try:
        loaded = {line.split(" ", 1)[0] for line in sys_.path("proc/modules").read_text().splitlines()}
    except OSError:
        pass
    loaded |= {m for m in KERNEL_NFC_MODULES if sys_.path(f"sys/module/{m}").is_dir()}
    bad = [m for m in KERNEL_NFC_MODULES if m in loaded]
    if bad:
        return Result("kernel NFC modules", False,
                      f"loaded: {', '.join(bad)}: they grab the ACR122U, pcscd then fails with LIBUSB_ERROR_BUSY",
                      "sudo tagd install-udev (blacklists them), then sudo modprobe -r " + " ".join(bad))
    return Result("kernel NFC modules", True, "pn533/nfc not loaded")


def _not_installed(sys_: System, purpose: str, lead: str = "") -> str:
    """``"; <lead>not installed: a, b"`` for the listed packages of a purpose that dpkg lacks, else ``""``."""
    from tagd.syspackages import names

    absent = sys_.missing_packages(names(purpose))
    return f"; {lead}not installed: {', '.join(absent)}" if absent else ""


def check_pcsc(sys_: System) -> list[Result]:
    from tagd.syspackages import apt_install

    sock = sys_.path(PCSCD_SOCKET)
    if sock.exists():
        pcscd = Result("pcscd", True, f"running (socket /{PCSCD_SOCKET})")
    elif sys_.process_running("pcscd"):
        pcscd = Result("pcscd", True, "running (process found; no socket at the usual place)")
    else:
        pcscd = Result("pcscd", False, f"not running (no /{PCSCD_SOCKET}, no pcscd process): the ACR122U needs it"
                       + _not_installed(sys_, "pcsc"), apt_install("pcsc") + " && sudo systemctl enable --now pcscd.socket")
    err = sys_.pyscard_error()
    pyscard = Result("pyscard", True, "importable") if err is None else \
        Result("pyscard", False, f"cannot import: {err}" + _not_installed(sys_, "build", "to build it, "),
               apt_install("build") + " && pip install 'tagd[pcsc]'")
    return [pcscd, pyscard]


_USB_ID = re.compile(r'ATTRS\{idVendor\}=="([0-9a-fA-F]{4})",\s*ATTRS\{idProduct\}=="([0-9a-fA-F]{4})"')


def _usb_ids(text: str) -> set[str]:
    return {f"{v.lower()}:{p.lower()}" for v, p in _USB_ID.findall(text)}


def _blacklisted(text: str) -> set[str]:
    return {parts[1] for line in text.splitlines() if len(parts := line.split()) >= 2 and parts[0] == "blacklist"}


def check_installed_files(sys_: System) -> list[Result]:
    """Installed, and covering what this tagd ships: an older copy may lack a newer reader's USB ID.

    Only what is missing counts, so a hand-edited file that still covers everything passes."""
    shipped = sys_.shipped_dir()
    out = []
    for rel, what, wanted in ((RULES, "udev rules", _usb_ids), (BLACKLIST, "pn533 blacklist", _blacklisted)):
        try:
            installed = sys_.path(rel).read_text(errors="replace")
        except OSError:
            out.append(Result(what, False, f"/{rel} missing", "sudo tagd install-udev"))
            continue
        try:
            lacking = sorted(wanted((shipped / os.path.basename(rel)).read_text()) - wanted(installed)) if shipped else []
        except OSError:
            lacking = []
        if lacking:
            out.append(Result(what, False, f"/{rel} is older than this tagd's: it lacks {', '.join(lacking)}",
                              "sudo tagd install-udev (then re-plug the reader)"))
        else:
            out.append(Result(what, True, f"/{rel} installed"))
    return out


def check_config(config_path: str | None) -> tuple[Result, Any]:
    from tagd.daemon.config import ConfigError, default_config_path, load_config

    path = str(config_path or default_config_path())
    try:
        config = load_config(path)
    except ConfigError as exc:
        return Result("config", False, str(exc), f"edit {path} (see the key and reason above)"), None
    exists = os.path.exists(path)
    return Result("config", True, f"{path} is valid" if exists else f"{path} absent: defaults apply"), config


def _zaparoo_endpoints(config: Any) -> list[tuple[str, int]]:
    out = []
    for core in getattr(config, "core", None) or []:
        if core.type == "zaparoo":
            url = urlparse(str(core.url))
            out.append((url.hostname or "", url.port or (443 if url.scheme == "wss" else 7497)))
    return out


def check_port(sys_: System, config: Any) -> Result:
    listen = config.api.listen if config is not None else DEFAULT_LISTEN
    host, _, port_text = listen.rpartition(":")
    host, port = host.strip("[]"), int(port_text)
    if port and sys_.port_in_use(host, port):
        local_core = [f"{h}:{p}" for h, p in _zaparoo_endpoints(config) if p == port
                      and h in ("127.0.0.1", "localhost", "::1", host)]
        why = f"Zaparoo Core ({local_core[0]}) listens there" if local_core else \
            "another program (or a running tagd) listens there"
        return Result("API port", False, f"{listen} is in use: {why}",
                      "stop the other program, or set [api] listen to a free port, e.g. listen = \"127.0.0.1:7498\"")
    return Result("API port", True, f"{listen} is free")


def check_cores(sys_: System, config: Any) -> list[Result]:
    targets = [("core", h, p) for h, p in _zaparoo_endpoints(config)]
    targets += [("MQTT broker", c.host, c.port) for c in getattr(config, "core", None) or [] if c.type == "mqtt"]
    if not targets:
        return [Result("core", True, "no [[core]] with a network address configured: nothing to reach")]
    out = []
    for what, host, port in targets:
        err = sys_.reachable(host, port)
        fix = "" if err is None else (f"is Zaparoo Core running on {host}? check the [[core]] url and the network"
                                      if what == "core" else f"is the broker running on {host}:{port}? check [[core]] host/port")
        out.append(Result(f"{what} {host}:{port}", err is None, "reachable" if err is None else f"not reachable: {err}", fix))
    return out


def run_checks(sys_: System, config_path: str | None = None) -> list[Result]:
    results = check_serial(sys_)
    results.append(check_kernel_modules(sys_))
    results += check_pcsc(sys_)
    results += check_installed_files(sys_)
    cfg_result, config = check_config(config_path)
    results.append(cfg_result)
    results.append(check_port(sys_, config))
    results += check_cores(sys_, config)
    return results


def report(results: list[Result], out: Callable[[str], None] = print) -> int:
    """Print one line per check (and its fix when it failed); 0 only when every check passed."""
    for r in results:
        out(f"{'ok  ' if r.ok else 'FAIL'}  {r.name}: {r.detail}")
        if not r.ok and r.fix:
            out(f"      fix: {r.fix}")
    failed = sum(not r.ok for r in results)
    out(f"{len(results) - failed} ok, {failed} failed")
    return 0 if failed == 0 else 1
