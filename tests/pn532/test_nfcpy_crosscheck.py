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
