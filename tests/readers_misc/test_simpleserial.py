"""The simple serial reader: the SCAN line parser, the line splitter, and the reader through a real pty
(the test writes lines on the master side, as a microcontroller would)."""

import os
import time
import tty

import pytest
from hypothesis import given, settings, strategies as st

from conftest import Events
from tagd.readers.base import ReaderAdded, ReaderWorker, TagGone, TagSeen, open_reader
from tagd.readers.simpleserial import REMOVE, LineSplitter, ScanLine, SimpleSerialReader, parse_line


# --- the line parser --------------------------------------------------------

def test_parse_whole_args_are_text_without_named_args():
    assert parse_line("SCAN\t**launch.system:snes\n").key == ("", "**launch.system:snes")


def test_parse_named_args():
    scan = parse_line("SCAN\tuid=04aa\ttext=@SNES/x\tremovable=no\r\n")
    assert (scan.uid, scan.text, scan.removable) == ("04aa", "@SNES/x", False)


def test_parse_keeps_the_whole_line_as_data():
    assert parse_line("SCAN\ttext=a b\n").line == "SCAN\ttext=a b"


def test_parse_removable_is_unset_unless_the_line_says_so():
    assert parse_line("SCAN\ttext=a").removable is None
    assert parse_line("SCAN\ttext=a\tremovable=yes").removable is True
    assert parse_line("SCAN\ttext=a\tremovable=whatever").removable is True


def test_parse_text_may_contain_equals_when_named():
    assert parse_line("SCAN\ttext=**input.keyboard:a=b").text == "**input.keyboard:a=b"


def test_parse_unnamed_text_with_equals_stays_whole():
    assert parse_line("SCAN\tNES/a=b").text == "NES/a=b"


def test_parse_bare_scan_is_the_explicit_removal():
    assert parse_line("SCAN\r\n") is REMOVE


@pytest.mark.parametrize("line", ["", "HELLO", "SCANX\tfoo", "SCAN foo", "scan\tfoo", "SCAN\tuid=\ttext=",
                                  "SCAN\tremovable=no"])
def test_parse_rejects_lines_without_a_token(line):
    assert parse_line(line) is None


@settings(max_examples=200)
@given(st.text(max_size=200))
def test_parse_never_raises(line):
    r = parse_line(line)
    assert r is None or isinstance(r, ScanLine)


@settings(max_examples=200)
@given(st.text(alphabet=st.characters(blacklist_characters="\t\r\n", blacklist_categories=("Cs",)), min_size=1,
               max_size=40).filter(lambda s: s.strip() == s and s.strip()),
       st.text(alphabet="0123456789abcdef", max_size=14))
def test_parse_round_trips_uid_and_text(text, uid):
    scan = parse_line(f"SCAN\tuid={uid}\ttext={text}\n")
    assert scan.key == (uid, text)


# --- the line splitter ------------------------------------------------------

@settings(max_examples=200)
@given(st.lists(st.binary(max_size=30).filter(lambda b: b"\n" not in b), max_size=10), st.data())
def test_splitter_gives_back_the_lines_whatever_the_chunking(lines, data):
    stream = b"".join(line + b"\n" for line in lines)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=8)))
    splitter, out, start = LineSplitter(), [], 0
    for cut in cuts + [len(stream)]:
        out += splitter.feed(stream[start:cut])
        start = cut
    assert out == lines


def test_splitter_drops_an_overlong_line_up_to_its_newline():
    splitter = LineSplitter(limit=16)
    out = splitter.feed(b"SCAN\t" + b"x" * 20)
    out += splitter.feed(b"SCAN\ttext=tail\nSCAN\tok\n")
    assert out == [b"SCAN\tok"]


@settings(max_examples=100)
@given(st.lists(st.binary(max_size=300), max_size=20))
def test_splitter_never_raises_and_bounds_its_buffer(chunks):
    splitter = LineSplitter(limit=64)
    for chunk in chunks:
        for line in splitter.feed(chunk):
            assert len(line) <= 64
        assert len(splitter.buf) <= 64


