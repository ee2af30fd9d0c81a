"""Issue 13 item 12: the file reader reads regular files only, size-capped, opened without following a symlink and
without blocking — a symlink to a secret is not token text, a FIFO does not hold up SIGTERM."""

from __future__ import annotations

import logging
import os
import time

from tagd.readers.base import ReaderWorker, TagSeen
from tagd.readers.file import MAX_SIZE, FileReader

from conftest import Events


def polled(reader, times=3):
    events = []
    for _ in range(times):
        events += reader.poll()
    return events


def test_a_symlink_to_a_secret_is_not_read(tmp_path, caplog):
    secret = tmp_path / "secret.key"
    secret.write_text("hunter2-private-key")
    tag = tmp_path / "tag.txt"
    tag.symlink_to(secret)
    r = FileReader(str(tag))
    r.open()
    with caplog.at_level(logging.WARNING):
        assert polled(r) == []
    assert "hunter2" not in caplog.text
    assert [rec.getMessage() for rec in caplog.records] == [f"file reader {tag}: a symlink, not a regular file; "
                                                             "read as no tag"]  # once, not per poll


def test_a_fifo_is_not_opened_and_stopping_is_prompt(tmp_path):
    fifo = tmp_path / "tag.fifo"
    os.mkfifo(fifo)
    events = Events()
    worker = ReaderWorker(FileReader(str(fifo)), events.put, retry=0.05).start()
    time.sleep(0.3)  # a few polls: a blocking open() would now be stuck waiting for a writer
    started = time.monotonic()
    worker.stop(timeout=5.0)
    assert time.monotonic() - started < 1.0


def test_a_device_is_not_read(tmp_path):
    r = FileReader("/dev/zero")
    r.open()
    assert polled(r, 2) == []


def test_a_file_over_the_size_cap_is_not_a_token(tmp_path):
    tag = tmp_path / "tag.txt"
    tag.write_text("x" * (MAX_SIZE + 1))
    r = FileReader(str(tag))
    r.open()
    assert polled(r, 2) == []
    tag.write_text("x" * MAX_SIZE)
    assert [type(e) for e in polled(r, 2)] == [TagSeen]


def test_a_regular_file_in_a_symlinked_directory_still_reads(tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    (tmp_path / "real" / "tag.txt").write_text("**launch.system:snes")
    r = FileReader(str(tmp_path / "link" / "tag.txt"))
    r.open()
    [seen] = polled(r, 1)
    assert seen.token.text == "**launch.system:snes"
