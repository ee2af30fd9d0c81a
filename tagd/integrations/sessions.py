"""Play sessions as a state machine: what started, when, and what a finished session is — no I/O, no clock of its own.

A session starts at the core's ``media.started`` and ends at ``media.stopped``, at the next start, when the core
disconnects, or when tagd stops. With no Zaparoo core the media's presence is the held tag's (hold mode): the
launch starts it, the hold-mode exit ends it. :class:`SessionTracker` takes those events with the time they
happened and returns what to store: the finished :class:`Session` (or None when it was shorter than the minimum)
and the new :class:`OpenSession`.

:data:`PLATFORM_HINTS` turns Zaparoo system IDs (Core's ``pkg/database/systemdefs``) into retroshelf's platform
hints (``snes``, ``gba``, ``psx``, ``arcade`` …), which are RomM's platform slugs too; an unknown system gives its
ID in lower case, which is still a useful hint.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, replace
from typing import Any, Mapping

DEFAULT_MIN_DURATION = 30.0

PLATFORM_HINTS: dict[str, str] = {
    # Nintendo
    "NES": "nes", "FDS": "fds", "SNES": "snes", "SNESMSU1": "snes", "Sufami": "snes", "SuperGameboy": "sgb",
    "Nintendo64": "n64", "GameCube": "ngc", "Wii": "wii", "WiiU": "wiiu", "Switch": "switch",
    "Gameboy": "gb", "Gameboy2P": "gb", "GameboyColor": "gbc", "GBA": "gba", "GBA2P": "gba", "NDS": "nds",
    "3DS": "3ds", "VirtualBoy": "virtualboy", "PokemonMini": "pokemon-mini", "GameNWatch": "g-and-w",
    # Sega
    "SG1000": "sg1000", "MasterSystem": "sms", "GameGear": "gamegear", "GameGear2P": "gamegear",
    "Genesis": "genesis", "GenesisMSU": "genesis", "GenesisPlus": "genesis", "MegaCD": "segacd",
    "Sega32X": "sega32", "Saturn": "saturn", "Dreamcast": "dc",
    # Sony
    "PSX": "psx", "PS2": "ps2", "PS3": "ps3", "PSP": "psp", "Vita": "psvita",
    # NEC, SNK, Atari and others
    "TurboGrafx16": "tg16", "TurboGrafx16CD": "turbografx-cd", "SuperGrafx": "supergrafx", "PCFX": "pc-fx",
    "NeoGeo": "neogeoaes", "NeoGeoAES": "neogeoaes", "NeoGeoMVS": "neogeomvs", "NeoGeoCD": "neo-geo-cd",
    "NeoGeoPocket": "neo-geo-pocket", "NeoGeoPocketColor": "neo-geo-pocket-color",
    "Atari2600": "atari2600", "Atari5200": "atari5200", "Atari7800": "atari7800", "AtariLynx": "lynx",
    "Jaguar": "jaguar", "JaguarCD": "atari-jaguar-cd", "3DO": "3do", "ColecoVision": "colecovision",
    "Intellivision": "intellivision", "Vectrex": "vectrex", "WonderSwan": "wonderswan",
    "WonderSwanColor": "wonderswan-color", "Arcade": "arcade", "DOS": "dos", "PC": "win", "C64": "c64",
    "Amiga": "amiga", "Amiga500": "amiga", "Amiga1200": "amiga", "MSX": "msx", "MSX1": "msx", "MSX2": "msx2",
}


def platform_hint(system_id: str, overrides: Mapping[str, str] | None = None) -> str:
    """retroshelf's hint for a Zaparoo system ID (``overrides`` from the config first); '' when there is no ID."""
    if not system_id:
        return ""
    if overrides and system_id in overrides:
        return overrides[system_id]
    return PLATFORM_HINTS.get(system_id, system_id.lower())


def clean_name(path: str) -> str:
    """A ROM's name from its path when the core gives none: the file name without extension and without the
    ``(USA)``/``[!]`` tags, e.g. ``/roms/SNES/Chrono Trigger (USA).sfc`` → ``Chrono Trigger``."""
    base = os.path.basename(path.rstrip("/\\").replace("\\", "/")) or path
    stem = re.sub(r"\.[A-Za-z0-9]{1,5}$", "", base)
    return re.sub(r"\s*[\(\[][^\)\]]*[\)\]]", "", stem).strip() or stem


@dataclass(frozen=True)
class OpenSession:
    rom_path: str
    rom_name: str
    system_id: str
    started_at: float  # unix seconds
    source: str  # "core" (media.started) or "hold" (a held tag, no core)
    rom_hash: str = ""
    id: int | None = None  # its row, once stored


@dataclass(frozen=True)
class Session:
    rom_path: str
    rom_name: str
    duration: int  # whole seconds
    played_at: int  # unix seconds of the start (retroshelf's devicePlayedAt)
    platform_hint: str
    rom_hash: str = ""
    system_id: str = ""
    source: str = ""


def media_session(params: Any, now: float) -> OpenSession | None:
    """The session a ``media.started`` notification begins; None if it names no media."""
    if not isinstance(params, dict):
        return None
    path = params.get("mediaPath") if isinstance(params.get("mediaPath"), str) else ""
    name = params.get("mediaName") if isinstance(params.get("mediaName"), str) else ""
    if not (path or name):
        return None
    system = params.get("systemId") if isinstance(params.get("systemId"), str) else ""
    rom_hash = params.get("mediaHash") if isinstance(params.get("mediaHash"), str) else ""
    return OpenSession(path or name, name or clean_name(path), system, now, "core", rom_hash)


class SessionTracker:
    """The session under way, if any; each event returns (finished session or None, the open one now)."""

    def __init__(self, min_duration: float = DEFAULT_MIN_DURATION, hints: Mapping[str, str] | None = None) -> None:
        self.min_duration = float(min_duration)
        self.hints = dict(hints or {})
        self.current: OpenSession | None = None

    def finish(self, open_: OpenSession, now: float) -> Session | None:
        """The session ``open_`` becomes if it ends ``now``; None when it is shorter than the minimum."""
        duration = max(0.0, now - open_.started_at)
        if duration < self.min_duration:
            return None
        return Session(open_.rom_path, open_.rom_name or clean_name(open_.rom_path), int(duration),
                       int(open_.started_at), platform_hint(open_.system_id, self.hints), open_.rom_hash,
                       open_.system_id, open_.source)

    def start(self, new: OpenSession, now: float) -> tuple[OpenSession | None, Session | None]:
        """A new session begins; the one under way (returned first, with what it became) ends now."""
        ended, self.current = self.current, new
        return ended, (self.finish(ended, now) if ended else None)

    def stop(self, now: float) -> tuple[OpenSession | None, Session | None]:
        ended, self.current = self.current, None
        return ended, (self.finish(ended, now) if ended else None)

    def stored(self, row_id: int) -> None:
        """The open session has its row now."""
        if self.current is not None:
            self.current = replace(self.current, id=row_id)

    def enrich(self, rom_name: str = "", rom_hash: str = "") -> None:
        """What a catalog lookup learnt about the session under way (RomM's clean name and hash)."""
        if self.current is not None:
            self.current = replace(self.current, rom_name=rom_name or self.current.rom_name,
                                   rom_hash=rom_hash or self.current.rom_hash)
