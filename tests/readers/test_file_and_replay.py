import time

import pytest

from conftest import FIXTURES
from tagd.readers.base import ReaderError, TagGone, TagSeen, WriteRequest
from tagd.readers.file import FileReader
from tagd.readers.replay import ReplayReader
from tagd.sim.timeline import TimelineError, parse


def poll_until(reader, kind, timeout=2.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for ev in reader.poll():
            if isinstance(ev, kind):
                return ev
    raise AssertionError(f"no {kind.__name__}")


def test_file_reader_content_is_the_token_and_emptying_removes_it(tmp_path):
    f = tmp_path / "tag.txt"
    r = FileReader(str(f))
    r.open()
    assert r.poll() == []  # a missing file is no token, not an error
    f.write_text("  **launch.system:snes\n")
    seen = poll_until(r, TagSeen)
    assert seen.token.text == "**launch.system:snes" and seen.token.type == "file"
    f.write_text("")
    poll_until(r, TagGone)


def test_file_reader_change_of_content_is_a_new_tap(tmp_path):
    f = tmp_path / "tag.txt"
    f.write_text("a")
    r = FileReader(str(f))
    r.open()
    poll_until(r, TagSeen)
    f.write_text("b")
    evs = []
    deadline = time.monotonic() + 1
    while not any(isinstance(e, TagSeen) for e in evs) and time.monotonic() < deadline:
        evs += r.poll()
    assert isinstance(evs[0], TagGone) and evs[1].token.text == "b"


def test_timeline_parse_errors_name_the_line():
    with pytest.raises(TimelineError, match="line 2: unknown command 'jump'"):
        parse("place a.nfc\njump\n", "t.txt")
    with pytest.raises(TimelineError, match="line 1: wait needs seconds"):
        parse("wait soon", "t.txt")


def test_replay_reader_plays_the_timeline_and_writes_in_memory(tmp_path):
    tl = tmp_path / "t.txt"
    tl.write_text(f"place {FIXTURES / 'snes-ntag215.nfc'}\nwait 0.05\nremove\nplace {FIXTURES / 'genesis-classic1k.nfc'}\n")
    r = ReplayReader(str(tl))
    r.open()
    assert poll_until(r, TagSeen).token.text == "**launch.system:snes"
    poll_until(r, TagGone)
    assert poll_until(r, TagSeen).token.text == "**launch.random:genesis"
    seen = r.write(WriteRequest("**launch.system:md"))
    assert seen.written and seen.token.text == "**launch.system:md"


def test_replay_reader_with_a_broken_dump_reports_reader_error(tmp_path):
    tl = tmp_path / "t.txt"
    tl.write_text(f"place {FIXTURES / 'bad' / 'truncated.nfc'}\n")
    r = ReplayReader(str(tl))
    r.open()
    with pytest.raises(ReaderError, match="line 1"):
        r.poll()


def test_worker_hands_the_written_tag_to_the_sink_before_the_write_resolves(tmp_path):
    """readers.write answers when the future resolves; the pipeline must already hold the written tag by then."""
    from tagd.readers.base import ReaderWorker

    tl = tmp_path / "t.txt"
    tl.write_text(f"place {FIXTURES / 'snes-ntag215.nfc'}\n")
    pending = []
    order = []

    def sink(event):
        if isinstance(event, TagSeen) and event.written:
            order.append(("emitted", pending[0].done()))

    worker = ReaderWorker(ReplayReader(str(tl)), sink, retry=0.1).start()
    try:
        deadline = time.monotonic() + 2
        while not worker.connected and time.monotonic() < deadline:
            time.sleep(0.01)
        fut = worker.submit_write(WriteRequest("**launch.system:md"))
        pending.append(fut)
        assert fut.result(timeout=2).token.text == "**launch.system:md"
        assert order == [("emitted", False)]  # emitted while the future was still pending
    finally:
        worker.stop()


def test_stopping_a_worker_ends_a_write_that_waits_for_a_tag(tmp_path):
    """Shutdown must not wait out a pending readers.write (it took the whole join timeout, 5 s, before)."""
    from concurrent.futures import TimeoutError as FutureTimeout

    from conftest import until
    from tagd.readers.base import ReaderWorker, WriteCancelled

    tl = tmp_path / "t.txt"
    tl.write_text("wait 60\n")
    worker = ReaderWorker(ReplayReader(str(tl)), lambda event: None, retry=0.1).start()
    assert until(lambda: worker.connected)
    fut = worker.submit_write(WriteRequest("**launch.system:md", timeout=30))
    assert until(lambda: fut.running())
    with pytest.raises(FutureTimeout):
        fut.result(timeout=0.2)  # really waiting for a tag
    started = time.monotonic()
    worker.stop()
    assert time.monotonic() - started < 2.0
    assert not worker._thread.is_alive()
    with pytest.raises(WriteCancelled):
        fut.result(timeout=0)
