"""scripts/test, README's test command: what it installs, when, and that arguments reach pytest.

The script runs for real, with stand-ins for the system on PATH (dpkg-query, apt-get, sudo, id) and a fake
virtual environment whose ``python`` records how it was called, so each decision (install or not, root or
sudo or neither) is checked without touching the machine's packages.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tagd import doctor, syspackages

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "test"
TOOLS = ("awk", "grep", "date", "cat", "sha256sum", "cut", "dirname", "env", "bash")


def _shim(bindir: Path, name: str, body: str) -> None:
    path = bindir / name
    path.write_text("#!/bin/bash\n" + body + "\n")
    path.chmod(0o755)


def _rig(tmp_path: Path, *, installed: set[str], uid: int = 0, sudo: bool = False, stamp_ok: bool = True):
    """A PATH with only the tools the script needs plus stand-ins; a fake venv; a log of what was run."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for tool in TOOLS:
        shutil.which(tool) and os.symlink(shutil.which(tool), bindir / tool)
    log = tmp_path / "log"
    log.write_text("")
    status = " ".join(sorted(installed))
    _shim(bindir, "dpkg-query", f'for p in {status}; do [ "$p" = "${{@: -1}}" ] && '
                                f'{{ echo -n "install ok installed"; exit 0; }}; done; exit 1')
    _shim(bindir, "apt-get", f'echo "apt-get $*" >> {log}')
    _shim(bindir, "id", f"echo {uid}")
    if sudo:
        _shim(bindir, "sudo", f'echo "sudo $1" >> {log}; "$@"')
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    _shim(venv / "bin", "python", f'echo "python $*" >> {log}')
    if stamp_ok:
        digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
        (venv / ".tagd-installed").write_text(f"{digest} {ROOT}\n")
    env = {"PATH": str(bindir), "TAGD_VENV": str(venv), "HOME": str(tmp_path)}
    return env, log


def _run(env, *args):
    return subprocess.run(["/bin/bash", str(SCRIPT), *args], env=env, capture_output=True, text=True, timeout=60)


def test_a_second_run_installs_nothing_and_passes_arguments_to_pytest(tmp_path: Path) -> None:
    env, log = _rig(tmp_path, installed={p.name for p in syspackages.packages()})
    r = _run(env, "tests/ndef", "-k", "uid")
    assert r.returncode == 0, r.stderr
    assert log.read_text().splitlines() == ["python -m pytest -q --durations=10 tests/ndef -k uid"]
    assert "setup took" in r.stdout and "suite wall time" in r.stdout and "installing" not in r.stdout


def test_missing_system_packages_are_installed_as_root(tmp_path: Path) -> None:
    everything = {p.name for p in syspackages.packages()}
    env, log = _rig(tmp_path, installed=everything - {"mosquitto", "chromium"})
    r = _run(env)
    assert r.returncode == 0, r.stderr
    ran = log.read_text().splitlines()
    assert ran[0] == "apt-get update -qq"
    assert ran[1] == "apt-get install -y -qq --no-install-recommends chromium mosquitto" or \
        ran[1] == "apt-get install -y -qq --no-install-recommends mosquitto chromium"


def test_without_root_it_uses_sudo(tmp_path: Path) -> None:
    everything = {p.name for p in syspackages.packages()}
    env, log = _rig(tmp_path, installed=everything - {"pcscd"}, uid=1000, sudo=True)
    r = _run(env)
    assert r.returncode == 0, r.stderr
    assert "sudo env" in log.read_text() and "apt-get install -y -qq --no-install-recommends pcscd" in log.read_text()


def test_without_root_or_sudo_it_prints_the_apt_command_and_stops(tmp_path: Path) -> None:
    everything = {p.name for p in syspackages.packages()}
    env, log = _rig(tmp_path, installed=everything - {"vsmartcard-vpcd"}, uid=1000)
    r = _run(env)
    assert r.returncode == 1
    assert "apt-get update && apt-get install -y -qq --no-install-recommends vsmartcard-vpcd" in r.stdout
    assert log.read_text() == ""  # neither apt nor pytest ran


def test_a_changed_pyproject_reinstalls_the_project(tmp_path: Path) -> None:
    env, log = _rig(tmp_path, installed={p.name for p in syspackages.packages()}, stamp_ok=False)
    r = _run(env)
    assert r.returncode == 0, r.stderr
    ran = log.read_text().splitlines()
    assert "python -m pip install -q -e .[dev,pcsc,nfcpy,udev]" in ran and ran[-1].startswith("python -m pytest")


def test_the_shell_and_python_read_the_same_package_list() -> None:
    r = subprocess.run(["awk", "!/^[[:space:]]*(#|$)/ { print $1 }", str(syspackages.LIST)],
                       capture_output=True, text=True, check=True)
    assert r.stdout.split() == [p.name for p in syspackages.packages()]
    assert {"pcscd", "vsmartcard-vpcd", "mosquitto", "chromium"} <= set(r.stdout.split())
    assert all(p.purpose in ("pcsc", "build", "test") and p.why for p in syspackages.packages())


def test_ci_runs_readmes_test_command() -> None:
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "./scripts/test" in readme.split("## ", 1)[0]
    assert "TAGD_REQUIRE_ALL=1" in ci and "./scripts/test" in ci


@pytest.mark.parametrize("broken", ["pcscd", "pyscard"])
def test_doctor_names_the_listed_packages_in_its_fixes(tmp_path: Path, broken: str) -> None:
    (tmp_path / "proc").mkdir()
    sys_ = doctor.System(root=str(tmp_path), user="root", missing_packages=lambda names: names[:1],
                         pyscard_error=(lambda: "No module named 'smartcard'") if broken == "pyscard" else lambda: None)
    if broken == "pyscard":
        (tmp_path / "run" / "pcscd").mkdir(parents=True)
        (tmp_path / "run" / "pcscd" / "pcscd.comm").write_text("")
    result = {r.name: r for r in doctor.check_pcsc(sys_)}[broken]
    purpose = "pcsc" if broken == "pcscd" else "build"
    assert not result.ok
    assert result.fix.startswith("sudo apt install " + " ".join(syspackages.names(purpose)))
    assert f"not installed: {syspackages.names(purpose)[0]}" in result.detail
