"""`tagd doctor` against fake root filesystems: each problem is named with its fix and exit status 1;
a healthy system exits 0."""

import os
import stat
from pathlib import Path

import pytest

from tagd import doctor
from tagd.doctor import System, report, run_checks

UDEV = Path(__file__).resolve().parent.parent / "udev"

GIDS = {"dialout": 20, "plugdev": 46, "alice": 1000}


def fake_stat(gid: int, mode: int = 0o660):
    return os.stat_result((stat.S_IFCHR | mode, 0, 0, 1, 0, gid, 0, 0, 0, 0))


def make_root(tmp_path, *, tty_group="dialout", tty_mode=0o660, user_groups=("dialout",), modules="",
              pcscd=True, rules=True, blacklist=True, config='[api]\nlisten = "127.0.0.1:7497"\n'):
    """A healthy machine unless told otherwise: alice in dialout, /dev/ttyUSB0 root:dialout 0660."""
    root = tmp_path / "root"
    for d in ("dev", "etc/udev/rules.d", "etc/modprobe.d", "proc/1"):
        (root / d).mkdir(parents=True)
    (root / "dev" / "ttyUSB0").write_text("")
    (root / "etc" / "group").write_text("".join(
        f"{name}:x:{gid}:{'alice' if name in user_groups and name != 'alice' else ''}\n" for name, gid in GIDS.items()))
    (root / "etc" / "passwd").write_text("root:x:0:0::/root:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/sh\n")
    (root / "proc" / "modules").write_text(modules)
    (root / "proc" / "1" / "comm").write_text("init\n")
    if pcscd:
        (root / "run" / "pcscd").mkdir(parents=True)
        (root / "run" / "pcscd" / "pcscd.comm").write_text("")
    if rules:
        (root / "etc/udev/rules.d/60-tagd.rules").write_text((UDEV / "60-tagd.rules").read_text())
    if blacklist:
        (root / "etc/modprobe.d/blacklist-tagd-pn533.conf").write_text((UDEV / "blacklist-tagd-pn533.conf").read_text())
    cfg = tmp_path / "config.toml"
    cfg.write_text(config)
    sys_ = System(root=str(root), user="alice", stat=lambda p: fake_stat(GIDS[tty_group], tty_mode),
                  port_in_use=lambda h, p: False, reachable=lambda h, p: None, pyscard_error=lambda: None,
                  shipped_dir=lambda: UDEV, missing_packages=lambda names: [])
    return sys_, str(cfg)


def run(sys_, cfg):
    lines = []
    code = report(run_checks(sys_, cfg), lines.append)
    return code, "\n".join(lines)


def test_healthy_system_passes(tmp_path):
    code, out = run(*make_root(tmp_path))
    assert code == 0 and "FAIL" not in out and "0 failed" in out
    assert "ok    serial /dev/ttyUSB0: group dialout, mode 0660: alice can use it" in out


def test_serial_port_group_the_user_is_not_in(tmp_path):
    code, out = run(*make_root(tmp_path, tty_group="plugdev", user_groups=("dialout",)))
    assert code == 1 and "alice is not in group plugdev" in out and "sudo usermod -aG plugdev alice" in out


def test_serial_port_the_group_cannot_write(tmp_path):
    code, out = run(*make_root(tmp_path, tty_mode=0o600))
    assert code == 1 and "the group cannot read and write it" in out and "sudo tagd install-udev" in out


def test_primary_group_from_passwd_counts(tmp_path):
    code, out = run(*make_root(tmp_path, tty_group="alice", user_groups=()))
    assert code == 0, out


def test_serial_node_that_cannot_be_stat_ed(tmp_path):
    sys_, cfg = make_root(tmp_path)

    def broken(path):
        raise FileNotFoundError(2, "No such file or directory")

    sys_.stat = broken
    code, out = run(sys_, cfg)
    assert code == 1 and "FAIL  serial /dev/ttyUSB0: cannot stat" in out and "re-plug the reader" in out


def test_no_serial_ports_is_fine(tmp_path):
    sys_, cfg = make_root(tmp_path)
    os.unlink(os.path.join(sys_.root, "dev", "ttyUSB0"))
    code, out = run(sys_, cfg)
    assert code == 0 and "no USB serial ports" in out


def test_pn533_modules_loaded(tmp_path):
    code, out = run(*make_root(tmp_path, modules="pn533_usb 16384 0 - Live\npn533 45056 1 pn533_usb\nnfc 1 0\n"))
    assert code == 1 and "loaded: pn533_usb, pn533, nfc" in out and "LIBUSB_ERROR_BUSY" in out
    assert "sudo modprobe -r pn533_usb pn533 nfc" in out


def test_pn533_module_seen_in_sys_module(tmp_path):
    sys_, cfg = make_root(tmp_path)
    os.makedirs(os.path.join(sys_.root, "sys", "module", "pn533"))
    code, out = run(sys_, cfg)
    assert code == 1 and "loaded: pn533" in out


def test_pcscd_not_running_and_pyscard_missing(tmp_path):
    sys_, cfg = make_root(tmp_path, pcscd=False)
    sys_.pyscard_error = lambda: "No module named 'smartcard'"
    code, out = run(sys_, cfg)
    assert code == 1 and "FAIL  pcscd: not running" in out and "systemctl enable --now pcscd" in out
    assert "FAIL  pyscard: cannot import: No module named 'smartcard'" in out and "tagd[pcsc]" in out


def test_pcscd_process_without_the_usual_socket_counts_as_running(tmp_path):
    sys_, cfg = make_root(tmp_path, pcscd=False)
    os.makedirs(os.path.join(sys_.root, "proc", "812"))
    with open(os.path.join(sys_.root, "proc", "812", "comm"), "w") as f:
        f.write("pcscd\n")
    code, out = run(sys_, cfg)
    assert code == 0 and "ok    pcscd: running (process found" in out


