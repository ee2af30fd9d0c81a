"""The RS-232 barcode scanner (Zaparoo Core's rs232barcode): the line parser, and the reader through a real pty
(the test writes codes on the master side, as a scanner would)."""

import os
import tty

import pytest
from hypothesis import given, settings, strategies as st

from conftest import Events
from tagd.daemon.config import parse_config
from tagd.readers.barcode import BarcodeReader, parse_barcode
from tagd.readers.base import ReaderAdded, ReaderWorker, TagGone, TagSeen, open_reader


@pytest.mark.parametrize(("line", "code"), [
    ("4006381333931", "4006381333931"),
    ("  4006381333931 \r", "4006381333931"),
    ("\x02ABC-123\x03", "ABC-123"),  # STX/ETX framing, as Core strips it
    ("**launch.random:snes", "**launch.random:snes"),
])
def test_a_line_is_one_code_as_uid_text_and_data(line: str, code: str) -> None:
    scan = parse_barcode(line)
    assert (scan.uid, scan.text, scan.line, scan.removable) == (code, code, code, False)


@pytest.mark.parametrize("line", ["", "   ", "\r", "\x02\x03"])
def test_an_empty_line_is_no_scan(line: str) -> None:
    assert parse_barcode(line) is None


@settings(max_examples=200)
@given(st.text(max_size=200))
def test_the_parser_never_raises(line: str) -> None:
    assert parse_barcode(line) is None or parse_barcode(line).uid


def test_cores_driver_name_opens_it_at_9600_baud() -> None:
    config = parse_config('[[readers.connect]]\ndriver = "rs232_barcode"\npath = "/dev/ttyUSB0"\n')
    reader = open_reader(config.readers.connect_strings()[0])
    try:
        assert isinstance(reader, BarcodeReader) and reader.transport.baud == 9600
    finally:
        reader.dispose()


@pytest.fixture
def scanner():
    master, slave = os.openpty()
    tty.setraw(slave)
    events = Events()
    worker = ReaderWorker(BarcodeReader(os.ttyname(slave)), events.put, retry=0.1).start()
    added = events.wait(ReaderAdded)
    yield master, events, added.info
    worker.stop()
    os.close(master)
    os.close(slave)


def test_codes_ended_by_cr_are_taps_that_stay_until_the_next_code(scanner) -> None:
    master, events, info = scanner
    assert info.driver == "rs232barcode" and info.reader_id.startswith("rs232barcode-")
    os.write(master, b"4006381333931\r")
    seen = events.wait(TagSeen)
    assert (seen.token.uid, seen.token.text, seen.token.type) == ("4006381333931", "4006381333931", "Barcode")
    os.write(master, b"4006381333931\r\n")  # the same code again: still the active token
    with pytest.raises(AssertionError):
        events.wait(TagGone, timeout=1.5)  # nothing to lift: no removal after the simple serial's 1 s
    os.write(master, b"\x02ABC-123\x03\n")
    events.wait(TagGone)
    assert events.wait(TagSeen).token.text == "ABC-123"
