"""The udev rules parse (KEY{attr}OP"value", comma-separated) and name every reader we support;
the blacklist names the kernel NFC modules; install-udev installs them into a root."""

import re
from pathlib import Path

import pytest
from hypothesis import given, strategies as st

from tagd import system_files
from tagd.cli import main

UDEV = Path(__file__).resolve().parent.parent / "udev"
TERM = re.compile(r'^\s*(?P<key>[A-Z_]+)(\{(?P<attr>[^}]+)\})?(?P<op>==|!=|\+=|-=|:=|=)"(?P<value>[^"]*)"\s*$')
MATCH_OPS = ("==", "!=")
IDS = [("072f", "2200"), ("1a86", "7523"), ("1a86", "55d3"), ("10c4", "ea60"), ("0403", "6001")]


class RuleError(ValueError):
    pass


def parse_rules(text):
    """Rules as lists of (key, attr, op, value); RuleError names the line and the term it cannot read."""
    rules = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        terms = []
        for term in line.split(","):
            m = TERM.match(term)
            if not m:
                raise RuleError(f"line {n}: cannot parse {term!r}")
            terms.append((m["key"], m["attr"], m["op"], m["value"]))
        rules.append(terms)
    return rules


def as_dict(terms):
    return {(k, a): (op, v) for k, a, op, v in terms}


@pytest.fixture(scope="module")
def rules():
    return parse_rules((UDEV / "60-tagd.rules").read_text())


def test_the_test_parser_reads_keys_attrs_and_operators():
    assert parse_rules('SUBSYSTEM=="tty", ATTRS{idVendor}!="1a86", MODE:="0660", TAG+="x", TAG-="y"') == [[
        ("SUBSYSTEM", None, "==", "tty"), ("ATTRS", "idVendor", "!=", "1a86"), ("MODE", None, ":=", "0660"),
        ("TAG", None, "+=", "x"), ("TAG", None, "-=", "y")]]
    with pytest.raises(RuleError, match="line 1"):
        parse_rules('SUBSYSTEM=="tty" MODE="0660"')


@given(st.text(max_size=80))
def test_the_test_parser_never_crashes(text):
    try:
        parse_rules(text)
    except RuleError:
        pass


def test_every_rule_line_parses_and_every_id_gets_plugdev_and_uaccess(rules):
    named = set()
    for terms in rules:
        d = as_dict(terms)
        if ("ATTRS", "idVendor") not in d:
            continue
        assert d[("ATTRS", "idVendor")][0] == "==" and d[("ATTRS", "idProduct")][0] == "=="
        named.add((d[("ATTRS", "idVendor")][1], d[("ATTRS", "idProduct")][1]))
        assert d[("GROUP", None)] == ("=", "plugdev") and d[("MODE", None)] == ("=", "0660")
        assert d[("TAG", None)] == ("+=", "uaccess")
    assert set(IDS) <= named


def test_every_rule_matches_before_it_assigns(rules):
    for terms in rules:
        ops = [op for _, _, op, _ in terms]
        first_assign = next(i for i, op in enumerate(ops) if op not in MATCH_OPS)
        assert all(op not in MATCH_OPS for op in ops[first_assign:]), terms


def test_serial_bridges_get_a_stable_port_symlink(rules):
    bridges = [as_dict(t) for t in rules if as_dict(t).get(("SUBSYSTEM", None)) == ("==", "tty")
               and ("ATTRS", "idVendor") in as_dict(t)]
    assert len(bridges) == 4
    for d in bridges:
        assert d[("SYMLINK", None)] == ("+=", "tagd-pn532-%b")  # %b: the USB port path, e.g. 1-2.3
        assert d[("ENV", "TAGD_READER")] == ("=", "pn532")


def test_serial_number_symlink_only_where_there_is_a_serial(rules):
    (d,) = [as_dict(t) for t in rules if ("ATTRS", "serial") in as_dict(t)]
    assert d[("ATTRS", "serial")] == ("==", "?*") and d[("ENV", "TAGD_READER")] == ("==", "pn532")
    assert d[("SYMLINK", None)][1].startswith("tagd-pn532-sn-")


def test_auto_detection_looks_at_the_symlinks():
    from tagd.readers.hotplug import SERIAL_PATTERNS

    assert "/dev/tagd-pn532*" in SERIAL_PATTERNS


def test_blacklist_names_the_kernel_nfc_modules():
    lines = [ln.split() for ln in (UDEV / "blacklist-tagd-pn533.conf").read_text().splitlines()
             if ln.strip() and not ln.startswith("#")]
    assert {tuple(x) for x in lines} == {("blacklist", "pn533_usb"), ("blacklist", "pn533"), ("blacklist", "nfc")}


