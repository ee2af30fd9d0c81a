"""Tags that refuse a command go mute until reselected; the driver reselects by direct transmit.

A plain Ultralight ignores GET_VERSION and a MIFARE Classic drops out after a wrong key; a real ACR122U
does not reactivate them by itself, and neither does the virtual card, so these taps only read if the
driver sends InListPassiveTarget itself.
"""

import dataclasses

from conftest import FIXTURES
from pcsc_harness import pcscd, rig  # noqa: F401  (fixtures)
from tagd.ndef.classic import KEY_DEFAULT
from tagd.ndef.dumps import load
from tagd.readers.base import TagSeen
from tagd.sim.tags import EmulatedTag


def test_plain_ultralight_reads_after_its_silent_get_version(rig):  # noqa: F811
    sim, worker, wait, _ = rig
    sim.place(FIXTURES / "ultralight.nfc")
    seen = wait(TagSeen)
    assert (seen.token.text, seen.token.uid) == ("**launch.system:nes", "041f3688818eca")


def test_classic_ndef_sector_behind_a_key_tried_late_is_read(rig):  # noqa: F811
    sim, worker, wait, _ = rig
    dump = load(FIXTURES / "genesis-classic1k.nfc")
    memory = bytearray(dump.memory)
    memory[7 * 16:7 * 16 + 6] = KEY_DEFAULT  # sector 1's key A: the NFC Forum and MAD keys fail first
    sim.place(EmulatedTag(dataclasses.replace(dump, memory=bytes(memory))))
    seen = wait(TagSeen)
    assert seen.token.text == "**launch.random:genesis" and not seen.detail["errors"]
