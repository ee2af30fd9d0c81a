"""The launch guard in tagd's pipeline: while the core says media plays, taps are staged until confirmed."""

from __future__ import annotations

import asyncio

import pytest

from tagd.daemon.config import Config
from test_app import rpc
from test_api_transport import daemon, session  # noqa: F401 (fixtures)
from test_pipeline import MARIO, ZELDA, make_rig  # noqa: F401 (fixture)


def guarded(rig, **guard):
    settings = {"enabled": True, **guard}
    rig.p.config = Config.model_validate({"readers": {"scan": {"launch_guard": settings}}})
    rig.p.core_notification("media.started", {"systemId": "SNES", "mediaName": "Mario"})


async def test_launch_guard_stages_a_tap_while_media_plays_and_the_same_tag_again_launches_it(make_rig):
    rig = make_rig()
    guarded(rig)
    await rig.seen(ZELDA)
    assert rig.fw.launched == [] and "tokens.staged" in rig.methods()
    await rig.gone()
    await rig.seen(ZELDA)
    assert rig.fw.launched == [ZELDA.text]


async def test_launch_guard_delay_sends_staged_ready_and_a_retap_before_waits_again(make_rig):
    rig = make_rig()
    guarded(rig, delay=0.2)
    await rig.seen(ZELDA)
    await rig.gone()
    await rig.seen(ZELDA)  # too early: not launched, the delay starts again
    assert rig.fw.launched == []
    await asyncio.sleep(0.3)
    assert "tokens.staged.ready" in rig.methods()
    await rig.gone()
    await rig.seen(ZELDA)
    assert rig.fw.launched == [ZELDA.text]


async def test_launch_guard_require_confirm_launches_only_on_confirm(make_rig):
    rig = make_rig()
    guarded(rig, require_confirm=True)
    await rig.seen(ZELDA)
    await rig.gone()
    await rig.seen(ZELDA)
    assert rig.fw.launched == []
    await rig.p.confirm()
    assert rig.fw.launched == [ZELDA.text]
    with pytest.raises(LookupError, match="no staged token to confirm"):
        rig.p.confirm()


async def test_launch_guard_staged_token_lapses_after_the_timeout_and_when_media_stops(make_rig):
    rig = make_rig()
    guarded(rig, timeout=0.1)
    await rig.seen(ZELDA)
    await asyncio.sleep(0.2)
    assert rig.p.guard.staged is None
    await rig.gone()
    await rig.seen(MARIO)
    assert rig.p.guard.staged is not None
    rig.p.core_notification("media.stopped", {})
    assert rig.p.guard.staged is None


async def test_launch_guard_off_or_nothing_playing_launches_at_once(make_rig):
    rig = make_rig()
    guarded(rig)
    rig.p.core_notification("media.stopped", {})
    await rig.seen(ZELDA)
    assert rig.fw.launched == [ZELDA.text]


async def test_confirm_without_a_staged_token_is_an_error(daemon, session):  # noqa: F811
    err = (await rpc(session, daemon, "confirm"))["error"]
    assert err == {"code": 1, "message": "no staged token to confirm"}
