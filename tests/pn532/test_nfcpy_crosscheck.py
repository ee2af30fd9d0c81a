"""An independent PN532 implementation — nfcpy 1.0.4's own driver — reads and writes a tag through the emulator.

nfcpy opens `tty:NAME:pn532` as /dev/NAME, so the emulator's pty is linked there (we are root in CI)."""

import os
import time
import uuid

import pytest

from conftest import FIXTURES, need
from tagd.ndef.decode import decode_dump
from tagd.sim.pn532 import Pn532Emulator


@pytest.fixture
def nfcpy_path(request):
    try:
        import nfc  # noqa: F401
    except ImportError:
        need(False, "nfcpy is not installed (extra 'nfcpy')")
    need(os.access("/dev", os.W_OK), "needs write access to /dev to link the pty (run as root)")
    tag, firmware = getattr(request, "param", ("snes-ntag215.nfc", "1.6"))
    name = f"tagdsim{uuid.uuid4().hex[:6]}"
    emu = Pn532Emulator(FIXTURES / tag, firmware=firmware)
    emu.start()
    emu.link(f"/dev/{name}")
    yield emu, f"tty:{name}:pn532"
    emu.stop()
    assert not os.path.lexists(f"/dev/{name}")  # the link is cleaned up


def connect_once(path: str, new_text: str | None = None) -> dict:
    """nfcpy opens the reader, waits for one tag (5 s at most), reads its NDEF text, optionally writes new text."""
    import ndef
    import nfc

    seen: dict = {}

    def on_connect(tag):
        seen["tag"] = str(tag)
        seen["text"] = tag.ndef.records[0].text
        if new_text is not None:
            tag.ndef.records = [ndef.TextRecord(new_text)]
        return False

    clf = nfc.ContactlessFrontend(path)
    try:
        seen["device"] = str(clf.device)
        t0 = time.monotonic()
        clf.connect(rdwr={"on-connect": on_connect}, terminate=lambda: time.monotonic() - t0 > 5)
    finally:
        clf.close()
    return seen


def test_nfcpy_reads_and_writes_a_tag_through_the_emulator(nfcpy_path):
    emu, path = nfcpy_path
    seen = connect_once(path, "**launch.system:nfcpy")
    assert "PN532v1.6" in seen["device"] and "NTAG215" in seen["tag"]
    assert seen["text"] == "**launch.system:snes"
    assert decode_dump(emu.tag.snapshot()).text == "**launch.system:nfcpy"
    assert emu.commands[0x10] == 2  # nfcpy switched the emulated UART up on open and back to 115200 on close


@pytest.mark.parametrize("nfcpy_path", [("ultralight.nfc", "1.4")], indirect=True)
def test_nfcpy_reads_a_plain_ultralight_through_a_v1_4_clone(nfcpy_path):
    """A plain Ultralight does not answer GET_VERSION and goes idle: nfcpy must reselect it to read on."""
    emu, path = nfcpy_path
    seen = connect_once(path)
    assert "PN532v1.4" in seen["device"] and "Ultralight" in seen["tag"]
    assert seen["text"] == "**launch.system:nes"
    assert emu.commands[0x4A] >= 2  # listed again after the unanswered GET_VERSION


def with_tag(path: str, action) -> dict:
    """nfcpy opens the reader and runs ``action(tag, out)`` on the first tag it sees."""
    import nfc

    out: dict = {}

    def on_connect(tag):
        action(tag, out)
        return False

    clf = nfc.ContactlessFrontend(path)
    try:
        t0 = time.monotonic()
        clf.connect(rdwr={"on-connect": on_connect}, terminate=lambda: time.monotonic() - t0 > 5)
    finally:
        clf.close()
    return out


