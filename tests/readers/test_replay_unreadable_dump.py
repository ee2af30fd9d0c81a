"""Issue 14, item 5: a replay timeline that places a dump tagd cannot read reports it once and goes on, and
`tagd scan --once` on it exits with the reason instead of waiting forever."""

import subprocess
import sys
import time

from conftest import FIXTURES
from tagd.readers.base import ReaderAdded, ReaderError, ReaderLost, ReaderWorker, TagSeen
from tagd.readers.replay import ReplayReader


def test_a_replay_timeline_with_an_unreadable_dump_exits_under_once(tmp_path):
    tl = tmp_path / "t.txt"
    tl.write_text(f"place {FIXTURES / 'bad' / 'iso15693.bin'}\n")
    t0 = time.monotonic()
    r = subprocess.run([sys.executable, "-m", "tagd", "scan", "--reader", f"replay:{tl}", "--once"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and r.stdout == "" and "Traceback" not in r.stderr
    assert r.stderr.startswith("tagd scan: timeline line 1: ") and "not a Type 2 tag image" in r.stderr
    assert time.monotonic() - t0 < 20


def test_an_unreadable_dump_is_reported_once_and_the_timeline_goes_on_without_starting_over(tmp_path):
    tl = tmp_path / "t.txt"
    tl.write_text(f"place {FIXTURES / 'smw-ntag213.nfc'}\nremove\nplace {FIXTURES / 'bad' / 'truncated.nfc'}\n"
                  f"place {FIXTURES / 'snes-ntag215.nfc'}\n")
    events = []
    worker = ReaderWorker(ReplayReader(str(tl)), events.append, retry=0.05).start()
    try:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and sum(isinstance(e, TagSeen) for e in events) < 2:
            time.sleep(0.02)
        time.sleep(0.3)  # a timeline that started over would tap smw again
    finally:
        worker.stop()
    texts = [e.token.text for e in events if isinstance(e, TagSeen)]
    lost = [e.reason for e in events if isinstance(e, ReaderLost)]
    assert texts == ["@SNES/Super Mario World", "**launch.system:snes"]
    assert len(lost) == 2 and lost[0].startswith("timeline line 3: ") and lost[1] == "stopped"
    assert sum(isinstance(e, ReaderAdded) for e in events) == 2


def test_the_replay_reader_raises_reader_error_naming_the_line_for_an_unreadable_dump(tmp_path):
    tl = tmp_path / "t.txt"
    tl.write_text(f"place {FIXTURES / 'bad' / 'iclass.bin'}\n")
    r = ReplayReader(str(tl))
    r.open()
    try:
        r.poll()
    except ReaderError as exc:
        assert str(exc).startswith("timeline line 1: ") and "BCC0" in str(exc)
    else:
        raise AssertionError("no ReaderError")
