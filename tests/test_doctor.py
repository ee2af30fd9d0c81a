"""`tagd doctor` against fake root filesystems: each problem is named with its fix; a healthy system exits 0."""

import os
import stat

import pytest

from tagd.doctor import System, report, run_checks


def make_root(tmp_path, *, tty_group="dialout", user_groups=("dialout",), modules="", pcscd=True, rules=True,
              config='[api]\nlisten = "127.0.0.1:7497"\n'):
    root = tmp_path / "root"
    (root / "dev").mkdir(parents=True)
    (root / "dev" / "ttyUSB0").write_text("")
    (root / "etc" / "udev" / "rules.d").mkdir(parents=True)
    gid = {"dialout": 20, "plugdev": 46}[tty_group]
    (root / "etc" / "group").write_text(f"dialout:x:20:{'alice' if 'dialout' in user_groups else ''}\n"
                                        f"plugdev:x:46:{'alice' if 'plugdev' in user_groups else ''}\n")
    (root / "proc").mkdir()
    (root / "proc" / "modules").write_text(modules)
    if pcscd:
        (root / "run" / "pcscd").mkdir(parents=True)
        (root / "run" / "pcscd" / "pcscd.comm").write_text("")
    if rules:
        (root / "etc" / "udev" / "rules.d" / "60-tagd.rules").write_text("# tagd\n")
    cfg = tmp_path / "config.toml"
    cfg.write_text(config)
    fake_stat = os.stat_result((stat.S_IFCHR | 0o660, 0, 0, 1, 0, gid, 0, 0, 0, 0))
    sys_ = System(root=str(root), user="alice", stat=lambda p: fake_stat,
                  group_name=lambda g: {20: "dialout", 46: "plugdev"}[g], port_in_use=lambda h, p: False,
                  reachable=lambda h, p: None, pyscard_error=lambda: None)
    return sys_, str(cfg)


def run(sys_, cfg):
    lines = []
    code = report(run_checks(sys_, cfg), lines.append)
    return code, "\n".join(lines)


def test_healthy_system_passes(tmp_path):
    code, out = run(*make_root(tmp_path))
    assert code == 0 and "0 failed" in out


def test_serial_port_group_the_user_is_not_in(tmp_path):
    code, out = run(*make_root(tmp_path, tty_group="plugdev", user_groups=("dialout",)))
    assert code == 1 and "alice is not in it" in out and "sudo usermod -aG plugdev alice" in out


def test_pn533_modules_loaded(tmp_path):
    code, out = run(*make_root(tmp_path, modules="pn533_usb 16384 0 - Live\npn533 45056 1 pn533_usb\nnfc 1 0\n"))
    assert code == 1 and "pn533_usb, pn533, nfc" in out and "modprobe -r" in out


def test_pcscd_not_running_and_pyscard_missing(tmp_path):
    sys_, cfg = make_root(tmp_path, pcscd=False)
    sys_.pyscard_error = lambda: "No module named 'smartcard'"
    code, out = run(sys_, cfg)
    assert code == 1 and "systemctl enable --now pcscd" in out and "tagd[pcsc]" in out


def test_udev_rules_missing(tmp_path):
    code, out = run(*make_root(tmp_path, rules=False))
    assert code == 1 and "udev rules" in out and "sudo tagd install-udev" in out


def test_invalid_config_names_file_key_and_reason(tmp_path):
    code, out = run(*make_root(tmp_path, config='[readers.scan]\nmode = "sideways"\n'))
    assert code == 1 and "readers.scan.mode" in out and "config.toml" in out


def test_api_port_in_use(tmp_path):
    sys_, cfg = make_root(tmp_path)
    sys_.port_in_use = lambda h, p: True
    code, out = run(sys_, cfg)
    assert code == 1 and "127.0.0.1:7497 is in use" in out


def test_core_unreachable(tmp_path):
    sys_, cfg = make_root(tmp_path, config='[[core]]\ntype = "zaparoo"\nurl = "ws://mister.local:7497/api/v0.1"\n')
    sys_.reachable = lambda h, p: "Connection refused"
    code, out = run(sys_, cfg)
    assert code == 1 and "core mister.local:7497" in out and "Connection refused" in out


def test_cli_doctor_exit_status(tmp_path, capsys):
    from tagd.cli import main
    sys_, cfg = make_root(tmp_path, pcscd=False)
    assert main(["doctor", "--root", sys_.root, "--config", cfg]) == 1
    assert "FAIL  pcscd" in capsys.readouterr().out