def test_nfcpy_tag_classes_get_the_extra_type2_commands_answered(nfcpy_path):
    """Issue 14 item 6 through an independent stack: nfcpy's NTAG21x class reads the signature (READ_SIG),
    protects the tag with a password (WRITE to the config pages: PWD, PACK, AUTH0, ACCESS.PROT),
    authenticates (PWD_AUTH → PACK), and a wrong password is refused, as on a real NTAG215."""
    emu, path = nfcpy_path
    password = b"\x12\x34\x56\x78\x9a\xbc"

    def protect(tag, out):
        out["signature"] = tag.signature
        out["protected"] = tag.protect(password, read_protect=True, protect_from=4)

    got = with_tag(path, protect)
    assert len(got["signature"]) == 32 and got["protected"] is True
    cfg = 0x83 * 4
    assert emu.tag.memory[cfg + 3] == 4 and emu.tag.memory[cfg + 4] & 0x80  # AUTH0 4, PROT set
    assert bytes(emu.tag.memory[cfg + 8:cfg + 14]) == password

    def right(tag, out):
        out["right"] = tag.authenticate(password)
        out["page4"] = bytes(tag.read(4)[:4]) if out["right"] else None

    got = with_tag(path, right)
    assert got["right"] is True and got["page4"] == bytes(emu.tag.memory[16:20])

    def wrong(tag, out):  # a NAK sends a real tag back to idle: one try per activation
        out["wrong"] = tag.authenticate(b"\x00\x00\x00\x00\x00\x00")

    assert with_tag(path, wrong)["wrong"] is False


def test_nfcpy_cannot_read_a_read_protected_page_without_the_password(nfcpy_path):
    import nfc.tag.tt2

    emu, path = nfcpy_path
    cfg = 0x83 * 4
    emu.tag.memory[cfg + 3], emu.tag.memory[cfg + 4] = 4, 0x80
    emu.tag.memory[cfg + 8:cfg + 14] = b"\x12\x34\x56\x78\x9a\xbc"

    def read(tag, out):
        try:
            out["page4"] = bytes(tag.read(4))
        except nfc.tag.tt2.Type2TagCommandError as exc:
            out["error"] = str(exc)

    got = with_tag(path, read)
    assert "error" in got and "page4" not in got


@pytest.mark.parametrize("nfcpy_path", [("felica-lite-s.json", "1.6"), ("felica-lite-s.nfc", "1.6")], indirect=True,
                         ids=["proxmark", "flipper"])
@pytest.mark.parametrize("systems", [(0x12FC,), (0x88B4,)], ids=["ndef-system", "lite-s-system"])
def test_nfcpy_reads_a_felica_lite_s_dump_as_tagd_decodes_it(nfcpy_path, systems):
    """Issue 14 item 10 through an independent stack: nfcpy's own PN532 driver lists the emulated card at
    212 kbps, takes it for a FeliCa Lite-S by its PMm, and reads its NDEF (Type 3 Tag) with its own
    Polling and Read Without Encryption — the IDm and text tagd's decode gives for the same dump file. A card
    that reports its Lite-S system 88B4 first must answer nfcpy's Polling for the NDEF system 12FC too."""
    emu, path = nfcpy_path
    emu.tag.felica.systems = emu.tag.dump.systems = systems
    decoded = decode_dump(emu.tag.snapshot())

    def read(tag, out):
        out.update(tag=str(tag), idm=bytes(tag.idm), text=tag.ndef.records[0].text if tag.ndef else None,
                   message=bytes(tag.ndef.octets) if tag.ndef else None)

    got = with_tag(path, read)
    assert "FeliCa Lite-S" in got["tag"] and f"SYS={systems[0]:04X}" in got["tag"], got
    assert got["idm"].hex() == decoded.uid and got["text"] == decoded.text
    assert decoded.text in ("**launch.system:pcengine", "**launch.system:wonderswan")
    assert got["message"].hex() == decoded.data


@pytest.mark.parametrize("nfcpy_path", [("felica-access-card.json", "1.6")], indirect=True)
def test_nfcpy_sees_a_felica_access_card_by_its_idm_with_no_ndef(nfcpy_path):
    emu, path = nfcpy_path

    def read(tag, out):
        out.update(tag=str(tag), idm=bytes(tag.idm), ndef=tag.ndef)

    got = with_tag(path, read)
    assert got["idm"].hex() == decode_dump(emu.tag.snapshot()).uid == "012e00aa55cc3399" and got["ndef"] is None
