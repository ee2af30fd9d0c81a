"""The built-in drivers in one table: for each, the module that implements it, its other names, its options.

As each Zaparoo Core driver lists its own ``IDs()``, a :class:`DriverSpec` names the module, the aliases a
connect string may use instead (Core's names, so a Core config carries over) and the options the driver reads
from ``[readers.options.<name>]`` with a check of each value. The config validates against this table, the
reader registry resolves names with it, and nothing else keeps a list of driver names.

A driver's module is imported the first time a connect string names it (:func:`load`), so a daemon with
one PN532 does not carry the PC/SC, nfcpy, replay and dump-file code in memory. :func:`load_all` imports
every one, for listings; a driver whose optional dependency is missing (pyscard, nfcpy) is then reported
by :func:`unavailable` with the reason, so `tagd readers` and `tagd doctor` can say what to install.
"""

from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

log = logging.getLogger(__name__)

OptionCheck = Callable[[Any], None]  # raises ValueError saying what is wrong with a value


# --- option checks: the drivers take what they are given (int(), bytes.fromhex()), so a wrong type stops here --


def _hex_key(v: Any) -> None:
    if not isinstance(v, str):
        raise ValueError(f"must be a 6-byte key in hex (e.g. \"a0a1a2a3a4a5\"), not {v!r}")
    try:
        key = bytes.fromhex(v)
    except ValueError:
        raise ValueError(f"{v!r} is not hex (a key is 12 hex digits, e.g. \"a0a1a2a3a4a5\")") from None
    if len(key) != 6:
        raise ValueError(f"{v!r} is {len(key)} bytes: a MIFARE Classic key is 6 (12 hex digits)")


def keys(v: Any) -> None:
    """A list of MIFARE Classic keys in hex."""
    if not isinstance(v, list):
        raise ValueError("must be a list of 6-byte keys in hex, e.g. [\"a0a1a2a3a4a5\"]")
    for i, k in enumerate(v):
        try:
            _hex_key(k)
        except ValueError as exc:
            raise ValueError(f"[{i}]: {exc}") from None


def passwords(v: Any) -> None:
    """NTAG21x / Ultralight EV1 passwords in hex: PWD (4 bytes) or PWD + the PACK the tag must answer (6).
    Errors never quote the value: it is a secret."""
    if not isinstance(v, list):
        raise ValueError("must be a list of passwords in hex, 8 digits (PWD) or 12 (PWD + PACK)")
    for i, p in enumerate(v):
        try:
            size = len(bytes.fromhex(p)) if isinstance(p, str) else -1
        except ValueError:
            size = -1
        if size not in (4, 6):
            raise ValueError(f"[{i}]: must be 8 hex digits (PWD) or 12 (PWD + PACK)")


def baud(v: Any) -> None:
    if isinstance(v, bool) or not isinstance(v, int) or not 0 < v <= 10_000_000:
        raise ValueError(f"must be a positive whole number of bits per second (e.g. 115200), not {v!r}")


def boolean(v: Any) -> None:
    if not isinstance(v, bool):
        raise ValueError(f"must be true or false, not {v!r}")


def string(v: Any) -> None:
    if not isinstance(v, str):
        raise ValueError(f"must be a string, not {v!r}")


def seconds(v: Any) -> None:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v <= 31_536_000:
        raise ValueError(f"must be a positive number of seconds, not {v!r}")


def mqtt_path(v: Any) -> None:
    from tagd.daemon.fabric.topics import parse_mqtt_path  # pure: no paho at config load

    parse_mqtt_path(v)


def str_list(v: Any) -> None:
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        raise ValueError(f"must be a list of strings, not {v!r}")


# --- the table --------------------------------------------------------------


@dataclass(frozen=True)
class DriverSpec:
    """One built-in driver. An alias opens the same class under its own name (its readerIds say that name)
    and gets the options of the drivers it extends as well as its own (``ReaderManager.options_for``)."""

    module: str
    aliases: tuple[str, ...] = ()
    options: Mapping[str, OptionCheck] = field(default_factory=dict)
    path: OptionCheck | None = None  # checks a connect path at config load (None: any path, the driver judges)


_PCSC_OPTIONS = {"keys": keys, "buzzer": boolean, "feedback": boolean, "led_on_read": boolean}  # tagd/readers/acr122.py

