"""A tag swapped for another while the driver was busy is a removal and a new tap, not nothing.

pcscd counts card events; SCardGetStatusChange returns PRESENT again with a higher count. The driver
must notice that its card handle belongs to a card that left (SCARD_W_REMOVED_CARD) and read the new one.
"""

import time

from conftest import FIXTURES
from pcsc_harness import READER, pcscd, wait_slot  # noqa: F401  (fixture)
from tagd.readers.base import TagGone, TagSeen, open_reader
from tagd.sim.acr122 import VirtualAcr122


def _events_until(reader, kind, timeout=5.0):
    got = []
    deadline = time.monotonic() + timeout
    while not any(isinstance(e, kind) for e in got) and time.monotonic() < deadline:
        got += reader.poll()
    return got


def test_swap_between_two_polls_is_gone_then_seen(pcscd):  # noqa: F811
    sim = VirtualAcr122(pcscd.port)
    reader = open_reader(f"acr122:{READER}")
    reader.open()
    try:
        sim.place(FIXTURES / "snes-ntag215.nfc")
        assert [e.token.text for e in _events_until(reader, TagSeen) if isinstance(e, TagSeen)] == \
            ["**launch.system:snes"]
        sim.remove()
        wait_slot(present=False)  # pcscd sees the slot empty…
        sim.place(FIXTURES / "smw-ntag213.nfc")
        wait_slot(present=True)  # …and the new card, while the driver is not polling
        events = _events_until(reader, TagSeen)
        assert [type(e) for e in events] == [TagGone, TagSeen]
        assert events[1].token.text == "@SNES/Super Mario World"
    finally:
        sim.remove()
        reader.close()
        wait_slot(present=False)  # leave the slot empty for the next test's reader
