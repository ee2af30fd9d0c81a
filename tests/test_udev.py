"""The udev rules parse (KEY{attr}OP"value", comma-separated) and name every reader we support; install-udev installs."""

import re
from pathlib import Path

import pytest

from tagd.cli import main

UDEV = Path(__file__).resolve().parent.parent / "udev"
TERM = re.compile(r'^\s*(?P<key>[A-Z_]+)(\{(?P<attr>[^}]+)\})?(?P<op>==|!=|\+=|-=|:=|=)"(?P<value>[^"]*)"\s*$')
IDS = [("072f", "2200"), ("1a86", "7523"), ("1a86", "55d3"), ("10c4", "ea60"), ("0403", "6001")]


def parse_rules(text):
    rules = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        terms = []
        for term in line.split(","):
            m = TERM.match(term)
            assert m, f"line {n}: cannot parse {term!r}"
            terms.append((m["key"], m["attr"], m["op"], m["value"]))
        rules.append(terms)
    return rules


def test_every_rule_line_parses_and_every_id_is_named():
    rules = parse_rules((UDEV / "60-tagd.rules").read_text())
    named = set()
    for terms in rules:
        d = {(k, a): v for k, a, op, v in terms}
        named.add((d[("ATTRS", "idVendor")], d[("ATTRS", "idProduct")]))
        assert d[("GROUP", None)] == "plugdev" and d[("MODE", None)] == "0660"
        assert any(k == "TAG" and op == "+=" and v == "uaccess" for k, a, op, v in terms)
    assert set(IDS) <= named


def test_serial_bridges_get_a_stable_symlink():
    for terms in parse_rules((UDEV / "60-tagd.rules").read_text()):
        d = {(k, a): v for k, a, op, v in terms}
        if d[("SUBSYSTEM", None)] == "tty":
            assert d[("SYMLINK", None)].startswith("tagd-pn532-")


def test_blacklist_names_the_kernel_nfc_modules():
    lines = [ln.split() for ln in (UDEV / "blacklist-tagd-pn533.conf").read_text().splitlines()
             if ln.strip() and not ln.startswith("#")]
    assert {tuple(x) for x in lines} == {("blacklist", "pn533_usb"), ("blacklist", "pn533"), ("blacklist", "nfc")}


def test_unit_is_type_notify():
    assert "Type=notify" in (UDEV / "tagd.service").read_text()


def test_install_udev_into_a_root_and_dry_run(tmp_path, capsys):
    assert main(["install-udev", "--root", str(tmp_path), "--dry-run"]) == 0
    assert not (tmp_path / "etc").exists() and "would install" in capsys.readouterr().out
    assert main(["install-udev", "--root", str(tmp_path)]) == 0
    assert (tmp_path / "etc/udev/rules.d/60-tagd.rules").read_text() == (UDEV / "60-tagd.rules").read_text()
    assert (tmp_path / "etc/modprobe.d/blacklist-tagd-pn533.conf").is_file()
    assert (tmp_path / "etc/systemd/system/tagd.service").is_file()
