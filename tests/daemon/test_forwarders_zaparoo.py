"""The zaparoo forwarder against a small fake Zaparoo Core (aiohttp) that records run/stop and sends notifications."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
from typing import Any, AsyncIterator

import pytest
from aiohttp import WSMsgType, web

from tagd.daemon.config import ZaparooCore
from tagd.daemon.forwarders import ForwardError, build_forwarders
from tagd.daemon.forwarders.zaparoo import CoreError, ZaparooForwarder
from tagd.token import Token

from fake_core import FakeCore, free_port

def fresh_token() -> Token:
    """Scanned now: launches older than max_age are refused, so a module-level token would go stale in a long run."""
    return Token(uid="04aa", text="**launch.system:snes", data="d101", type="NTAG")




@pytest.fixture
async def core():
    c = FakeCore(free_port())
    await c.start()
    yield c
    await c.stop()


def forwarder(port: int, **kw: Any) -> ZaparooForwarder:
    cfg = ZaparooCore(type="zaparoo", url=f"ws://127.0.0.1:{port}/api/v0.1", **kw)
    [fw] = build_forwarders([cfg])
    assert isinstance(fw, ZaparooForwarder)
    return fw


@contextlib.asynccontextmanager
async def running(port: int, **kw: Any) -> AsyncIterator[ZaparooForwarder]:
    fw = forwarder(port, **kw)
    await fw.start()
    try:
        yield fw
    finally:
        await fw.close()


async def wait_for(cond, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


async def test_launch_sends_run_with_the_token_fields(core: FakeCore) -> None:
    async with running(core.port) as fw:
        await fw.launch(fresh_token())  # right after start: waits for the first connection attempt
        [req] = core.requests
        assert req["jsonrpc"] == "2.0" and req["method"] == "run"
        assert req["params"] == {"type": "NTAG", "uid": "04aa", "text": "**launch.system:snes", "data": "d101"}


async def test_unsafe_flag_is_passed_on(core: FakeCore) -> None:
    async with running(core.port) as fw:
        await fw.launch(fresh_token().model_copy(update={"unsafe": True}))
        assert core.requests[0]["params"]["unsafe"] is True


async def test_api_key_goes_as_bearer_header(core: FakeCore) -> None:
    async with running(core.port, api_key="s3cret") as fw:
        await fw.launch(fresh_token())
        assert core.headers[0]["Authorization"] == "Bearer s3cret"


async def test_api_key_can_go_in_the_query(core: FakeCore) -> None:
    async with running(core.port, api_key="s3cret", key_in_query=True) as fw:
        await fw.launch(fresh_token())
        assert core.queries[0] == {"key": "s3cret"} and "Authorization" not in core.headers[0]


async def test_hold_exit_sends_stop(core: FakeCore) -> None:
    async with running(core.port) as fw:
        await fw.launch(fresh_token())
        await fw.stop_media()
        assert core.methods() == ["run", "stop"]


async def test_core_notifications_reach_the_callback(core: FakeCore) -> None:
    fw = forwarder(core.port)
    got: list[tuple[str, Any]] = []
    fw.on_notification = lambda method, params: got.append((method, params))
    await fw.start()
    try:
        await wait_for(lambda: fw.connected)
        started = {"systemId": "SNES", "systemName": "Super Nintendo", "mediaPath": "/g/smw.sfc", "mediaName": "SMW"}
        await core.notify("media.started", started)
        await core.notify("media.stopped", {**started, "launcherId": "retroarch", "elapsed": 12})
        await wait_for(lambda: len(got) == 2)
        assert got[0] == ("media.started", started) and got[1][0] == "media.stopped"
    finally:
        await fw.close()


async def test_call_relays_core_errors_with_code_and_message(core: FakeCore) -> None:
    async with running(core.port) as fw:
        assert await fw.call("media.active") is None
        with pytest.raises(CoreError) as info:
            await fw.call("boom", {"x": 1})
        assert (info.value.code, info.value.message) == (1, "no such system")


async def test_garbage_from_the_core_is_ignored_and_the_connection_kept(core: FakeCore) -> None:
    """A deeply nested message (RecursionError in the parser) or an error with a non-numeric code took the
    reader task down with it; now each is one ignored message."""
    async with running(core.port) as fw:
        await wait_for(lambda: fw.connected)
        for ws in core.clients:
            await ws.send_str("[" * 100_000)
            await ws.send_str('{"jsonrpc": "2.0", "id": "not-ours", "error": {"code": "x"}}')
        with pytest.raises(CoreError):
            await fw.call("boom")
        assert fw.connected and fw.connections == 1


async def test_a_core_that_does_not_answer_times_out(core: FakeCore) -> None:
    async with running(core.port, timeout=0.3) as fw:
        await wait_for(lambda: fw.connected)
        with pytest.raises(ForwardError, match="did not answer hang"):
            await fw.call("hang")


async def test_a_launch_older_than_max_age_is_not_sent(core: FakeCore) -> None:
    async with running(core.port, max_age=10) as fw:
        await wait_for(lambda: fw.connected)
        old = fresh_token().model_copy(update={"scan_ns": time.time_ns() - 11 * 10**9})
        with pytest.raises(ForwardError, match="launch expired"):
            await fw.launch(old)
        await fw.call("ping.check")  # a later request's answer proves the server saw everything before it
        assert core.methods() == ["ping.check"]


async def test_core_down_fails_fast_and_reconnects_when_it_returns() -> None:
    port = free_port()
    fw = forwarder(port)
    await fw.start()
    core = FakeCore(port)
    try:
        await wait_for(lambda: fw.last_error not in ("", "not started"))  # the first attempt was refused
        t0 = time.monotonic()
        with pytest.raises(ForwardError, match="not connected"):
            await fw.launch(Token(text="x"))
        assert time.monotonic() - t0 < 0.5
        await core.start()
        await wait_for(lambda: fw.connected, timeout=12)  # backoff is at most 10 s
        await fw.launch(fresh_token())
        assert core.methods() == ["run"]
    finally:
        await fw.close()
        await core.stop()


async def test_a_launch_cuts_the_backoff_short_when_the_core_is_back(monkeypatch) -> None:
    """A Core that just restarted gets the first tap, not only the one after the backoff (up to 10 s) ran out."""
    monkeypatch.setattr("tagd.daemon.forwarders.zaparoo.BACKOFF_FIRST", 30.0)
    monkeypatch.setattr("tagd.daemon.forwarders.zaparoo.BACKOFF_MAX", 30.0)
    port = free_port()
    fw = forwarder(port)
    await fw.start()
    core = FakeCore(port)
    try:
        await wait_for(lambda: fw.last_error not in ("", "not started"))  # refused; the loop now sleeps 30 s
        t0 = time.monotonic()
        with pytest.raises(ForwardError, match="not connected"):  # still down: the attempt it starts is refused
            await fw.launch(fresh_token())
        assert time.monotonic() - t0 < 0.5
        await core.start()
        with pytest.raises(ForwardError, match="not connected"):
            await fw.call("media.active")  # a proxied call does not start an attempt
        t0 = time.monotonic()
        await fw.launch(fresh_token())
        assert time.monotonic() - t0 < 5.0 and fw.connections == 1
        assert core.methods() == ["run"]
    finally:
        await fw.close()
        await core.stop()


async def test_reconnects_after_the_core_restarts() -> None:
    port = free_port()
    core = FakeCore(port)
    await core.start()
    fw = forwarder(port)
    await fw.start()
    try:
        await fw.launch(fresh_token())
        await core.stop()
        await wait_for(lambda: not fw.connected)
        core = FakeCore(port)
        await core.start()
        await wait_for(lambda: fw.connected, timeout=5)
        assert fw.connections == 2
        await fw.launch(fresh_token())
        assert core.methods() == ["run"]
    finally:
        await fw.close()
        await core.stop()


async def test_close_is_quick_even_while_reconnecting() -> None:
    fw = forwarder(free_port())
    await fw.start()
    await asyncio.sleep(0.1)
    t0 = time.monotonic()
    await fw.close()
    assert time.monotonic() - t0 < 0.5
