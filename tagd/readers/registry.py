"""The built-in drivers. Importing this module registers each one whose dependencies are present.

A driver whose optional dependency is missing (pyscard, nfcpy) is still listed by
:func:`unavailable` with the reason, so `tagd readers` and `tagd doctor` can say what to install.
"""

from __future__ import annotations

import importlib
import logging

log = logging.getLogger(__name__)

BUILTIN = (
    "tagd.readers.pn532.reader",
    "tagd.readers.file",
    "tagd.readers.replay",
    "tagd.readers.simpleserial",
    "tagd.readers.acr122",
    "tagd.readers.nfcpy_reader",
)

_unavailable: dict[str, str] = {}

for _name in BUILTIN:
    try:
        importlib.import_module(_name)
    except ImportError as exc:  # optional extra not installed, or driver not built yet
        _unavailable[_name.rsplit(".", 1)[-1]] = str(exc)
        log.debug("reader module %s unavailable: %s", _name, exc)


def unavailable() -> dict[str, str]:
    """Driver modules that could not be loaded, with the reason."""
    return dict(_unavailable)
