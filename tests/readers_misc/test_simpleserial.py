"""The simple serial reader through a real pty: the test writes SCAN lines on the master side."""

import os
import time
import tty

import pytest
from hypothesis import given, strategies as st

from conftest import Events
from tagd.readers.base import ReaderAdded, ReaderWorker, TagGone, TagSeen
from tagd.readers.simpleserial import ScanLine, SimpleSerialReader, parse_line


def test_parse_whole_args_are_text_without_keys():
    assert parse_line("SCAN\t**launch.system:snes\n") == ScanLine("", "**launch.system:snes")


def test_parse_keyed_args():
    assert parse_line("SCAN\tuid=04aa\ttext=@SNES/x\tremovable=no\r\n") == ScanLine("04aa", "@SNES/x", False)


@pytest.mark.parametrize("line", ["", "HELLO", "SCANX\tfoo", "SCAN\t", "SCAN\tuid=\ttext="])
def test_parse_rejects_unusable_lines(line):
    assert parse_line(line) is None


@given(st.text(max_size=200))
def test_parse_never_raises(line):
    r = parse_line(line)
    assert r is None or isinstance(r, ScanLine)


@pytest.fixture
def pty_reader():
    master, slave = os.openpty()
    tty.setraw(slave)
    events = Events()
    worker = ReaderWorker(SimpleSerialReader(os.ttyname(slave)), events.put, retry=0.1).start()
    next_event = events.wait

    next_event(ReaderAdded)
    yield master, next_event
    worker.stop()
    os.close(master)
    os.close(slave)


def test_scan_line_is_a_tap_and_silence_is_removal_after_1s(pty_reader):
    master, next_event = pty_reader
    os.write(master, b"SCAN\tuid=04aa\ttext=**launch.system:snes\n")
    seen = next_event(TagSeen)
    assert seen.token.text == "**launch.system:snes" and seen.token.uid == "04aa" and seen.token.type == "serial"
    t0 = time.monotonic()
    next_event(TagGone)
    assert 0.9 <= time.monotonic() - t0 < 1.5


def test_repeated_line_keeps_the_token_and_garbage_is_ignored(pty_reader):
    master, next_event = pty_reader
    for _ in range(6):
        os.write(master, b"\xff\xfegarbage\nSCAN\ttext=hold\tremovable=yes\n")
        time.sleep(0.3)
    seen = next_event(TagSeen)
    assert seen.token.text == "hold"
    next_event(TagGone)


def test_non_removable_token_stays_until_replaced(pty_reader):
    master, next_event = pty_reader
    os.write(master, b"SCAN\ttext=a\tremovable=no\n")
    next_event(TagSeen)
    time.sleep(1.5)
    os.write(master, b"SCAN\ttext=b\tremovable=no\n")
    next_event(TagGone)
    assert next_event(TagSeen).token.text == "b"
