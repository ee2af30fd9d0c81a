"""Which outcome of a tap is shown to the person at the reader (pipeline ``feedback``, daemon/feedback.py).

The reader side (the ACR122U's LED and buzzer) is tests/acr122/test_acr122_scan_feedback.py.
"""

from __future__ import annotations

import asyncio
import sys
import types

import pytest

from tagd.daemon.config import Config, ConfigError
from tagd.daemon.config.loading import parse_config
from tagd.daemon.feedback import ScanFeedback
from tagd.token import Token
from test_pipeline import MARIO, RID, ZELDA, FakeForwarder, make_rig, rig  # noqa: F401 (fixtures)


def told(rig) -> list[tuple[str, bool]]:
    rig.outcomes = []
    rig.p.feedback = lambda reader_id, ok: rig.outcomes.append((reader_id, ok))
    return rig.outcomes


async def test_a_forwarded_tap_is_a_success_and_a_failed_one_a_failure(make_rig):
    rig = make_rig(forwarders=[FakeForwarder("bad", fail=True)])
    outcomes = told(rig)
    await rig.seen(MARIO)
    good = make_rig()
    good_outcomes = told(good)
    await good.seen(MARIO)
    assert outcomes == [(RID, False)] and good_outcomes == [(RID, True)]


async def test_an_api_run_is_not_a_tap_and_shows_nothing(rig):
    outcomes = told(rig)
    await rig.p.run_token(Token(text="**launch:x", reader_id=RID))
    assert outcomes == []


async def test_an_on_scan_veto_is_a_failure(rig):
    outcomes = told(rig)
    rig.p.config = Config.model_validate({"readers": {"scan": {"on_scan": f"{sys.executable} -c 'raise SystemExit(3)'"}}})
    await rig.seen(ZELDA)
    assert rig.fw.launched == [] and outcomes == [(RID, False)]


async def test_a_tap_the_launch_guard_stages_shows_as_pending_then_its_launch_as_a_success(rig):
    outcomes = told(rig)
    rig.p.config = Config.model_validate({"readers": {"scan": {"launch_guard": {"enabled": True}}}})
    rig.p.core_notification("media.started", {"systemId": "SNES"})
    await rig.seen(ZELDA)
    await rig.gone()
    await rig.seen(ZELDA)
    assert outcomes == [(RID, None), (RID, True)]


async def test_run_zapscript_off_shows_nothing(rig):
    outcomes = told(rig)
    rig.p.config = rig.config.model_copy(update={"run_zapscript": False})
    await rig.seen(MARIO)
    assert outcomes == []


async def test_arming_a_next_tag_write_is_a_success_and_an_invalid_one_a_failure(rig):
    outcomes = told(rig)
    await rig.seen(Token(uid="04cc", text="**write:hello"))
    await rig.gone()
    await rig.seen(Token(uid="04dd", text="**write:"))
    assert outcomes == [(RID, True), (RID, False)]


class Reader:
    def __init__(self):
        self.shown: list[bool] = []

    def signal(self, ok):
        self.shown.append(ok)


def audio(**values):
    return Config.model_validate({"audio": values}).audio


async def test_scan_feedback_signals_the_reader_and_plays_the_sound_command_only_when_on(tmp_path):
    reader, out = Reader(), tmp_path / "played"
    write = [sys.executable, "-c", "import sys; open(sys.argv[1], 'a').write(sys.argv[2])", str(out)]
    settings = {"scan_feedback": True, "success_command": [*write, "S"], "fail_command": [*write, "F"]}
    feedback = ScanFeedback(lambda rid: reader if rid == RID else None, lambda: audio(**settings))
    feedback(RID, True)
    feedback(RID, False)
    feedback("another-node-reader", True)  # no reader object here: the sound still plays
    await asyncio.gather(*feedback._sounds)
    assert reader.shown == [True, False] and sorted(out.read_text()) == ["F", "S", "S"]
    settings["scan_feedback"] = False
    feedback(RID, True)
    assert not feedback._sounds and reader.shown == [True, False, True]  # the LED still tells; no sound
    await feedback.close()


async def test_a_sound_command_that_hangs_is_killed_and_one_that_is_missing_is_logged(tmp_path, caplog, monkeypatch):
    import tagd.daemon.feedback as module

    monkeypatch.setattr(module, "SOUND_TIMEOUT", 0.2)
    hang = {"scan_feedback": True, "success_command": [sys.executable, "-c", "import time; time.sleep(30)"],
            "fail_command": [str(tmp_path / "no-such-player")]}
    feedback = ScanFeedback(lambda rid: None, lambda: audio(**hang))
    feedback(RID, True)
    feedback(RID, False)
    await asyncio.wait_for(asyncio.gather(*feedback._sounds), 5)
    assert "did not finish within 0.2 s: killed" in caplog.text and "could not start" in caplog.text


async def test_a_reader_that_fails_to_signal_does_not_break_the_tap(caplog):
    broken = types.SimpleNamespace(signal=lambda ok: 1 / 0)
    ScanFeedback(lambda rid: broken, lambda: audio())(RID, True)
    assert "showing the tap's outcome failed" in caplog.text


def test_sound_commands_must_name_a_program():
    with pytest.raises(ConfigError, match="success_command.*name the program"):
        parse_config('[audio]\nsuccess_command = [" ", "x"]\n', "config.toml")
    with pytest.raises(ConfigError, match="fail_command"):
        parse_config('[audio]\nfail_command = "paplay x"\n', "config.toml")
