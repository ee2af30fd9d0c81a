"""`tagd scan`, `tagd write`, `tagd dump` and `tagd readers` as a user runs them, against `tagd sim pn532` on a pty."""

import json
import subprocess
import sys

import pytest

from conftest import FIXTURES
from tagd.ndef.decode import decode_dump
from tagd.ndef.dumps import load


@pytest.fixture
def sim(tmp_path):
    link = tmp_path / "pn532"
    saved = tmp_path / "saved.nfc"
    p = subprocess.Popen([sys.executable, "-m", "tagd", "sim", "pn532", "--tag", str(FIXTURES / "snes-ntag215.nfc"),
                          "--link", str(link), "--save", str(saved)],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == str(link)
    yield f"pn532uart:{link}", saved, p
    if p.poll() is None:
        p.terminate()
        p.wait(10)


def tagd(*args, timeout=30):
    return subprocess.run([sys.executable, "-m", "tagd", *args], capture_output=True, text=True, timeout=timeout)


def test_scan_once_prints_the_token(sim):
    connect, _, _ = sim
    r = tagd("scan", "--reader", connect, "--once", "--all")
    assert r.returncode == 0, r.stderr
    tok = json.loads(r.stdout)
    assert tok["text"] == "**launch.system:snes" and tok["kind"] == "ntag215" and tok["readerId"].startswith("pn532-")


def test_write_then_dump_then_save_on_exit(sim, tmp_path):
    connect, saved, proc = sim
    r = tagd("write", "--reader", connect, "--timeout", "5", "**launch.system:megadrive")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["text"] == "**launch.system:megadrive"
    out = tmp_path / "dumped.nfc"
    r = tagd("dump", "--reader", connect, "-o", str(out))
    assert r.returncode == 0, r.stderr
    assert decode_dump(load(out)).text == "**launch.system:megadrive"
    proc.terminate()
    proc.wait(10)
    assert decode_dump(load(saved)).text == "**launch.system:megadrive"


def test_write_too_long_fails_with_the_capacity(sim):
    connect, _, _ = sim
    r = tagd("write", "--reader", connect, "--timeout", "5", "x" * 600)
    assert r.returncode == 1 and "holds" in r.stderr


def test_readers_lists_the_reader_id(sim):
    connect, _, _ = sim
    r = tagd("readers", "--reader", connect)
    assert r.returncode == 0 and connect in r.stdout and "pn532-" in r.stdout
