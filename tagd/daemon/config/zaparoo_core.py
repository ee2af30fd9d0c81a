"""The rest of a Zaparoo Core config.toml: the keys Core writes into every file, and Core's own sections.

Core saves ``config_schema``, ``debug_logging``, ``error_reporting`` and ``[audio] scan_feedback`` into every
config.toml it writes, so a Core user's file has them even if they never touched them; they are read here with
Core's types (the App's debugLogging, errorReporting and audioScanFeedback settings are these keys in Core).
The sections about what Core itself does — launching media (``[launchers]``, ``[media]``,
``[systems]``, ``[playtime]``, ``[profiles]``, ``[groovy]``, ``[input]``, ``[zapscript]``, ``[scraper]``) and
maintaining itself (``[updates]``, ``[backup]``) — belong to the core tagd forwards to: a file that has them
loads, tagd keeps them as written and uses none of them (a log line at start says so). The reader, scan,
mapping and service keys, which tagd does use, are in schema.py and zaparoo_service.py.
"""

from __future__ import annotations

import logging
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from tagd.daemon.config.checks import Bool, Int

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1  # Core's config_schema this tagd reads

CORE_ONLY_SECTIONS = ("launchers", "media", "systems", "playtime", "profiles", "groovy", "input", "zapscript",
                      "scraper", "updates", "backup")


class Audio(BaseModel):
    """``[audio]``: Core's scan sounds. ``scan_feedback`` is in every file Core writes.

    tagd plays no sound files itself (Core's ``*_sound`` keys are kept as written): a tap's outcome is the ACR122U's
    buzzer and LED, and tagd's own ``success_command`` / ``fail_command`` (an argv list, run without a shell) can
    play a sound through the system (tagd/daemon/feedback.py)."""

    model_config = ConfigDict(extra="forbid")

    scan_feedback: Bool = True
    success_command: list[str] = []
    fail_command: list[str] = []

    @field_validator("success_command", "fail_command")
    @classmethod
    def _names_a_program(cls, argv: list[str]) -> list[str]:
        if argv and not argv[0].strip():
            raise ValueError("the first item must name the program to run")
        return argv
    success_sound: str | None = None
    fail_sound: str | None = None
    limit_sound: str | None = None
    pending_sound: str | None = None
    ready_sound: str | None = None
    volume: Int | None = Field(default=None, ge=0, le=100)


class CoreKeys(BaseModel):
    """Mixed into Config: Core's top-level keys and sections that are not about readers, mappings or the API."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    config_schema: Int = Field(default=SCHEMA_VERSION, ge=0, le=SCHEMA_VERSION)
    debug_logging: Bool = False
    error_reporting: Bool = False
    audio: Audio = Audio()
    launchers: dict[str, Any] = {}
    media: dict[str, Any] = {}
    systems: dict[str, Any] = {}
    playtime: dict[str, Any] = {}
    profiles: dict[str, Any] = {}
    groovy: dict[str, Any] = {}
    input: dict[str, Any] = {}
    zapscript: dict[str, Any] = {}
    scraper: dict[str, Any] = {}
    updates: dict[str, Any] = {}
    backup: dict[str, Any] = {}

    def core_only_sections(self) -> list[str]:
        """The Core sections this file has that tagd leaves to the core."""
        return [name for name in CORE_ONLY_SECTIONS if getattr(self, name)]


def log_core_only_sections(config: CoreKeys) -> None:
    """Say once at start which of Core's own sections the file has and tagd leaves alone."""
    names = config.core_only_sections()
    if names:
        log.info("the config's Zaparoo Core sections %s are the core's: tagd uses none of them",
                 ", ".join(f"[{name}]" for name in names))
