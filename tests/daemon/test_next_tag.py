"""Next-tag actions: ``**write:TEXT`` arms a write that tagd does to the next tag tapped (Core's pending write);
``**launch?launcher=ID`` arms a launcher for the next tap that launches (Core's launch override)."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, strategies as st

from conftest import FIXTURES
from tagd.daemon.nexttag import PENDING_WRITE_TTL
from tagd.daemon.zapscript import Invalid, NextLauncher, NextWrite, next_action, with_launcher
from tagd.readers.base import WriteError
from tagd.sim.tags import EmulatedTag
from tagd.token import Token
from test_api_write import call, eventually, rig  # noqa: F401 (fixture)
from test_pipeline import MARIO, RID, ZELDA, make_rig  # noqa: F401 (fixture)

WRITER = Token(uid="04cc", text="**write:@SNES/Super Mario World", type="NTAG")


@pytest.mark.parametrize("text, expected", [
    ("**launch?launcher=RetroArch", NextLauncher("RetroArch")),
    ("  **LAUNCH?Launcher=MiSTer  ", NextLauncher("MiSTer")),
    ("**launch?launcher=", None),  # no launcher: not an override (Core runs it, and it fails there)
    ("**launch?launcher=a&system=snes", None),  # another advanced argument: not an override
    ("**launch:game.sfc?launcher=a", None),  # a launch with an argument: launched with that launcher now
    ("**launch?launcher=a||**echo:b", None),  # two commands
    ("**launch?launcher=[[launcher.id]]", Invalid),
    ("**launch?launcher=x^", Invalid), ("**launch?launcher={", None), ("**launch?launcher=a#b", Invalid),
    ("**launch?launcher=x\n**stop", Invalid),  # tag text must not change how the next tag's script reads
])
def test_which_scripts_are_launcher_overrides(text, expected):
    got = next_action(text)
    assert isinstance(got, Invalid) if expected is Invalid else got == expected


@pytest.mark.parametrize("text, expected", [
    ("SNES/game.sfc", "SNES/game.sfc?launcher=RA"),
    ("**launch.random:snes", "**launch.random:snes?launcher=RA"),
    ("@SNES/Mario?tags=x", "@SNES/Mario?tags=x&launcher=RA"),
    ("**launch:x?launcher=old", "**launch:x?launcher=RA"),
    ("**input.coinp1||SNES/x.sfc", "**input.coinp1||SNES/x.sfc?launcher=RA"),  # the first command that launches
    ("**launch.random:snes?launcher=a&slot=bg", "**launch.random:snes?slot=bg&launcher=RA"),  # others kept
    ('**launch:"/games/a?b=c.sfc"', '**launch:"/games/a?b=c.sfc"?launcher=RA'),  # a ? inside quotes is the path's
    ('**http.post:http://x,application/json,{"a":"x||y"}||**launch.random:snes',
     '**http.post:http://x,application/json,{"a":"x||y"}||**launch.random:snes?launcher=RA'),  # || in JSON
    ("**launch.system:snes", None),  # Core: launch.system opens a system menu, no launcher override
    ("**input.coinp1", None), ("**stop", None),
])
def test_the_override_goes_on_the_first_command_that_launches_a_game(text, expected):
    assert with_launcher(text, "RA") == expected


async def test_a_launcher_tag_arms_the_next_tap_that_launches_and_only_that_one(make_rig):
    rig = make_rig()
    await rig.seen(Token(uid="04ee", text="**launch?launcher=RetroArch", type="NTAG"))
    assert rig.fw.launched == [] and rig.p.pending_launcher == "RetroArch"
    assert rig.store.history(1)[0].success is True
    await rig.gone()
    coin = Token(uid="04ff", text="**input.coinp1", type="NTAG")
    await rig.seen(coin)  # launches no game: the override waits
    await rig.gone()
    await rig.seen(MARIO)
    await rig.gone()
    await rig.seen(ZELDA)
    assert rig.fw.launched == [coin.text, MARIO.text + "?launcher=RetroArch", ZELDA.text]
    assert rig.store.history(1)[0].text == ZELDA.text and rig.p.pending_launcher is None


async def test_an_api_run_does_not_use_up_the_armed_launcher(make_rig):
    rig = make_rig()
    await rig.seen(Token(uid="04ee", text="**launch?launcher=RetroArch", type="NTAG"))
    await rig.p.run_token(Token(text="**launch:api", type="api"))
    assert rig.fw.launched == ["**launch:api"] and rig.p.pending_launcher == "RetroArch"


@pytest.mark.parametrize("text, expected", [
    ("**write:@SNES/Super Mario World", NextWrite("@SNES/Super Mario World")),
    ("  **WRITE:**launch.system:snes", NextWrite("**launch.system:snes")),
    ('**write:"a, b"', NextWrite("a, b")),
    ("**write:a^,b", NextWrite("a,b")),
    ("**write:x||", NextWrite("x")),
    ("**write:a,b", Invalid),
    ("**write:x?launcher=y", Invalid),
    ("**write:", Invalid),
    ("**write", Invalid),
    ("**write:[[device.hostname]]", Invalid),
    ("**write:x||**launch.random:snes", None),  # two commands: a script for the core
    ("**writer:x", None),
    ("**launch.system:snes", None),
    ("@SNES/Super Mario World", None),
    ("", None),
])
def test_which_scripts_are_next_tag_writes(text, expected):
    got = next_action(text)
    assert isinstance(got, Invalid) if expected is Invalid else got == expected


@given(st.text())
def test_reading_a_script_never_crashes(text):
    assert next_action(text) is None or isinstance(next_action(text), (NextWrite, NextLauncher, Invalid))
    assert with_launcher(text, "RA") is None or "launcher=RA" in with_launcher(text, "RA")


class Writes:
    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.done: list[tuple[str, object]] = []

    async def __call__(self, reader_id, request):
        if self.fail:
            raise WriteError("tag too small")
        self.done.append((reader_id, request))


async def test_write_command_arms_a_write_to_the_next_tag_instead_of_launching(make_rig):
    rig = make_rig()
    rig.p.write_tag = writes = Writes()
    await rig.seen(WRITER)
    assert rig.fw.launched == [] and rig.p.pending_write is not None
    assert rig.store.history(1)[0].success is True  # armed: a success, as Core records it
    await rig.gone()
    await rig.seen(MARIO)
    assert rig.fw.launched == []  # written, not launched
    [(rid, request)] = writes.done
    assert rid == RID and request.text == "@SNES/Super Mario World"
    assert request.target_uid == "04aa" and request.exclude_uids == {"04cc"}  # only this tag, never the arming one
    assert rig.p.pending_write is None
    await rig.gone()
    await rig.seen(ZELDA)
    assert rig.fw.launched == [ZELDA.text]  # one write only


async def test_the_arming_tag_tapped_again_keeps_the_write_armed(make_rig):
    rig = make_rig()
    rig.p.write_tag = writes = Writes()
    await rig.seen(WRITER)
    await rig.gone()
    await rig.seen(WRITER)
    assert writes.done == [] and rig.fw.launched == [] and rig.p.pending_write is not None
    await rig.gone()
    await rig.seen(MARIO)
    assert len(writes.done) == 1


async def test_an_armed_write_lapses_after_a_minute(make_rig):
    now = [0.0]
    rig = make_rig()
    rig.p.clock = lambda: now[0]
    rig.p.write_tag = writes = Writes()
    await rig.seen(WRITER)
    await rig.gone()
    now[0] = PENDING_WRITE_TTL + 1
    await rig.seen(MARIO)
    assert writes.done == [] and rig.fw.launched == [MARIO.text]


async def test_an_invalid_write_command_is_a_failed_launch_and_arms_nothing(make_rig):
    rig = make_rig()
    await rig.seen(Token(uid="04dd", text="**write:a,b"))
    assert rig.p.pending_write is None and rig.fw.launched == []
    assert rig.store.history(1)[0].success is False


async def test_a_failed_next_tag_write_is_in_the_inbox(make_rig):
    rig = make_rig()
    rig.p.write_tag = Writes(fail=True)
    await rig.seen(WRITER)
    await rig.gone()
    await rig.seen(MARIO)
    [msg] = rig.store.inbox()
    assert msg.text == "Writing the next tag failed" and "tag too small" in msg.body


async def test_write_command_from_the_api_writes_the_next_tag_on_the_reader(rig):  # noqa: F811
    emu, daemon, recorder, session = rig
    assert (await call(session, daemon, "run", {"text": "**write:**launch.system:gba"}))["result"] == {}
    assert await eventually(lambda: daemon.pipeline.pending_write is not None)
    emu.place(EmulatedTag.from_file(FIXTURES / "factory-ntag213.nfc"))
    assert await eventually(lambda: any(t.text == "**launch.system:gba" for t in daemon.pipeline.active.values()))
    await asyncio.sleep(0.3)
    assert recorder.launched == []  # neither the arming script nor the written tag reached the core
    assert daemon.pipeline.pending_write is None