# Aliases are Zaparoo Core's driver IDs for the same hardware (Core's pkg/readers/*/ IDs()): its native pn532
# driver and libnfc's legacy one both read a PN532 on a UART; its acr122pcsc driver and libnfc's acr122_usb both
# read an ACR122U, which tagd reads through pcscd. Underscores do not count (pn532_uart is pn532uart), as in Core.
DRIVERS: dict[str, DriverSpec] = {
    "pn532uart": DriverSpec("tagd.readers.pn532.reader", ("pn532", "legacypn532uart"),
                            {"baud": baud, "keys": keys, "passwords": passwords, "felica": boolean}),
    "pcsc": DriverSpec("tagd.readers.acr122", (), _PCSC_OPTIONS),
    "acr122": DriverSpec("tagd.readers.acr122", ("acr122pcsc", "acr122usb"), _PCSC_OPTIONS),
    # simple_serial: the other name Core accepts for it in config files
    "simpleserial": DriverSpec("tagd.readers.simpleserial", ("simple_serial",), {"baud": baud}),
    "rs232barcode": DriverSpec("tagd.readers.barcode", (), {"baud": baud}),  # Core's serial barcode scanner
    "nfcpy": DriverSpec("tagd.readers.nfcpy_reader", (), {"targets": str_list}),
    "replay": DriverSpec("tagd.readers.replay", (), {"loop": boolean}),
    "file": DriverSpec("tagd.readers.file"),
    # Core's MQTT reader (host:port/topic), and the hub of tagd's MQTT fabric (host:port/<prefix>/+)
    "mqtt": DriverSpec("tagd.readers.mqtt", (), {"username": string, "password": string, "ca_file": string,
                                                 "client_id": string, "max_age": seconds,
                                                 "session_expiry": seconds}, mqtt_path),
}

_CANONICAL = {alias: name for name, spec in DRIVERS.items() for alias in (name, *spec.aliases)}

# Zaparoo Core's driver IDs that no tagd driver can serve, and what to use instead (a clear error at config load).
_PN532_BUS = "tagd talks to a PN532 over its UART only: set the board to HSU/UART and use driver pn532_uart"
NOT_SUPPORTED: dict[str, str] = {
    "pn532i2c": _PN532_BUS, "pn532spi": _PN532_BUS, "legacypn532i2c": _PN532_BUS,
    "opticaldrive": "tagd reads NFC tags, serial scanners and files, not discs: keep Zaparoo Core for disc launching",
    "externaldrive": "tagd reads NFC tags, serial scanners and files, not USB drives: keep Zaparoo Core for this",
    "tty2oled": "tty2oled is a display, not a reader: tagd does not drive it (keep Zaparoo Core for the display)",
}


def canonical(name: str) -> str | None:
    """The table's name for a driver name or alias (``pn532`` → ``pn532uart``; underscores and case do not
    count, ``legacy_pn532_uart`` → ``pn532uart``); None if it is not built in."""
    return _CANONICAL.get(name) or _CANONICAL.get(name.replace("_", "").lower())


def not_supported(name: str) -> str | None:
    """Why a Zaparoo Core driver ID has no tagd driver, and what to use instead; None for any other name."""
    return NOT_SUPPORTED.get(name.replace("_", "").lower())


def names() -> list[str]:
    """Every built-in driver name and alias a connect string may use."""
    return list(_CANONICAL)


def by_name() -> dict[str, DriverSpec]:
    """Each name and alias with its driver's table entry."""
    return {name: DRIVERS[base] for name, base in _CANONICAL.items()}


def spec(name: str) -> DriverSpec | None:
    """The table entry for a driver name or alias."""
    base = canonical(name)
    return DRIVERS[base] if base is not None else None


_unavailable: dict[str, str] = {}


def load(driver: str) -> bool:
    """Import the module of ``driver`` (which registers it); False if unknown or its dependency is missing."""
    entry = spec(driver)
    if entry is None:
        return False
    try:
        importlib.import_module(entry.module)
    except ImportError as exc:  # optional extra not installed
        _unavailable[entry.module.rsplit(".", 1)[-1]] = str(exc)
        log.debug("reader module %s unavailable: %s", entry.module, exc)
        return False
    return True


def load_all() -> None:
    for driver in DRIVERS:
        load(driver)


def unavailable() -> dict[str, str]:
    """Driver modules that could not be loaded (after :func:`load_all`), with the reason."""
    load_all()
    return dict(_unavailable)
