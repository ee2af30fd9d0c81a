"""A card tagd cannot read still gives a token with its UID (like Zaparoo), never silence."""

import pytest

from conftest import FIXTURES
from pcsc_harness import pcscd, rig  # noqa: F401  (fixtures)
from tagd.readers.base import TagSeen, WriteError, WriteRequest
from tagd.sim import acr122 as virtual
from tagd.sim.tags import NO_ANSWER, EmulatedTag

ISO14443_4_ATR = bytes.fromhex("3B8180018080")  # what an ACR122U reports for a DESFire or a phone


def test_iso14443_4_card_gives_a_uid_token_and_is_not_written(rig, monkeypatch):  # noqa: F811
    sim, worker, wait, _ = rig
    monkeypatch.setattr(virtual, "atr_for", lambda kind: ISO14443_4_ATR)
    sim.place(FIXTURES / "snes-ntag215.nfc")
    seen = wait(TagSeen)
    assert (seen.token.uid, seen.token.text, seen.token.type) == ("04a1b2c3d4e5f6", "", "unknown")
    assert seen.detail["errors"] == ["not a Type 2 or MIFARE Classic tag: only its UID is read"]
    with pytest.raises(WriteError, match="not a Type 2 or MIFARE Classic tag"):
        worker.submit_write(WriteRequest("**launch.system:snes", timeout=3)).result(10)


def test_type2_tag_that_refuses_every_read_gives_a_uid_token(rig):  # noqa: F811
    sim, worker, wait, _ = rig
    tag = EmulatedTag.from_file(FIXTURES / "snes-ntag215.nfc")
    tag.transceive = lambda cmd: NO_ANSWER
    sim.place(tag)
    seen = wait(TagSeen)
    assert (seen.token.uid, seen.token.text, seen.token.type) == ("04a1b2c3d4e5f6", "", "NTAG")
    assert seen.detail["errors"][0].startswith("read failed")