@pytest.mark.parametrize("missing, name", [({"rules": False}, "udev rules"), ({"blacklist": False}, "pn533 blacklist")])
def test_installed_files_missing(tmp_path, missing, name):
    code, out = run(*make_root(tmp_path, **missing))
    assert code == 1 and f"FAIL  {name}:" in out and "missing" in out and "fix: sudo tagd install-udev" in out


def test_invalid_config_names_file_key_and_reason(tmp_path):
    code, out = run(*make_root(tmp_path, config='[readers.scan]\nmode = "sideways"\n'))
    assert code == 1 and "FAIL  config:" in out and "readers.scan.mode" in out and "config.toml" in out


def test_api_port_in_use(tmp_path):
    sys_, cfg = make_root(tmp_path)
    sys_.port_in_use = lambda h, p: True
    code, out = run(sys_, cfg)
    assert code == 1 and "127.0.0.1:7497 is in use" in out and "set [api] listen to a free port" in out


def test_api_port_taken_by_a_local_zaparoo_core_says_so(tmp_path):
    sys_, cfg = make_root(tmp_path, config='[[core]]\ntype = "zaparoo"\nurl = "ws://127.0.0.1:7497/api/v0.1"\n')
    sys_.port_in_use = lambda h, p: True
    code, out = run(sys_, cfg)
    assert code == 1 and "Zaparoo Core (127.0.0.1:7497) listens there" in out


def test_core_unreachable(tmp_path):
    sys_, cfg = make_root(tmp_path, config='[[core]]\ntype = "zaparoo"\nurl = "ws://mister.local:7497/api/v0.1"\n')
    sys_.reachable = lambda h, p: "Connection refused"
    code, out = run(sys_, cfg)
    assert code == 1 and "FAIL  core mister.local:7497: not reachable: Connection refused" in out
    assert "is Zaparoo Core running on mister.local?" in out


def test_mqtt_broker_unreachable(tmp_path):
    sys_, cfg = make_root(tmp_path, config='[[core]]\ntype = "mqtt"\nhost = "broker"\ntopic = "zaparoo/scan"\n')
    sys_.reachable = lambda h, p: "Name or service not known"
    code, out = run(sys_, cfg)
    assert code == 1 and "FAIL  MQTT broker broker:1883" in out


def test_cli_doctor_exit_status(tmp_path, capsys):
    from tagd.cli import main

    sys_, cfg = make_root(tmp_path, pcscd=False)
    assert main(["doctor", "--root", sys_.root, "--config", cfg]) == 1
    assert "FAIL  pcscd" in capsys.readouterr().out


def test_doctor_runs_on_this_machine_without_crashing(tmp_path):
    lines = []
    code = report(run_checks(System(port_in_use=lambda h, p: False), str(tmp_path / "absent.toml")), lines.append)
    assert code in (0, 1) and lines[-1].endswith("failed") and any("config" in line for line in lines)


def test_installed_rules_older_than_this_tagd_name_the_missing_reader(tmp_path):
    sys_, cfg = make_root(tmp_path)
    rules = Path(sys_.root) / "etc/udev/rules.d/60-tagd.rules"
    rules.write_text("".join(line + "\n" for line in rules.read_text().splitlines() if "55d3" not in line))
    code, out = run(sys_, cfg)
    assert code == 1 and "FAIL  udev rules:" in out and "lacks 1a86:55d3" in out
    assert "fix: sudo tagd install-udev" in out


def test_hand_edited_files_that_still_cover_everything_pass(tmp_path):
    sys_, cfg = make_root(tmp_path)
    rules = Path(sys_.root) / "etc/udev/rules.d/60-tagd.rules"
    rules.write_text("# my edits\n" + rules.read_text().replace('MODE="0660"', 'MODE="0666"'))
    blacklist = Path(sys_.root) / "etc/modprobe.d/blacklist-tagd-pn533.conf"
    blacklist.write_text("blacklist nfc\nblacklist pn533\nblacklist pn533_usb\n")
    code, out = run(sys_, cfg)
    assert code == 0, out


def test_an_old_blacklist_missing_a_module(tmp_path):
    sys_, cfg = make_root(tmp_path)
    (Path(sys_.root) / "etc/modprobe.d/blacklist-tagd-pn533.conf").write_text("blacklist pn533_usb\n")
    code, out = run(sys_, cfg)
    assert code == 1 and "FAIL  pn533 blacklist:" in out and "lacks nfc, pn533" in out


def test_no_core_configured_is_said_and_passes(tmp_path):
    code, out = run(*make_root(tmp_path))
    assert code == 0 and "ok    core: no [[core]]" in out


def test_under_sudo_the_invoking_user_is_checked(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.setenv("SUDO_USER", "alice")
    assert System().user == "alice"
    monkeypatch.setenv("SUDO_USER", "root")
    monkeypatch.setattr(doctor.getpass, "getuser", lambda: "root")
    assert System().user == "root"


def test_cli_doctor_user_option(tmp_path, capsys):
    from tagd.cli import main

    sys_, cfg = make_root(tmp_path)
    node = os.path.join(sys_.root, "dev", "ttyUSB0")  # the CLI stats the fake node for real
    os.chmod(node, 0o660)
    group = Path(sys_.root) / "etc" / "group"
    group.write_text(f"mine:x:{os.stat(node).st_gid}:alice\n" + group.read_text())
    main(["doctor", "--root", sys_.root, "--config", cfg, "--user", "bob"])
    assert "bob is not in group mine" in capsys.readouterr().out