# --- the reader through a pty -------------------------------------------------

@pytest.fixture
def pty_reader():
    master, slave = os.openpty()
    tty.setraw(slave)
    events = Events()
    worker = ReaderWorker(SimpleSerialReader(os.ttyname(slave)), events.put, retry=0.1).start()
    events.wait(ReaderAdded)
    yield master, events.wait
    worker.stop()
    os.close(master)
    os.close(slave)


def test_scan_line_is_a_tap_and_silence_is_removal_after_1s(pty_reader):
    master, next_event = pty_reader
    os.write(master, b"SCAN\tuid=04aa\ttext=**launch.system:snes\n")
    seen = next_event(TagSeen)
    assert seen.token.text == "**launch.system:snes" and seen.token.uid == "04aa" and seen.token.type == "serial"
    assert seen.token.data == "SCAN\tuid=04aa\ttext=**launch.system:snes"
    t0 = time.monotonic()
    next_event(TagGone)
    assert 0.9 <= time.monotonic() - t0 < 3.0


def test_repeated_line_keeps_the_token_and_garbage_is_ignored(pty_reader):
    master, next_event = pty_reader
    for _ in range(6):
        os.write(master, b"\xff\xfegarbage\nSCAN\ttext=hold\tremovable=yes\n" + b"z" * 5000 + b"\n")
        last_write = time.monotonic()
        time.sleep(0.3)
    seen = next_event(TagSeen)
    assert seen.token.text == "hold"
    next_event(TagGone)
    assert time.monotonic() - last_write > 0.9  # only once the repeats stopped


def test_non_removable_token_stays_until_replaced(pty_reader):
    master, next_event = pty_reader
    os.write(master, b"SCAN\ttext=a\tremovable=no\n")
    next_event(TagSeen)
    time.sleep(1.3)
    os.write(master, b"SCAN\ttext=b\n")  # removable=no sticks: b stays too
    next_event(TagGone)
    assert next_event(TagSeen).token.text == "b"
    with pytest.raises(AssertionError, match="no TagGone"):
        next_event(TagGone, timeout=1.3)


def test_bare_scan_removes_at_once(pty_reader):
    master, next_event = pty_reader
    os.write(master, b"SCAN\ttext=a\tremovable=no\n")
    next_event(TagSeen)
    t0 = time.monotonic()
    os.write(master, b"SCAN\n")
    next_event(TagGone)
    assert time.monotonic() - t0 < 0.8  # well before the 1 s silence timeout


def test_zaparoo_driver_name_simple_serial_is_accepted():
    reader = open_reader("simple_serial:/dev/ttyUSB9")
    assert isinstance(reader, SimpleSerialReader)
    reader.dispose()


async def test_simple_serial_reader_feeds_the_daemon_pipeline(tmp_path):
    import asyncio

    from tagd.daemon.config import Config
    from tagd.daemon.service import Daemon

    master, slave = os.openpty()
    tty.setraw(slave)
    config = Config.model_validate({"readers": {"auto_detect": False}, "database": str(tmp_path / "t.db"),
                                    "api": {"listen": "127.0.0.1:0"}})
    d = Daemon(config, tmp_path / "c.toml", extra_readers=[f"simpleserial:{os.ttyname(slave)}"])
    await d.start()
    try:
        for _ in range(50):
            if d.reader_infos():
                break
            await asyncio.sleep(0.05)
        assert d.reader_infos()[0].driver == "simpleserial"
        os.write(master, b"SCAN\tuid=04aa\ttext=**launch.system:snes\n")
        for _ in range(50):
            if d.store.history(1):
                break
            await asyncio.sleep(0.05)
        assert d.store.history(1)[0].text == "**launch.system:snes"
    finally:
        await d.stop()
        os.close(master)
        os.close(slave)
