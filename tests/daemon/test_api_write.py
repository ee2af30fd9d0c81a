"""readers.write in process: the API, a real Daemon and pn532uart reader, and H3's PN532 emulator on a pty."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest

from conftest import FIXTURES
from tagd.daemon.config import Config
from tagd.daemon.service import Daemon
from tagd.ndef.decode import decode_dump
from tagd.sim.pn532 import Pn532Emulator
from tagd.sim.tags import EmulatedTag


class Recorder:
    """A forwarder stand-in that records what was launched."""

    name = "recorder"
    on_notification = None

    def __init__(self):
        self.launched: list[str] = []

    async def start(self):
        pass

    async def launch(self, token):
        self.launched.append(token.text)

    async def stop_media(self):
        pass

    async def close(self):
        pass


@pytest.fixture
async def rig(tmp_path):
    """Two emulated PN532s; tests use the first (``emu``) unless they need the choice between them."""
    emu, second = Pn532Emulator(), Pn532Emulator()
    ptys = [emu.start(), second.start()]
    config = Config.model_validate({"readers": {"auto_detect": False}, "database": str(tmp_path / "tagd.db"),
                                    "api": {"listen": "127.0.0.1:0"}})
    daemon = Daemon(config, tmp_path / "config.toml", extra_readers=[f"pn532uart:{p}" for p in ptys])
    daemon.second = second
    await daemon.start()
    recorder = Recorder()
    daemon.forwarders.append(recorder)
    daemon.pipeline.forwarders.append(recorder)
    for _ in range(100):
        if len(daemon.reader_infos()) == 2:
            break
        await asyncio.sleep(0.05)
    session = aiohttp.ClientSession()
    try:
        yield emu, daemon, recorder, session
    finally:
        await session.close()
        await daemon.stop()
        emu.stop()
        second.stop()


async def call(session, daemon, method, params=None):
    body = {"jsonrpc": "2.0", "id": 1, "method": method}
    if params is not None:
        body["params"] = params
    async with session.post(f"http://127.0.0.1:{daemon.api.port}/api", data=json.dumps(body)) as r:
        return await r.json()


async def eventually(predicate, timeout=5.0):
    for _ in range(int(timeout / 0.05)):
        if predicate():
            return True
        await asyncio.sleep(0.05)
    return False


async def test_written_tag_is_not_launched_but_its_next_tap_is(rig):
    emu, daemon, recorder, session = rig
    tag = EmulatedTag.from_file(FIXTURES / "factory-ntag213.nfc")
    emu.place(tag)
    assert await eventually(lambda: daemon.pipeline.active)
    assert (await call(session, daemon, "readers.write", {"text": "**launch.system:gba"}))["result"] == {}
    active = (await call(session, daemon, "tokens"))["result"]["active"]
    assert active[0]["text"] == "**launch.system:gba"  # read back from the tag after writing
    await asyncio.sleep(0.3)
    assert "**launch.system:gba" not in recorder.launched
    emu.remove()
    assert await eventually(lambda: not daemon.pipeline.active)
    emu.place(tag)  # the same (now written) tag, tapped again by the user
    assert await eventually(lambda: "**launch.system:gba" in recorder.launched)


async def test_write_waits_for_a_tag_and_a_cancelled_write_answers_an_error_as_core_does(rig):
    emu, daemon, recorder, session = rig
    pending = asyncio.ensure_future(call(session, daemon, "readers.write", {"text": "**launch.system:nes"}))
    assert await eventually(lambda: daemon.pending_writes)  # the request reached the daemon
    await asyncio.sleep(0.2)
    assert not pending.done()
    assert (await call(session, daemon, "readers.write.cancel", {}))["result"] == {}
    resp = await asyncio.wait_for(pending, 5)
    # Core answers a cancelled readers.write with its write error (code 1, "error writing to reader"), not a result
    assert "result" not in resp and resp["error"]["code"] == 1
    assert resp["error"]["message"] == "error writing to reader: write cancelled"


async def test_write_to_an_unknown_reader_is_refused(rig):
    emu, daemon, recorder, session = rig
    err = (await call(session, daemon, "readers.write", {"text": "x", "readerId": "pn532-nothere"}))["error"]
    assert err["code"] == 1 and "pn532-nothere" in err["message"]


async def test_write_goes_to_the_reader_of_the_last_scan(rig):
    emu, daemon, recorder, session = rig
    tag = EmulatedTag.from_file(FIXTURES / "factory-ntag213.nfc")
    daemon.second.place(tag)
    assert await eventually(lambda: daemon.pipeline.last is not None)
    assert (await call(session, daemon, "readers.write", {"text": "@SNES/Zelda"}))["result"] == {}
    assert decode_dump(tag.snapshot()).text == "@SNES/Zelda"


async def test_write_without_a_scan_goes_to_the_first_writable_reader(rig):
    emu, daemon, recorder, session = rig
    assert daemon.pipeline.last is None
    pending = asyncio.ensure_future(call(session, daemon, "readers.write", {"text": "@NES/Zelda"}))
    assert await eventually(lambda: daemon.pending_writes)  # queued for the first reader before any tag is seen
    first, second = (EmulatedTag.from_file(FIXTURES / "factory-ntag213.nfc") for _ in range(2))
    daemon.second.place(second)
    await asyncio.sleep(0.5)
    assert not pending.done()  # a tag on the other reader does not satisfy the write
    emu.place(first)
    assert (await asyncio.wait_for(pending, 5))["result"] == {}
    assert decode_dump(first.snapshot()).text == "@NES/Zelda" and decode_dump(second.snapshot()).text == ""


async def test_a_lost_reader_shows_in_the_inbox_and_readers(rig):
    emu, daemon, recorder, session = rig
    emu.unplug()
    assert await eventually(lambda: len(daemon.reader_infos()) == 1)
    readers = (await call(session, daemon, "readers"))["result"]["readers"]
    assert len(readers) == 1
    assert await eventually(lambda: daemon.store.inbox())  # the ReaderLost reaches the pipeline just after
    messages = (await call(session, daemon, "inbox"))["result"]["messages"]
    assert messages[0]["category"] == "readers" and "disconnected" in messages[0]["title"]
    assert messages[0]["severity"] == 1


async def test_a_second_write_while_one_waits_is_refused_and_the_first_is_written(rig):
    # both used to answer {} and the tag held the second text: the first caller was told a write that did not stay
    emu, daemon, recorder, session = rig
    first = asyncio.ensure_future(call(session, daemon, "readers.write", {"text": "@NES/first"}))
    assert await eventually(lambda: daemon.pending_writes)
    async with session.ws_connect(f"ws://127.0.0.1:{daemon.api.port}/api") as ws:  # another client, another transport
        await ws.send_str(json.dumps({"jsonrpc": "2.0", "id": 7, "method": "readers.write", "params": {"text": "@NES/second"}}))
        while "id" not in (resp := json.loads((await ws.receive(timeout=5)).data)):
            pass
    assert resp["id"] == 7 and resp["error"]["code"] == 1 and "already waiting" in resp["error"]["message"]
    second = await call(session, daemon, "readers.write", {"text": "@NES/second"})  # over HTTP too
    assert "already waiting" in second["error"]["message"]
    tag = EmulatedTag.from_file(FIXTURES / "factory-ntag213.nfc")
    emu.place(tag)
    assert (await asyncio.wait_for(first, 5))["result"] == {}
    assert decode_dump(tag.snapshot()).text == "@NES/first"


async def test_after_a_cancel_a_new_write_is_taken_at_once(rig):
    emu, daemon, recorder, session = rig
    first = asyncio.ensure_future(call(session, daemon, "readers.write", {"text": "@NES/first"}))
    assert await eventually(lambda: daemon.pending_writes)
    assert (await call(session, daemon, "readers.write.cancel", {}))["result"] == {}
    second = asyncio.ensure_future(call(session, daemon, "readers.write", {"text": "@NES/second"}))
    assert "cancel" in (await asyncio.wait_for(first, 5))["error"]["message"]
    assert await eventually(lambda: daemon.pending_writes)
    tag = EmulatedTag.from_file(FIXTURES / "factory-ntag213.nfc")
    emu.place(tag)
    assert (await asyncio.wait_for(second, 5))["result"] == {}
    assert decode_dump(tag.snapshot()).text == "@NES/second"


@pytest.mark.parametrize("transport", ["http", "websocket"])
async def test_a_client_that_hangs_up_ends_its_pending_write(rig, transport):
    # over HTTP the write stayed armed after the client went: the next tag got a text nobody waited for
    emu, daemon, recorder, session = rig
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "readers.write", "params": {"text": "@NES/orphan"}})
    if transport == "http":
        reader, writer = await asyncio.open_connection("127.0.0.1", daemon.api.port)
        writer.write(f"POST /api HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n\r\n{body}".encode())
        await writer.drain()
        assert await eventually(lambda: daemon.pending_writes)
        await asyncio.sleep(0.3)  # the reader thread is waiting for a tag with it now
        writer.close()
    else:
        ws = await session.ws_connect(f"ws://127.0.0.1:{daemon.api.port}/api")
        await ws.send_str(body)
        assert await eventually(lambda: daemon.pending_writes)
        await asyncio.sleep(0.3)
        await ws.close()
    assert await eventually(lambda: not daemon.pending_writes)
    await asyncio.sleep(0.5)  # the reader thread has let the request go
    tag = EmulatedTag.from_file(FIXTURES / "factory-ntag213.nfc")
    emu.place(tag)
    assert await eventually(lambda: daemon.pipeline.active)
    await asyncio.sleep(0.3)
    assert decode_dump(tag.snapshot()).text == ""  # not written
    emu.remove()
    assert await eventually(lambda: not daemon.pipeline.active)
    # and the reader takes the next write
    pending = asyncio.ensure_future(call(session, daemon, "readers.write", {"text": "@NES/wanted"}))
    assert await eventually(lambda: daemon.pending_writes)
    emu.place(tag)
    assert (await asyncio.wait_for(pending, 5))["result"] == {}
    assert decode_dump(tag.snapshot()).text == "@NES/wanted"
