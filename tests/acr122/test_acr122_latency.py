"""Tap→token latency through pcscd: the card connecting to vpcd until the driver's TagSeen arrives.

pcscd learns of a card by polling vpcd about every 400 ms, so the floor is 0–400 ms of waiting plus the
reads (UID, GET_VERSION, one FAST_READ for a short ZapScript; MAD and one NDEF sector for a Classic).
"""

import statistics
import time

from conftest import FIXTURES
from pcsc_harness import pcscd, rig  # noqa: F401  (fixtures)
from tagd.readers.base import TagGone, TagSeen


def test_tap_to_token_latency(rig, record_property):  # noqa: F811
    sim, _, wait, _ = rig
    result = {}
    for name, taps in (("snes-ntag215.nfc", 4), ("genesis-classic1k.nfc", 2)):
        times = []
        for _ in range(taps):
            sim.place(FIXTURES / name)  # returns once vpcd has the card (the tap)
            t0 = time.monotonic()
            assert wait(TagSeen).token.text
            times.append(time.monotonic() - t0)
            sim.remove()
            wait(TagGone)
        result[name] = times
        record_property(f"latency_{name}", ",".join(f"{t * 1000:.0f}ms" for t in times))
        print(f"\n{name}: tap→token " + ", ".join(f"{t * 1000:.0f} ms" for t in times))
        assert statistics.median(times) < 1.0 and max(times) < 2.0
