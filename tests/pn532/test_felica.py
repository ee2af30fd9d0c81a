"""Issue 14 item 10: FeliCa (212/424 kbps) on the PN532 — the IDm as a token (type FeliCa, Zaparoo Core's name)
and NDEF on a FeliCa Lite-S, in the emulator and through the real driver."""

from __future__ import annotations

import pytest

from pn532_rig import ReaderAdded, Rig, TagGone, TagSeen
from tagd.cli.tags import make_dump
from tagd.ndef import felica
from tagd.ndef.records import text_message
from tagd.readers.base import WriteError, WriteRequest
from tagd.sim.pn532_core import Pn532Core
from tagd.sim.tags import EmulatedTag

IDM = bytes.fromhex("012E4CD19A6B3F20")
POLL = felica.polling()[1:]  # InitiatorData: 00 FF FF 01 00


def lite_s(text="**launch.system:snes") -> EmulatedTag:
    return EmulatedTag(felica.lite_s_dump(IDM, text_message(text)))


def access_card() -> EmulatedTag:
    return EmulatedTag(felica.lite_s_dump(IDM, None))


@pytest.mark.parametrize("rate", [0x01, 0x02])
def test_felica_card_is_listed_at_212_and_424_with_its_idm_pmm_and_system_code(rate):
    core = Pn532Core()
    core.place(lite_s())
    got = core.handle(bytes([0x4A, 0x01, rate]) + POLL)
    assert got[:3] == b"\x4b\x01\x01" and got[3] == 20 and got[4] == 0x01
    assert got[5:13] == IDM and got[13:21] == felica.LITE_S_PMM and got[21:23] == b"\x12\xfc"


def test_felica_card_is_not_a_type_a_target_and_a_type_a_tag_is_not_felica():
    core = Pn532Core()
    core.handle(bytes.fromhex("3205FF0100"))  # finite retries
    core.place(access_card())
    assert core.handle(b"\x4a\x01\x00") == b"\x4b\x00"
    core.place(EmulatedTag(make_dump("ntag215", text_message("x"))))
    assert core.handle(b"\x4a\x01\x01" + POLL) == b"\x4b\x00"


def test_felica_read_without_encryption_gives_the_lite_s_attribute_block():
    core = Pn532Core()
    core.place(lite_s())
    core.handle(b"\x4a\x01\x01" + POLL)
    got = core.handle(b"\x42" + felica.read_without_encryption(IDM, range(0, 1)))
    assert got[:2] == b"\x43\x00"
    aib = felica.parse_read_response(got[2:], IDM)
    assert felica.message_length(aib) == len(text_message("**launch.system:snes"))


def test_felica_standard_card_refuses_a_read_without_keys():
    core = Pn532Core()
    core.place(access_card())
    core.handle(b"\x4a\x01\x01" + POLL)
    got = core.handle(b"\x42" + felica.read_without_encryption(IDM, range(0, 1)))
    with pytest.raises(felica.FelicaError, match="FF A6"):
        felica.parse_read_response(got[2:], IDM)


@pytest.fixture
def rig():
    r = Rig(memory=True, options={"felica": True})
    r.next(ReaderAdded)
    yield r
    r.close()


def test_felica_lite_s_tap_gives_a_felica_token_with_its_ndef_text(rig):
    rig.emu.place(lite_s())
    _, seen = rig.next(TagSeen)
    assert (seen.token.type, seen.token.uid, seen.token.text) == ("FeliCa", IDM.hex(), "**launch.system:snes")
    assert seen.token.data == text_message("**launch.system:snes").hex()


def test_felica_access_card_tap_gives_its_idm_as_the_token(rig):
    rig.emu.place(access_card())
    _, seen = rig.next(TagSeen)
    assert (seen.token.type, seen.token.uid, seen.token.text) == ("FeliCa", IDM.hex(), "")
    rig.emu.remove()
    rig.next(TagGone)


def test_felica_option_still_reads_type_a_tags(rig):
    rig.emu.place(EmulatedTag(make_dump("ntag215", text_message("**launch.system:n64"))))
    assert rig.next(TagSeen)[1].token.text == "**launch.system:n64"


def test_felica_write_is_refused_with_a_reason(rig):
    rig.emu.place(access_card())
    rig.next(TagSeen)
    with pytest.raises(WriteError, match="FeliCa"):
        rig.worker.submit_write(WriteRequest(text="x", timeout=1)).result(5)


def test_felica_dump_made_by_the_fixture_builder_decodes_to_the_same_token():
    d = felica.lite_s_dump(IDM, text_message("hello"))
    decoded = felica.decode_felica(d.uid, d.memory)
    assert (decoded.token_type, decoded.uid, decoded.text) == ("FeliCa", IDM.hex(), "hello")
