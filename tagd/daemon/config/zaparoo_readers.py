"""What a Zaparoo Core ``[readers]`` table means for tagd's drivers: which configured readers open, which detect.

Core names its drivers by metadata ID (``pn532``, ``acr122pcsc``, ``libnfc`` …) in ``[readers.drivers.<ID>]``
and by connect ID (``pn532_uart``, ``acr122_usb`` …) in ``[[readers.connect]]``; underscores never count. tagd
serves the same hardware with fewer drivers (the registry's table maps Core's connect IDs onto them), so each
tagd driver is matched with the Core driver whose switches it obeys:

- ``enabled = false`` on a driver: its ``[[readers.connect]]`` entries are not opened and it does not detect.
- ``auto_detect`` on a driver overrides ``[readers] auto_detect`` for that driver's detection (Core's rule: an
  explicit per-driver value wins, else the global switch). tagd detects two kinds: a PN532 on a serial port
  (Core's ``pn532``) and an ACR122U in pcscd (Core's ``acr122pcsc``).
- Core's libnfc family (``libnfc``, ``libnfcacr122``, ``legacypn532uart``, ``legacypn532i2c``) is a second
  driver for boards Core's native drivers also read; its switches apply to connect entries written with its
  names (``acr122_usb``, ``legacy_pn532_uart``), not to the native ones, as in Core.

A driver name tagd does not know in ``[readers.drivers]`` is an error (a typo), unless it is one of Core's.
"""

from __future__ import annotations

from typing import Any, Iterable

from tagd.readers import registry

# Core's metadata ID (the [readers.drivers] key that switches it) for each connect name tagd accepts.
CORE_GROUP = {
    "pn532": "pn532", "pn532uart": "pn532",
    "acr122pcsc": "acr122pcsc", "acr122": "acr122pcsc", "pcsc": "acr122pcsc",
    "acr122usb": "libnfcacr122", "legacypn532uart": "legacypn532uart",
}
LIBNFC_FAMILY = ("libnfc", "libnfcacr122", "legacypn532uart", "legacypn532i2c")
# every driver ID Zaparoo Core knows (connect IDs and metadata IDs), underscores removed
CORE_DRIVER_IDS = frozenset({
    "pn532", "pn532uart", "pn532i2c", "pn532spi", "libnfc", "libnfcacr122", "legacypn532uart", "legacypn532i2c",
    "acr122usb", "acr122pcsc", "simpleserial", "rs232barcode", "file", "mqtt", "opticaldrive", "externaldrive",
    "tty2oled",
})
# tagd's auto-detection kinds and the Core driver whose switches they obey
DETECTORS = {"pn532uart": "pn532", "acr122": "acr122pcsc"}


def normalize(driver: str) -> str:
    """Core's driver ID comparison: case and underscores do not count."""
    return driver.replace("_", "").strip().lower()


def check_driver_key(name: Any) -> None:
    """A ``[readers.drivers.<name>]`` key: a tagd or Zaparoo Core driver; ValueError otherwise."""
    key = normalize(str(name))
    if key in CORE_DRIVER_IDS or registry.canonical(key) is not None:
        return
    from tagd.readers.base import drivers

    if key not in {normalize(d) for d in drivers()}:
        known = sorted(CORE_DRIVER_IDS | {normalize(n) for n in registry.names()})
        raise ValueError(f"unknown reader driver {name!r} (known: {', '.join(known)})")


def _switch(settings: dict[str, Any], names: Iterable[str], attr: str) -> bool | None:
    """The first explicit ``attr`` among the [readers.drivers] entries for ``names`` (None if none says)."""
    by_key = {normalize(k): v for k, v in settings.items()}
    for name in names:
        entry = by_key.get(name)
        value = getattr(entry, attr, None) if entry is not None else None
        if value is not None:
            return bool(value)
    return None


def connect_enabled(driver: str, settings: dict[str, Any]) -> bool:
    """Whether a ``[[readers.connect]]`` entry for ``driver`` opens, given ``[readers.drivers]``."""
    name = normalize(driver)
    group = CORE_GROUP.get(name) or registry.canonical(name) or name
    names = [name, group, "libnfc"] if group in LIBNFC_FAMILY else [name, group]
    return _switch(settings, names, "enabled") is not False


def scan_mode_for(driver: str, path: str, readers: Any) -> str:
    """The scan mode of one reader: its ``[[readers.connect]] scan_mode``, else its driver's
    ``[readers.drivers.<ID>] scan_mode``, else ``[readers.scan] mode`` (Core's order)."""
    name = normalize(driver)
    for entry in readers.connect:
        if normalize(entry.driver) == name and entry.path == path and entry.scan_mode:
            return str(entry.scan_mode)
    group = CORE_GROUP.get(name) or registry.canonical(name) or name
    by_key = {normalize(k): v for k, v in readers.drivers.items()}
    for key in (name, group):
        mode = getattr(by_key.get(key), "scan_mode", "")
        if mode:
            return str(mode)
    return str(readers.scan.mode)


def detected_drivers(auto_detect: bool, settings: dict[str, Any]) -> frozenset[str]:
    """The tagd drivers that auto-detect (``pn532uart``, ``acr122``), given the global switch and the drivers'."""
    out = set()
    for driver, core_id in DETECTORS.items():
        names = [core_id, driver]
        if _switch(settings, names, "enabled") is False:
            continue
        override = _switch(settings, names, "auto_detect")
        if override if override is not None else auto_detect:
            out.add(driver)
    return frozenset(out)
