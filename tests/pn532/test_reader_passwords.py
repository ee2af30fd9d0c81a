"""Issue 14 item 6, the driver's half: password-protected NTAG21x tags are read and written with the
reader's ``passwords`` option (PWD, or PWD + the PACK the tag must answer), as ``keys`` open Classic cards."""

import pytest

from pn532_rig import ReaderAdded, Rig, TagSeen
from tagd.cli.tags import make_dump
from tagd.ndef import type2
from tagd.ndef.records import text_message
from tagd.readers.base import WriteError, WriteRequest
from tagd.sim.tags import EmulatedTag

PWD, PACK = "12345678", "9abc"


def protected(auth0=4, access=0x80, text="**launch.system:snes") -> EmulatedTag:
    tag = EmulatedTag(make_dump("ntag213", text_message(text)))
    cfg = type2.TYPE2_KINDS["ntag213"].cfg_page * 4
    tag.memory[cfg + 3], tag.memory[cfg + 4] = auth0, access
    tag.memory[cfg + 8:cfg + 14] = bytes.fromhex(PWD + PACK)
    return tag


def rig_with(options):
    r = Rig(memory=True, options=options)
    r.next(ReaderAdded)
    return r


@pytest.mark.parametrize("password", [PWD, PWD + PACK])
def test_read_protected_tag_is_read_with_the_password_option(password):
    r = rig_with({"passwords": [bytes(4).hex(), password]})  # a wrong one first: the next is tried
    try:
        r.emu.place(protected())
        _, seen = r.next(TagSeen)
        assert seen.token.text == "**launch.system:snes"
    finally:
        r.close()


def test_a_password_whose_pack_does_not_match_is_not_trusted():
    r = rig_with({"passwords": [PWD + "0000"]})
    try:
        r.emu.place(protected())
        events = r.quiet(0.3)
        assert not any(isinstance(e, TagSeen) and e.token.text for e in events)
    finally:
        r.close()


def test_write_protected_tag_is_written_with_the_password_option():
    r = rig_with({"passwords": [PWD]})
    try:
        tag = r.emu.place(protected(access=0x00))
        assert r.next(TagSeen)[1].token.text == "**launch.system:snes"  # reads need no password (PROT 0)
        seen = r.worker.submit_write(WriteRequest(text="**launch.system:genesis", timeout=2)).result(5)
        assert seen.token.text == "**launch.system:genesis" and b"genesis" in bytes(tag.memory)
    finally:
        r.close()


def test_write_protected_tag_without_a_password_is_a_clear_error():
    r = rig_with({})
    try:
        tag = r.emu.place(protected(access=0x00))
        r.next(TagSeen)
        before = bytes(tag.memory)
        with pytest.raises(WriteError, match="password"):
            r.worker.submit_write(WriteRequest(text="**launch.system:genesis", timeout=2)).result(5)
        assert bytes(tag.memory) == before
    finally:
        r.close()


def test_read_and_write_protected_tag_round_trips_with_the_password():
    r = rig_with({"passwords": [PWD + PACK]})
    try:
        tag = r.emu.place(protected(access=0x80))
        r.next(TagSeen)
        seen = r.worker.submit_write(WriteRequest(text="**launch.system:n64", timeout=2)).result(5)
        assert seen.token.text == "**launch.system:n64" and b"n64" in bytes(tag.memory)
    finally:
        r.close()
