"""[readers.scan] on_scan / on_remove: commands (never a shell) that can veto a tap or keep the media running."""

from __future__ import annotations

import sys

from tagd.daemon.config import Config
import time

from tagd.daemon.hooks import hook_steps, run_hook
from test_pipeline import MARIO, ZELDA, make_rig  # noqa: F401 (fixture)

PY = sys.executable


def with_hooks(rig, mode="tap", **hooks):
    rig.p.config = Config.model_validate({"readers": {"scan": {"mode": mode, **hooks}}})


def test_hook_values_are_commands_split_without_a_shell():
    assert hook_steps("/bin/check --quiet 'a b'") == [("run", ["/bin/check", "--quiet", "a b"])]
    assert hook_steps("**execute:/bin/true") == [("run", ["/bin/true"])]
    assert hook_steps("**echo:hello") == [("skip", "**echo:hello")] and hook_steps("") == []


async def test_on_scan_hook_can_veto_a_tap(make_rig):
    rig = make_rig()
    with_hooks(rig, on_scan=f"{PY} -c 'import os, sys; sys.exit(os.environ[\"TAGD_TOKEN_TEXT\"] == \"{ZELDA.text}\")'")
    await rig.seen(ZELDA)
    await rig.gone()
    await rig.seen(MARIO)
    assert rig.fw.launched == [MARIO.text]


async def test_on_scan_hook_sees_tag_text_as_data_never_as_shell(tmp_path, make_rig):
    rig = make_rig()
    marker = tmp_path / "pwned"
    with_hooks(rig, on_scan=f"{PY} -c 'import sys; sys.exit(0)' $TAGD_TOKEN_TEXT")
    await rig.seen(MARIO.model_copy(update={"text": f"x; touch {marker}"}))
    assert not marker.exists() and len(rig.fw.launched) == 1


async def test_a_hook_that_hangs_is_killed_after_its_timeout_and_counts_as_no():
    assert await run_hook("on_scan", f"{PY} -c 'import time; time.sleep(30)'", MARIO, timeout=0.3) is False
    assert await run_hook("on_scan", "/no/such/command", MARIO) is False
    assert await run_hook("on_scan", "", MARIO) is True


async def test_on_remove_hook_can_keep_the_media_running_in_hold_mode(make_rig):
    rig = make_rig()
    with_hooks(rig, mode="hold", on_remove=f"{PY} -c 'import sys; sys.exit(1)'")
    await rig.seen(MARIO)
    await rig.gone()
    await rig.p._exit_task
    assert rig.fw.stops == 0
    with_hooks(rig, mode="hold", on_remove=f"{PY} -c 'import sys; sys.exit(0)'")
    await rig.seen(ZELDA)
    await rig.gone()
    await rig.p._exit_task
    assert rig.fw.stops == 1


def test_a_hook_script_of_delays_and_commands_is_read_in_order():
    assert hook_steps("**delay:1500||**execute:/bin/save 'a b'||**echo:hi") == [
        ("delay", 1.5), ("run", ["/bin/save", "a b"]), ("skip", "**echo:hi")]
    assert hook_steps("/bin/check a||b") == [("run", ["/bin/check", "a||b"])]  # not ZapScript: one command, no shell
    assert hook_steps("**delay:soon") == [("skip", "**delay:soon")]
    assert hook_steps("**delay:10||**execute:/bin/true") == [("delay", 0.01), ("run", ["/bin/true"])]


async def test_on_remove_waits_for_its_delay_then_runs_its_command(tmp_path):
    marker = tmp_path / "ran"
    t0 = time.monotonic()
    ok = await run_hook("on_remove", f"**delay:300||**execute:{PY} -c 'open(\"{marker}\", \"w\")'", MARIO)
    assert ok and marker.exists() and time.monotonic() - t0 >= 0.3


async def test_a_command_that_says_no_stops_the_hook_script(tmp_path):
    marker = tmp_path / "ran"
    script = f"**execute:{PY} -c 'raise SystemExit(3)'||**execute:{PY} -c 'open(\"{marker}\", \"w\")'"
    assert await run_hook("on_scan", script, MARIO) is False and not marker.exists()


async def test_hook_delays_are_capped(monkeypatch):
    slept = []

    async def fake_sleep(seconds):
        slept.append(seconds)

    monkeypatch.setattr("tagd.daemon.hooks.asyncio.sleep", fake_sleep)
    assert await run_hook("on_remove", "**delay:50000||**delay:50000||**delay:50000", MARIO) is True
    assert slept == [50.0, 10.0, 0.0]


async def test_skipped_hook_zapscript_is_named_once_and_its_arguments_never_logged(caplog):
    secret = "**http.get:https://example.invalid/hook?token=SECRET123"
    for _ in range(3):
        assert await run_hook("on_scan", secret + "||**delay:0", MARIO) is True
    skipped = [r.getMessage() for r in caplog.records if "skipped" in r.getMessage()]
    assert len(skipped) == 1 and "**http.get" in skipped[0]
    assert "SECRET123" not in caplog.text
