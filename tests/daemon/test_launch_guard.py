"""The launch guard in tagd's pipeline: while the core says media plays, taps are staged until confirmed."""

from __future__ import annotations

import asyncio

import pytest

from tagd.daemon.config import Config
from tagd.daemon.mappings import MappingTable
from tagd.daemon.zapscript import media_disrupting
from tagd.token import Token
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


# Core's scriptHasMediaDisruptingCommand (service/queues_helpers.go) over go-zapscript's commands
@pytest.mark.parametrize("script,disrupting", [
    ("**launch.system:snes", True), ("SNES/Super Mario World.sfc", True), ("@SNES/Super Mario World", True),
    ("https://zaparoo.org/game.zip", True), ("**launch.random:snes", True), ("**random:snes", True),
    ("**mister.mgl:x.mgl", True), ("**stop", True), ("**PLAYLIST.NEXT", True), ("**delay:500||**launch:x", True),
    ("**input.coinp1", False), ("**input.keyboard:abc||**input.coinp2", False), ("**execute:ls", False),
    ("**echo:hi", False), ("**delay:500", False), ("**http.get:https://x/?a=1", False),
    ('**input.keyboard:"a||@SNES/x"', False), ("**echo:[[a||b]]", False), ("#players=2", False),
    ("**stop?slot=background", False), ("**launch:music.mp3?slot=BG", False), ("**launch:x.sfc?slot=primary", True),
    ("", True), ('{"cmds":[]}', True), ('**input.keyboard:"abc', True),  # cannot parse: staged, as Core
    ("**:x", True), ("**la unch", True),  # not a command name: an auto-launch path
    ('**http.post:http://x,application/json,{"a":"x||y"}', False),  # || inside a JSON argument splits nothing
    ('**http.post:http://x,application/json,{"a":1', True),  # a JSON argument that never closes: cannot parse
    ('**launch:"/m/a?slot=bg.mp3"', True),  # the slot is in the quoted path, not an advanced argument
])
def test_which_scripts_the_launch_guard_stages(script, disrupting):
    assert media_disrupting(script) is disrupting


async def test_launch_guard_lets_a_coin_through_while_media_plays_and_keeps_the_staged_token(make_rig):
    rig = make_rig()
    guarded(rig)
    await rig.seen(ZELDA)
    await rig.gone()
    coin = Token(uid="04cc", text="**input.coinp1", type="NTAG")
    await rig.seen(coin)
    assert rig.fw.launched == [coin.text] and rig.p.guard.staged.key == ZELDA.key
    await rig.gone()
    await rig.seen(ZELDA)
    assert rig.fw.launched == [coin.text, ZELDA.text]


async def test_launch_guard_judges_the_mapped_script_not_the_tag_text(make_rig):
    rig = make_rig()
    guarded(rig)
    rig.store.add_mapping(type="text", match="exact", pattern="**launch:zelda", override="**input.coinp1")
    rig.p.reload_mappings(MappingTable.from_config([]))
    await rig.seen(ZELDA)  # its text launches, but it is mapped to a coin: through at once
    assert rig.fw.launched == ["**input.coinp1"] and rig.p.guard.staged is None
    await rig.gone()
    await rig.seen(MARIO)
    assert rig.fw.launched == ["**input.coinp1"] and rig.p.guard.staged.key == MARIO.key
