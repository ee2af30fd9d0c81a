"""The built-in drivers, by connect-string name, and the module that implements each.

A driver's module is imported the first time a connect string names it (:func:`load`), so a daemon with
one PN532 does not carry the PC/SC, nfcpy, replay and dump-file code in memory. :func:`load_all` imports
every one, for listings; a driver whose optional dependency is missing (pyscard, nfcpy) is then reported
by :func:`unavailable` with the reason, so `tagd readers` and `tagd doctor` can say what to install.
"""

from __future__ import annotations

import importlib
import logging

log = logging.getLogger(__name__)

MODULES = {
    "pn532uart": "tagd.readers.pn532.reader",
    "pn532": "tagd.readers.pn532.reader",
    "file": "tagd.readers.file",
    "replay": "tagd.readers.replay",
    "simpleserial": "tagd.readers.simpleserial",
    "simple_serial": "tagd.readers.simpleserial",
    "pcsc": "tagd.readers.acr122",
    "acr122": "tagd.readers.acr122",
    "acr122pcsc": "tagd.readers.acr122",
    "nfcpy": "tagd.readers.nfcpy_reader",
    "mqtt": "tagd.readers.mqtt",
}

_unavailable: dict[str, str] = {}


def load(driver: str) -> bool:
    """Import the module of ``driver`` (which registers it); False if unknown or its dependency is missing."""
    module = MODULES.get(driver)
    if module is None:
        return False
    try:
        importlib.import_module(module)
    except ImportError as exc:  # optional extra not installed
        _unavailable[module.rsplit(".", 1)[-1]] = str(exc)
        log.debug("reader module %s unavailable: %s", module, exc)
        return False
    return True


def load_all() -> None:
    for driver in MODULES:
        load(driver)


def unavailable() -> dict[str, str]:
    """Driver modules that could not be loaded (after :func:`load_all`), with the reason."""
    load_all()
    return dict(_unavailable)
