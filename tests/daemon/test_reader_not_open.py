"""Issue 13 item 11: a reader that never opens (a chip that answers too slowly) is not silent — ``readers`` lists
it as not connected with the reason, and the inbox says so once, however often it is retried."""

from __future__ import annotations

import asyncio
import json
import threading

from conftest import Events, until
from test_api import make_config
from tagd.daemon.service import Daemon
from tagd.readers.base import Reader, ReaderError, ReaderFailed, ReaderWorker, register

REASON = "the PN532 did not answer GetFirmwareVersion within 1.0 s"


@register
class SlowChip(Reader):
    """A reader whose chip never answers in time."""

    driver = "test-slowchip"
    opens = 0
    lock = threading.Lock()

    def open(self):
        with SlowChip.lock:
            SlowChip.opens += 1
        raise ReaderError(REASON)

    def close(self):
        pass

    def poll(self):
        return []


def test_a_reader_that_never_opens_is_reported_once_however_often_it_retries():
    events = Events()
    start = SlowChip.opens
    worker = ReaderWorker(SlowChip("/dev/ttyUSB9"), events.put, retry=0.01).start()
    try:
        assert until(lambda: SlowChip.opens - start >= 20)
        failed = events.wait(ReaderFailed)
        assert failed == ReaderFailed("test-slowchip:/dev/ttyUSB9", REASON) and worker.error == REASON
        assert events.q.empty()  # not one event per retry
    finally:
        worker.stop()


async def call(d, method):
    return json.loads(json.dumps(await d.api.dispatcher.handle_text(json.dumps(
        {"jsonrpc": "2.0", "id": 1, "method": method}))))["result"]


async def test_readers_lists_a_reader_that_does_not_open_with_the_reason_and_the_inbox_says_so_once(tmp_path):
    d = Daemon(make_config(tmp_path), tmp_path / "config.toml", extra_readers=["test-slowchip:/dev/ttyUSB9"])
    start = SlowChip.opens
    await d.start()
    try:
        for _ in range(300):  # the manager retries every second: wait for the second attempt
            if SlowChip.opens - start >= 2:
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)  # the worker's event reaches the loop
        readers = (await call(d, "readers"))["readers"]
        assert readers == [{"id": "/dev/ttyUSB9", "readerId": "", "driver": "test-slowchip",
                            "info": f"not connected: {REASON}", "connected": False, "capabilities": [],
                            "error": REASON}]
        messages = [m for m in (await call(d, "inbox"))["messages"] if m["category"] == "readers"]
        assert messages == [dict(messages[0], title="Reader test-slowchip:/dev/ttyUSB9 does not open", body=REASON)]
        assert len(messages) == 1
    finally:
        await d.stop()
