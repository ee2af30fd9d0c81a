"""The pipeline's rules (SPEC §5), driven with reader events and fake forwarders."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from tagd.daemon.config import Config
from tagd.daemon.forwarders import Forwarder, ForwardError
from tagd.daemon.mappings import Mapping, MappingTable
from tagd.daemon.pipeline import Pipeline
from tagd.daemon.store import Store
from tagd.readers.base import Capability, ReaderAdded, ReaderInfo, ReaderLost, TagGone, TagSeen
from tagd.token import Token
from procs import until

INFO = ReaderInfo(driver="pn532uart", path="/dev/ttyUSB0", stable_path="1-2.3", capabilities=Capability.READ)
RID = INFO.reader_id
MARIO = Token(uid="04aa", text="**launch:mario", type="NTAG")
ZELDA = Token(uid="04bb", text="**launch:zelda", type="NTAG")


class FakeForwarder(Forwarder):
    kind = "fake"
    max_age = float("inf")  # MARIO and ZELDA are scanned at import; max_age has its own tests (test_api_hostile)

    def __init__(self, name: str = "fake", fail: bool = False, delay: float = 0.0) -> None:
        super().__init__(name)
        self.fail = fail
        self.delay = delay
        self.launched: list[str] = []
        self.stops = 0

    async def launch(self, token: Token) -> None:
        await asyncio.sleep(self.delay)
        if self.fail:
            raise ForwardError(f"{self.name} is down")
        self.launched.append(token.text)

    async def stop_media(self) -> None:
        self.stops += 1


class Rig:
    def __init__(self, tmp_path: Path, mode: str = "tap", exit_delay: float = 0.0, ignore_on_connect: bool = False,
                 forwarders: list[Forwarder] | None = None, mappings: list[Mapping] = ()) -> None:
        self.config = Config.model_validate({"readers": {"scan": {"mode": mode, "exit_delay": exit_delay,
                                                                  "ignore_on_connect": ignore_on_connect}}})
        self.store = Store(tmp_path / "tagd.db")
        self.fw = FakeForwarder()
        self.notes: list[tuple[str, Any]] = []
        self.p = Pipeline(self.config, self.store, MappingTable(mappings),
                          forwarders if forwarders is not None else [self.fw],
                          lambda method, params: self.notes.append((method, params)))

    async def seen(self, token: Token, rid: str = RID, written: bool = False) -> None:
        await self.p.handle(TagSeen(rid, token, written=written))

    async def gone(self, rid: str = RID) -> None:
        await self.p.handle(TagGone(rid))

    def methods(self) -> list[str]:
        return [m for m, _ in self.notes]


@pytest.fixture
def make_rig(tmp_path: Path):
    """Rig(**options) factory; closes every store it made."""
    made: list[Rig] = []

    def make(**kw: Any) -> Rig:
        made.append(Rig(tmp_path / str(len(made)), **kw))
        return made[-1]

    yield make
    for r in made:
        r.store.close()


@pytest.fixture
def rig(make_rig) -> Rig:
    return make_rig()


async def test_a_tap_launches_the_token_text(rig: Rig) -> None:
    await rig.seen(MARIO)
    assert rig.fw.launched == ["**launch:mario"]


async def test_the_same_token_does_not_launch_again_while_it_stays(rig: Rig) -> None:
    await rig.seen(MARIO)
    await rig.seen(MARIO)
    assert rig.fw.launched == ["**launch:mario"]


async def test_the_same_token_launches_again_after_removal(rig: Rig) -> None:
    await rig.seen(MARIO)
    await rig.gone()
    await rig.seen(MARIO)
    assert rig.fw.launched == ["**launch:mario"] * 2


async def test_the_same_token_launches_again_after_another_token(rig: Rig) -> None:
    await rig.seen(MARIO)
    await rig.seen(ZELDA)
    await rig.seen(MARIO)
    assert rig.fw.launched == ["**launch:mario", "**launch:zelda", "**launch:mario"]


async def test_dedupe_compares_normalised_uid_and_text(rig: Rig) -> None:
    await rig.seen(MARIO)
    await rig.seen(MARIO.model_copy(update={"uid": "04:AA"}))
    await rig.seen(MARIO.model_copy(update={"text": "**launch:other"}))
    assert rig.fw.launched == ["**launch:mario", "**launch:other"]


async def test_a_reader_error_is_not_a_removal(rig: Rig) -> None:
    await rig.p.handle(ReaderAdded(INFO))
    await rig.seen(MARIO)
    await rig.p.handle(ReaderLost(RID, "serial port vanished"))
    await rig.p.handle(ReaderAdded(INFO))
    await rig.seen(MARIO)
    assert rig.fw.launched == ["**launch:mario"]
    assert "tokens.removed" not in rig.methods()


async def test_reader_lost_drops_the_active_token_and_leaves_an_inbox_message(rig: Rig) -> None:
    await rig.p.handle(ReaderAdded(INFO))
    await rig.seen(MARIO)
    await rig.p.handle(ReaderLost(RID, "serial port vanished"))
    assert rig.p.active == {}
    [msg] = rig.store.inbox()
    assert "pn532uart:/dev/ttyUSB0" in msg.text and msg.body == "serial port vanished"


async def test_removal_in_tap_mode_only_clears_the_active_token(rig: Rig) -> None:
    await rig.seen(MARIO)
    assert rig.p.active[RID].text == MARIO.text
    await rig.gone()
    assert rig.p.active == {} and rig.fw.stops == 0
    assert rig.p.last is not None and rig.p.last.text == MARIO.text


async def test_ignore_on_connect_skips_a_tag_already_on_the_reader(make_rig) -> None:
    rig = make_rig(ignore_on_connect=True)
    await rig.p.handle(ReaderAdded(INFO))
    await rig.seen(MARIO)  # the first poll after connecting
    assert rig.fw.launched == []
    assert RID in rig.p.active  # still shown as active
    await rig.gone()
    await rig.seen(MARIO)  # tapped again: a real tap
    assert rig.fw.launched == ["**launch:mario"]


async def test_a_tag_on_a_reader_at_connect_launches_without_ignore_on_connect(rig: Rig) -> None:
    await rig.p.handle(ReaderAdded(INFO))
    await rig.seen(MARIO)
    assert rig.fw.launched == ["**launch:mario"]


async def test_ignore_on_connect_only_covers_the_grace_period(make_rig) -> None:
    rig = make_rig(ignore_on_connect=True)
    now = [100.0]
    rig.p.clock = lambda: now[0]
    await rig.p.handle(ReaderAdded(INFO))
    now[0] += rig.p.connect_grace + 1
    await rig.seen(MARIO)
    assert rig.fw.launched == ["**launch:mario"]


async def test_hold_mode_removal_stops_media_after_exit_delay(make_rig) -> None:
    rig = make_rig(mode="hold", exit_delay=0.2)
    await rig.seen(MARIO)
    await rig.gone()
    await asyncio.sleep(0.1)
    assert rig.fw.stops == 0
    assert await until(lambda: rig.fw.stops == 1)


async def test_hold_mode_put_back_cancels_the_exit_and_does_not_relaunch(make_rig) -> None:
    rig = make_rig(mode="hold", exit_delay=0.2)
    await rig.seen(MARIO)
    await rig.gone()
    await asyncio.sleep(0.05)
    await rig.seen(MARIO)
    await asyncio.sleep(0.3)
    assert rig.fw.stops == 0
    assert rig.fw.launched == ["**launch:mario"]
    await rig.gone()  # removing it again starts a new exit
    assert await until(lambda: rig.fw.stops == 1)


async def test_hold_mode_relaunches_after_the_exit_has_happened(make_rig) -> None:
    rig = make_rig(mode="hold", exit_delay=0.0)
    await rig.seen(MARIO)
    await rig.gone()
    await asyncio.sleep(0.05)
    await rig.seen(MARIO)
    assert (rig.fw.stops, rig.fw.launched) == (1, ["**launch:mario"] * 2)


async def test_hold_mode_removing_a_token_that_did_not_launch_stops_nothing(make_rig) -> None:
    rig = make_rig(mode="hold", exit_delay=0.0)
    await rig.seen(MARIO, written=True)
    await rig.gone()
    await asyncio.sleep(0.05)
    assert rig.fw.stops == 0


async def test_hold_mode_reader_error_does_not_stop_media(make_rig) -> None:
    rig = make_rig(mode="hold", exit_delay=0.0)
    await rig.p.handle(ReaderAdded(INFO))
    await rig.seen(MARIO)
    await rig.p.handle(ReaderLost(RID, "gone"))
    await asyncio.sleep(0.05)
    assert rig.fw.stops == 0


async def test_a_new_launch_cancels_a_pending_exit(make_rig) -> None:
    rig = make_rig(mode="hold", exit_delay=0.1)
    await rig.seen(MARIO)
    await rig.gone()
    await rig.seen(ZELDA)
    await asyncio.sleep(0.2)
    assert rig.fw.stops == 0 and rig.fw.launched == ["**launch:mario", "**launch:zelda"]


async def test_a_tag_just_written_is_not_launched(rig: Rig) -> None:
    await rig.seen(MARIO, written=True)
    await rig.seen(MARIO)  # the next poll sees it again
    assert rig.fw.launched == []


async def test_mark_written_suppresses_the_next_sighting_once(rig: Rig) -> None:
    rig.p.mark_written("04:AA")
    await rig.seen(MARIO)
    assert rig.fw.launched == []
    await rig.gone()
    await rig.seen(MARIO)
    assert rig.fw.launched == ["**launch:mario"]


async def test_mappings_apply_before_forwarding_and_history_keeps_the_result(make_rig) -> None:
    m = Mapping.build(type="uid", match="exact", pattern="04:AA", override="**launch:mapped")
    rig = make_rig(mappings=[m])
    await rig.seen(MARIO)
    assert rig.fw.launched == ["**launch:mapped"]
    assert rig.store.history()[0].text == "**launch:mapped"
    assert rig.notes[0] == ("tokens.added", MARIO.model_copy(update={"reader_id": RID}).to_json())  # as scanned


async def test_reload_mappings_reads_the_store_first(rig: Rig) -> None:
    rig.store.add_mapping(type="text", match="partial", pattern="mario", override="db")
    rig.p.reload_mappings(MappingTable.from_config([{"token_key": "value", "match_pattern": "*mario*",
                                                     "zapscript": "file"}]))
    await rig.seen(MARIO)
    assert rig.fw.launched == ["db"]


async def test_history_success_when_any_forwarder_succeeds(make_rig) -> None:
    ok, bad = FakeForwarder("ok"), FakeForwarder("bad", fail=True)
    rig = make_rig(forwarders=[bad, ok])
    await rig.seen(MARIO)
    assert rig.store.history()[0].success is True


async def test_history_failure_when_every_forwarder_fails(make_rig) -> None:
    rig = make_rig(forwarders=[FakeForwarder("a", fail=True), FakeForwarder("b", fail=True)])
    await rig.seen(MARIO)
    [entry] = rig.store.history()
    assert entry.success is False and entry.reader_id == RID
    assert {m.text for m in rig.store.inbox()} == {"Launches are not reaching a", "Launches are not reaching b"}


async def test_a_slow_forwarder_does_not_hold_up_the_others_or_the_reader(make_rig) -> None:
    slow, fast = FakeForwarder("slow", delay=0.5), FakeForwarder("fast")
    rig = make_rig(forwarders=[slow, fast])
    task = rig.p.submit(TagSeen(RID, MARIO))
    assert RID in rig.p.active  # state is updated at once, before any forwarding
    await asyncio.sleep(0.05)
    assert fast.launched == ["**launch:mario"] and slow.launched == []
    rig.p.submit(TagGone(RID))  # the reader's next event is not stuck behind the launch
    assert rig.p.active == {}
    assert task is not None
    await task


async def test_notifications_for_readers_and_tokens(rig: Rig) -> None:
    await rig.p.handle(ReaderAdded(INFO))
    await rig.seen(MARIO)
    await rig.seen(MARIO)  # no repeat notification for the same token
    await rig.gone()
    await rig.p.handle(ReaderLost(RID, "stopped"))
    assert rig.notes == [
        ("readers.added", {"driver": "pn532uart", "path": "/dev/ttyUSB0", "connected": True}),
        ("tokens.added", MARIO.model_copy(update={"reader_id": RID}).to_json()),
        ("tokens.removed", None),
        ("readers.removed", {"driver": "pn532uart", "path": "/dev/ttyUSB0", "connected": False}),
    ]


async def test_run_token_launches_without_dedupe_and_keeps_unsafe(make_rig) -> None:
    seen: list[Token] = []

    class Recorder(FakeForwarder):
        async def launch(self, token: Token) -> None:
            seen.append(token)

    rig = make_rig(forwarders=[Recorder()])
    t = Token(text="**launch:api", type="api", unsafe=True)
    assert await rig.p.run_token(t) is True
    assert await rig.p.run_token(t) is True
    assert [x.unsafe for x in seen] == [True, True]
    assert rig.p.last == t and rig.p.active == {}
    assert len(rig.store.history()) == 2


async def test_run_token_with_no_forwarders_is_a_failure(make_rig) -> None:
    rig = make_rig(forwarders=[])
    assert await rig.p.run_token(Token(text="x")) is False
    assert rig.store.history()[0].success is False


async def test_stop_ignores_later_events_and_cancels_a_pending_exit(make_rig) -> None:
    rig = make_rig(mode="hold", exit_delay=0.1)
    await rig.seen(MARIO)
    await rig.gone()
    await rig.p.stop()
    await rig.seen(ZELDA)
    await asyncio.sleep(0.2)
    assert rig.fw.launched == ["**launch:mario"] and rig.fw.stops == 0


async def test_settings_change_takes_effect_on_the_next_event(rig: Rig) -> None:
    rig.p.config = rig.config.with_settings({"readersScanMode": "hold", "readersScanExitDelay": 0})
    await rig.seen(MARIO)
    await rig.gone()
    assert await until(lambda: rig.fw.stops == 1)
