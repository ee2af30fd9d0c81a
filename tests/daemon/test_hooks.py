"""[readers.scan] on_scan / on_remove: commands (never a shell) that can veto a tap or keep the media running."""

from __future__ import annotations

import sys

from tagd.daemon.config import Config
from tagd.daemon.hooks import hook_argv, run_hook
from test_pipeline import MARIO, ZELDA, make_rig  # noqa: F401 (fixture)

PY = sys.executable


def with_hooks(rig, mode="tap", **hooks):
    rig.p.config = Config.model_validate({"readers": {"scan": {"mode": mode, **hooks}}})


def test_hook_values_are_commands_split_without_a_shell():
    assert hook_argv("/bin/check --quiet 'a b'") == ["/bin/check", "--quiet", "a b"]
    assert hook_argv("**execute:/bin/true") == ["/bin/true"]
    assert hook_argv("**echo:hello") is None and hook_argv("") is None


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
