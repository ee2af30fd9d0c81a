"""Timelines: parsing (errors name the line and the reason) and playing against a target."""

from __future__ import annotations

import threading
import time

import pytest

from tagd.sim.timeline import Step, TimelineError, load, parse, run


def test_parse_resolves_paths_against_the_timeline_folder_and_skips_comments(tmp_path):
    steps = parse("# demo\n\nplace snes.nfc   # the first tap\nwait 1.5\nremove\nplace /abs/x.bin\nunplug\nreplug\n",
                  str(tmp_path / "t.txt"))
    assert steps == [Step(3, "place", str(tmp_path / "snes.nfc")), Step(4, "wait", 1.5), Step(5, "remove"),
                     Step(6, "place", "/abs/x.bin"), Step(7, "unplug"), Step(8, "replug")]


@pytest.mark.parametrize("text,message", [
    ("place a.nfc\njump\n", "line 2: unknown command 'jump'"),
    ("place\n", "line 1: place needs an argument"),
    ("remove now\n", "line 1: remove takes no argument"),
    ("wait soon\n", "line 1: wait needs seconds, got 'soon'"),
    ("wait -1\n", "line 1: wait -1.0 is out of range"),
    ("loop\nremove\n", "line 1: loop must be the last command"),
])
def test_parse_errors_name_the_line_and_the_reason(text, message):
    with pytest.raises(TimelineError, match=message) as exc:
        parse(text, "t.txt")
    assert str(exc.value).startswith("t.txt: line ")


def test_load_reports_a_missing_dump_with_its_line(tmp_path):
    (tmp_path / "here.nfc").write_text("x")
    t = tmp_path / "t.txt"
    t.write_text("place here.nfc\nwait 0\nplace gone.nfc\n")
    with pytest.raises(TimelineError, match=r"line 3: place: no such dump file .*gone\.nfc"):
        load(t)
    assert len(load(t, check_files=False)) == 3


def test_load_of_an_unreadable_file_is_a_timeline_error(tmp_path):
    with pytest.raises(TimelineError, match="cannot read"):
        load(tmp_path / "missing.txt")
    (tmp_path / "bin.txt").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(TimelineError, match="cannot read"):
        load(tmp_path / "bin.txt")


class Recorder:
    def __init__(self):
        self.calls = []

    def place(self, path):
        if path.endswith("bad.nfc"):
            raise ValueError("not a tag dump")
        self.calls.append(("place", path))

    def remove(self):
        self.calls.append(("remove",))

    def unplug(self):
        self.calls.append(("unplug",))

    def replug(self):
        self.calls.append(("replug",))


def test_run_plays_steps_in_order_with_their_waits():
    target = Recorder()
    t0 = time.monotonic()
    run(parse("place /a.nfc\nwait 0.1\nremove\nunplug\nreplug\n", "t"), target)
    assert target.calls == [("place", "/a.nfc"), ("remove",), ("unplug",), ("replug",)]
    assert time.monotonic() - t0 >= 0.1


def test_a_failing_step_is_reported_and_the_timeline_goes_on():
    target, errors = Recorder(), []
    run(parse("place /bad.nfc\nremove\n", "t"), target, on_error=lambda step, exc: errors.append((step.line, str(exc))))
    assert errors == [(1, "not a tag dump")] and target.calls == [("remove",)]


def test_loop_repeats_until_stopped():
    target, stop = Recorder(), threading.Event()
    thread = threading.Thread(target=run, args=(parse("place /a.nfc\nwait 0.01\nremove\nloop\n", "t"), target, stop))
    thread.start()
    time.sleep(0.2)
    stop.set()
    thread.join(2)
    assert not thread.is_alive() and target.calls.count(("remove",)) >= 3


def test_stop_interrupts_a_long_wait():
    stop = threading.Event()
    thread = threading.Thread(target=run, args=(parse("wait 60\nremove\n", "t"), Recorder(), stop))
    thread.start()
    stop.set()
    thread.join(2)
    assert not thread.is_alive()
