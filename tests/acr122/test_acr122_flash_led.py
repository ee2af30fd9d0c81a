"""flash_led() is for the daemon's thread: it blinks through the reader thread, never racing its PC/SC calls."""

import threading
import time

from conftest import FIXTURES
from pcsc_harness import pcscd, rig  # noqa: F401  (fixtures)
from tagd.readers.base import TagSeen


def test_flash_led_from_another_thread_blinks_the_reader(rig):  # noqa: F811
    sim, worker, wait, _ = rig
    sim.place(FIXTURES / "snes-ntag215.nfc")
    wait(TagSeen)
    assert sim.card.led == 0  # led_on_read is off: reading alone does not blink
    threading.Thread(target=worker.reader.flash_led).start()
    deadline = time.monotonic() + 2
    while sim.card.led == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert sim.card.led != 0
