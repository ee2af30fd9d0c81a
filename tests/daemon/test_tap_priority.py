"""A tap's launch goes before API work: the pipeline hands the daemon each tap's launch as it starts (the daemon
pauses new API requests and notification writes until it is done), and only taps: an API `run` waits its turn."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tagd.daemon.config import Config
from tagd.daemon.forwarders import Forwarder
from tagd.daemon.mappings import MappingTable
from tagd.daemon.pipeline import Pipeline
from tagd.daemon.store import Store
from tagd.readers.base import ReaderInfo, TagSeen
from tagd.token import Token
from tagd.web.intake import Intake, Priority

INFO = ReaderInfo(driver="pn532uart", path="/dev/ttyUSB0", stable_path="1-2.3")


class HeldCore(Forwarder):
    kind = "held"
    max_age = float("inf")

    def __init__(self) -> None:
        super().__init__("held")
        self.release = asyncio.Event()
        self.launched: list[str] = []

    async def launch(self, token: Token) -> None:
        self.launched.append(token.text)
        await self.release.wait()


def pipeline(tmp_path: Path, core: Forwarder) -> Pipeline:
    return Pipeline(Config.model_validate({}), Store(tmp_path / "tagd.db"), MappingTable([]), [core])


async def test_api_requests_wait_while_a_tap_launch_is_on_its_way_and_start_once_it_arrived(tmp_path: Path) -> None:
    core = HeldCore()
    pipe = pipeline(tmp_path, core)
    priority = Priority(max_hold=5.0)
    intake = Intake(priority=priority)
    pipe.urgent = priority.during
    launch = pipe.submit(TagSeen(INFO.reader_id, Token(uid="04aa", text="**launch:mario")))
    assert launch is not None and priority.paused
    request = asyncio.ensure_future(intake.admit())
    for _ in range(10):
        await asyncio.sleep(0)
    assert core.launched == ["**launch:mario"] and not request.done()
    core.release.set()
    await asyncio.wait_for(asyncio.gather(launch, request), 1)
    assert not priority.paused
    pipe.store.close()


async def test_an_api_run_is_not_given_a_tap_priority(tmp_path: Path) -> None:
    core = HeldCore()
    core.release.set()
    pipe = pipeline(tmp_path, core)
    given: list[asyncio.Task] = []
    pipe.urgent = given.append
    assert await pipe.run_token(Token(text="**launch:zelda", type="api", unsafe=True))
    assert given == [] and core.launched == ["**launch:zelda"]
    pipe.submit(TagSeen(INFO.reader_id, Token(uid="04aa", text="**launch:mario")))
    assert len(given) == 1
    await given[0]
    pipe.store.close()
