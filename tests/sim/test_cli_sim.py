"""`tagd sim pn532` as a user runs it: a subprocess, its pty, stdin commands, timelines, --save, exit stats."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
import tty

import pytest

from conftest import FIXTURES
from tagd.ndef.dumps import load
from tagd.readers.pn532.frames import TFI_CHIP, Ack, Frame, FrameDecoder, encode_command


def start(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "tagd", "sim", "pn532", *args], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def ask(path: str, code: int, params: bytes = b"", timeout: float = 2.0) -> list:
    fd = os.open(path, os.O_RDWR | os.O_NOCTTY)
    try:
        tty.setraw(fd)
        os.write(fd, encode_command(code, params))
        decoder, items, deadline = FrameDecoder(), [], time.monotonic() + timeout
        while len(items) < 2 and select.select([fd], [], [], max(0.0, deadline - time.monotonic()))[0]:
            items += decoder.feed(os.read(fd, 4096))
        return items
    finally:
        os.close(fd)


def finish(proc: subprocess.Popen, command: str = "quit\n") -> tuple[str, str]:
    out, err = proc.communicate(command, timeout=10)
    return out, err


def test_prints_the_pty_first_answers_and_prints_stats_on_quit():
    proc = start("--tag", str(FIXTURES / "snes-ntag215.nfc"))
    path = proc.stdout.readline().strip()
    assert path.startswith("/dev/")
    assert ask(path, 0x02) == [Ack(), Frame(TFI_CHIP, bytes.fromhex("0332010607"))]
    out, err = finish(proc)
    assert proc.returncode == 0
    stats = json.loads(err.strip().splitlines()[-1])
    assert stats["bytes_in"] == 9 and stats["bytes_out"] == 19 and stats["commands"] == {"02": 1}
    assert "9 bytes in, 19 bytes out" in err


def test_link_stdin_place_remove_and_save_after_a_write(tmp_path):
    link, saved = tmp_path / "pn532", tmp_path / "out.json"
    proc = start("--link", str(link), "--save", str(saved), "--firmware", "1.4")
    assert proc.stdout.readline().strip() == str(link)
    assert ask(str(link), 0x02)[1].data == bytes.fromhex("0332010407")
    proc.stdin.write(f"place {FIXTURES / 'snes-ntag215.nfc'}\n")
    proc.stdin.flush()
    assert proc.stdout.readline().strip() == "ok place"
    assert ask(str(link), 0x4A, b"\x01\x00")[1].data[:3] == bytes.fromhex("4B0101")
    assert ask(str(link), 0x40, b"\x01\xa2\x04\xde\xad\xbe\xef")[1].data == b"\x41\x00"
    out, err = finish(proc, "bogus\nquit\n")
    assert proc.returncode == 0 and "unknown command 'bogus'" in err
    assert load(saved).memory[16:20] == bytes.fromhex("DEADBEEF")
    assert not link.exists()  # the link goes with the emulator


def test_a_script_places_the_tag_for_a_waiting_list(tmp_path):
    script = tmp_path / "taps.txt"
    script.write_text(f"wait 1.0\nplace {FIXTURES / 'smw-ntag213.nfc'}\n")
    proc = start("--script", str(script))
    path = proc.stdout.readline().strip()
    t0 = time.monotonic()  # the wait began about when the path was printed; half of it is certainly still to come
    got = ask(path, 0x4A, b"\x01\x00", timeout=5)
    assert got[1].data[6:] == bytes.fromhex("070416C6C2D73881") and time.monotonic() - t0 >= 0.5
    proc.send_signal(signal.SIGTERM)
    proc.wait(10)
    assert proc.returncode == 0


@pytest.mark.parametrize("args,message", [
    (["--tag", str(FIXTURES / "bad" / "truncated.nfc")], "page 18 missing"),
    (["--tag", "/nonexistent/tag.nfc"], "/nonexistent/tag.nfc"),
    (["--script", "/nonexistent/taps.txt"], "cannot read"),
])
def test_bad_input_is_a_clear_error_and_status_2(args, message):
    r = subprocess.run([sys.executable, "-m", "tagd", "sim", "pn532", *args], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr


def test_a_script_naming_a_missing_dump_names_its_line(tmp_path):
    script = tmp_path / "taps.txt"
    script.write_text("wait 0\nplace nothere.nfc\n")
    r = subprocess.run([sys.executable, "-m", "tagd", "sim", "pn532", "--script", str(script)], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 2 and "line 2: place: no such dump file" in r.stderr


def test_a_broken_dump_placed_from_stdin_is_reported_and_the_emulator_goes_on():
    proc = start()
    path = proc.stdout.readline().strip()
    proc.stdin.write(f"place {FIXTURES / 'bad' / 'not-a-dump.txt'}\n")
    proc.stdin.flush()
    assert "error: place:" in proc.stderr.readline()
    assert ask(path, 0x02)[1].data == bytes.fromhex("0332010607")
    finish(proc)
    assert proc.returncode == 0