def test_install_udev_dry_run_writes_nothing(tmp_path, capsys):
    assert main(["install-udev", "--root", str(tmp_path), "--dry-run"]) == 0
    assert not (tmp_path / "etc").exists() and "would install" in capsys.readouterr().out


def test_install_udev_into_a_root(tmp_path):
    assert main(["install-udev", "--root", str(tmp_path)]) == 0
    assert (tmp_path / "etc/udev/rules.d/60-tagd.rules").read_text() == (UDEV / "60-tagd.rules").read_text()
    assert (tmp_path / "etc/modprobe.d/blacklist-tagd-pn533.conf").read_text() == \
        (UDEV / "blacklist-tagd-pn533.conf").read_text()
    assert (tmp_path / "etc/systemd/system/tagd.service").read_text() == (UDEV / "tagd.service").read_text()
    assert (tmp_path / "etc/udev/rules.d/60-tagd.rules").stat().st_mode & 0o777 == 0o644


def test_install_reloads_udev_with_argv_lists(tmp_path):
    calls, lines = [], []
    system_files.install(str(tmp_path), out=lines.append, reload=True, run=lambda argv, check: calls.append(argv),
                         which=lambda name: f"/usr/bin/{name}")
    assert calls == [["udevadm", "control", "--reload"],
                     ["udevadm", "trigger", "--subsystem-match=tty", "--subsystem-match=usb"]]


def test_install_without_udevadm_says_to_replug(tmp_path):
    calls, lines = [], []
    system_files.install(str(tmp_path), out=lines.append, reload=True, run=lambda *a, **k: calls.append(a),
                         which=lambda name: None)
    assert calls == [] and any("re-plug" in line for line in lines)


def test_a_root_install_does_not_touch_the_hosts_udev(tmp_path):
    calls = []
    system_files.install(str(tmp_path), out=lambda line: None, run=lambda *a, **k: calls.append(a),
                         which=lambda name: "/usr/bin/udevadm")
    assert calls == []


def test_install_skips_the_unit_when_it_is_not_shipped(tmp_path, monkeypatch):
    src = tmp_path / "src"
    src.mkdir()
    for name in system_files.REQUIRED:
        (src / name).write_text(f"# {name}\n")
    monkeypatch.setattr(system_files, "source_dir", lambda: src)
    lines = []
    assert system_files.install(str(tmp_path / "root"), out=lines.append) == 0
    assert (tmp_path / "root/etc/udev/rules.d/60-tagd.rules").is_file()
    assert not (tmp_path / "root/etc/systemd").exists() and any("skip tagd.service" in line for line in lines)


def test_install_into_an_unwritable_root_is_a_clear_error(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert main(["install-udev", "--root", str(blocker)]) == 1
    assert "tagd install-udev:" in capsys.readouterr().err


def test_an_installed_wheels_data_files_are_found_outside_the_checkout(tmp_path, monkeypatch):
    """A wheel puts the files in <scheme>/share/tagd/udev (venv, /usr/local, ~/.local for --user); the
    distribution's RECORD says which, so install-udev finds them without the source tree."""
    site_dir, share = tmp_path / "lib" / "site-packages", tmp_path / "share" / "tagd" / "udev"
    info = site_dir / "tagd-9.9.dist-info"
    info.mkdir(parents=True)
    share.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: tagd\nVersion: 9.9\n")
    record = []
    for name in system_files.FILES:
        (share / name).write_text((UDEV / name).read_text())
        record.append(f"../../share/tagd/udev/{name},,")
    (info / "RECORD").write_text("\n".join(record) + "\n")
    monkeypatch.syspath_prepend(str(site_dir))
    monkeypatch.setattr(system_files, "CHECKOUT", tmp_path / "no-checkout")
    assert system_files.source_dir() == share.resolve()
    assert main(["install-udev", "--root", str(tmp_path / "root")]) == 0
    assert (tmp_path / "root/etc/udev/rules.d/60-tagd.rules").read_text() == (UDEV / "60-tagd.rules").read_text()


def test_missing_udev_files_name_where_they_were_looked_for(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(system_files, "candidate_dirs", lambda: [tmp_path / "a", tmp_path / "b"])
    assert main(["install-udev", "--root", str(tmp_path / "root")]) == 1
    err = capsys.readouterr().err
    assert str(tmp_path / "a") in err and str(tmp_path / "b") in err
