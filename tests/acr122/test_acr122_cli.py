"""`tagd sim acr122` as a user runs it: a timeline, stdin commands, --save, and clear errors for bad input."""

import subprocess
import sys

from conftest import FIXTURES, Events
from pcsc_harness import READER, pcscd  # noqa: F401  (fixture)
from tagd.ndef.decode import decode_dump
from tagd.ndef.dumps import load
from tagd.readers.base import ReaderAdded, ReaderWorker, TagGone, TagSeen, WriteRequest, open_reader


def sim(*args, **kw):
    return subprocess.Popen([sys.executable, "-m", "tagd", "sim", "acr122", *args], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def test_timeline_stdin_and_save(pcscd, tmp_path):  # noqa: F811
    script = tmp_path / "taps.txt"
    script.write_text(f"wait 1.0\nremove\nwait 0.2\nplace {FIXTURES / 'factory-ntag213.nfc'}\n")
    saved = tmp_path / "out.json"
    events = Events()
    worker = ReaderWorker(open_reader(f"acr122:{READER}"), events.put, retry=0.3).start()
    events.wait(ReaderAdded)
    proc = sim("--tag", str(FIXTURES / "snes-ntag215.nfc"), "--port", str(pcscd.port), "--script", str(script),
               "--save", str(saved))
    try:
        assert events.wait(TagSeen).token.text == "**launch.system:snes"
        events.wait(TagGone)
        assert events.wait(TagSeen).token.text == ""  # the factory NTAG213 from the timeline
        assert worker.submit_write(WriteRequest("**launch.system:cli", timeout=5)).result(30).written
        out, err = proc.communicate("stats\nquit\n", timeout=15)
        assert proc.returncode == 0, err
        assert '"apdus"' in out and "Traceback" not in err
        assert decode_dump(load(saved)).text == "**launch.system:cli"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        worker.stop()


def test_bad_input_is_a_clear_error(tmp_path):
    cases = []
    bad_script = tmp_path / "bad.txt"
    bad_script.write_text("unplug\n")
    cases.append((["--tag", str(FIXTURES / "snes-ntag215.nfc"), "--script", str(bad_script)], "cannot be unplugged"))
    cases.append((["--tag", str(tmp_path / "missing.nfc"), "--port", "1"], "missing.nfc"))
    cases.append((["--tag", str(FIXTURES / "bad" / ".." / "README.md"), "--port", "1"], "README.md"))
    free = __import__("pcsc_harness")._free_port()
    cases.append((["--tag", str(FIXTURES / "snes-ntag215.nfc"), "--port", str(free)], "is pcscd running"))
    for args, message in cases:
        proc = sim(*args)
        out, err = proc.communicate("", timeout=15)
        assert proc.returncode == 2 and message in err and "Traceback" not in err, (args, err)
