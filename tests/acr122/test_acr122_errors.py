"""What a user is told when PC/SC is not there: pyscard missing, pcscd stopped, pn533 holding the reader."""

import sys

import pytest

from pcsc_harness import pcscd  # noqa: F401  (fixture)
from tagd.readers import acr122
from tagd.readers.base import ReaderError, open_reader


def test_pyscard_missing_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "smartcard", None)
    monkeypatch.setitem(sys.modules, "smartcard.scard", None)
    with pytest.raises(ReaderError, match=r"tagd\[pcsc\].*libpcsclite-dev"):
        open_reader("acr122:").open()
    assert acr122.list_pcsc_readers() == []


def test_pcscd_stopped_says_start_pcscd(pcscd):  # noqa: F811
    pcscd.stop()
    try:
        assert acr122.list_pcsc_readers() == []
        with pytest.raises(ReaderError, match="0x8010001D.*start pcscd"):
            open_reader("acr122:").open()
    finally:
        pcscd.start()


def test_pn533_module_loaded_is_named_with_its_fix(pcscd, monkeypatch):  # noqa: F811
    real = acr122.os.path.isdir
    monkeypatch.setattr(acr122.os.path, "isdir", lambda p: p == "/sys/module/pn533_usb" or real(p))
    with pytest.raises(ReaderError, match="blacklist pn533_usb, pn533 and nfc.*tagd install-udev"):
        open_reader("acr122:No Such ACR122").open()


def test_pcsc_driver_opens_any_reader_by_name(pcscd):  # noqa: F811
    r = open_reader("pcsc:virtual pcd 00 01")
    try:
        info = r.open()
        assert info.driver == "pcsc" and info.name == "ACR122U Virtual PCD 00 01"
        assert info.reader_id.startswith("pcsc-")
    finally:
        r.close()
    with pytest.raises(ReaderError, match="no PC/SC reader matching"):
        open_reader("pcsc:nothing like this").open()
