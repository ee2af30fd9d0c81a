"""The config file's schema: one pydantic model per table, Zaparoo Core's reader and mapping keys and tagd's own.

Unknown keys are errors (``extra="forbid"``): a typo must not be silently ignored. Values are checked by
:mod:`.checks`; :class:`Config` gets the Zaparoo App's settings view from :class:`.settings.AppSettings`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import Field, Strict, field_validator, model_validator

from tagd.daemon.config import paths
from tagd.daemon.config.checks import (
    CONTROL_CHARS,
    Bool,
    Float,
    Int,
    Section,
    check_host,
    check_printable,
    check_reader_driver,
    check_url,
    parse_listen,
)
from tagd.daemon.config.settings import AppSettings
from tagd.daemon.config.zaparoo_core import CoreKeys
from tagd.daemon.config.zaparoo_readers import check_driver_key, connect_enabled, detected_drivers, scan_mode_for
from tagd.daemon.config.zaparoo_service import Service


_Section = Section  # the name the models below were written with


# --- readers (Zaparoo's keys) ---------------------------------------------

ScanMode = Literal["", "tap", "hold"]  # "" = not set here (the next level decides)


class ReaderConnect(_Section):
    """One ``[[readers.connect]]`` entry: a reader to open at start (connect string ``driver:path``)."""

    driver: str = Field(min_length=1)
    path: str = ""
    enabled: Bool = True
    id_source: str = ""  # Core's key for its optical-drive reader (uuid/label): ignored by tagd's drivers, as by Core's
    scan_mode: ScanMode = ""  # this reader's tap/hold, over its driver's and [readers.scan] mode

    @field_validator("driver")
    @classmethod
    def _known_driver(cls, v: str) -> str:
        check_reader_driver(v)
        return v

    @model_validator(mode="after")
    def _path_for_driver(self) -> "ReaderConnect":
        from tagd.readers import registry

        entry = registry.spec(self.driver.replace("_", "").lower())
        if entry is not None and entry.path is not None:
            try:
                entry.path(self.path)
            except ValueError as exc:
                raise ValueError(f"path: {exc}") from None
        return self

    @property
    def connect_string(self) -> str:
        # Zaparoo drops underscores from driver ids (pn532_uart == pn532uart)
        return f"{self.driver.replace('_', '').lower()}:{self.path}"


class LaunchGuard(_Section):
    """``[readers.scan.launch_guard]`` with Core's types and ranges: a tap while media plays is staged until
    confirmed. timeout 0 = Core's default (15 s), negative = none; delay before a re-tap confirms."""

    enabled: Bool = False
    timeout: Float = Field(default=0.0, ge=-1)
    delay: Float = Field(default=0.0, ge=0)
    require_confirm: Bool = False


class ReaderScan(_Section):
    mode: Literal["tap", "hold"] = "tap"
    exit_delay: Float = Field(default=0.0, ge=0, le=3600)
    ignore_on_connect: Bool = False
    ignore_system: list[str] = []  # hold mode: these systems' media keep running when the token is lifted
    on_scan: str = ""  # a command run before a tap launches, which can veto it (hooks.py)
    on_remove: str = ""  # a command run before a hold-mode exit, which can keep the media (hooks.py)
    # Core's: in tap mode, a token resolving to the media already playing relaunches it. Core decides what a
    # token resolves to and does not apply the rule to launches it gets over its API (tagd's `run`), so with
    # tagd in front every tap launches, as Core's allow_relaunch = true; accepted so Core's file loads.
    allow_relaunch: Bool = False
    launch_guard: LaunchGuard = LaunchGuard()

    @field_validator("mode", mode="before")
    @classmethod
    def _empty_is_tap(cls, v: Any) -> Any:
        return "tap" if v == "" else v  # Zaparoo treats an empty mode as tap


class DriverSettings(_Section):
    """``[readers.drivers.<ID>]``, as Zaparoo Core: see zaparoo_readers.py for how each switch applies."""

    enabled: Bool | None = None
    auto_detect: Bool | None = None
    scan_mode: ScanMode = ""


class Readers(_Section):
    auto_detect: Bool = True
    connect: list[ReaderConnect] = []
    scan: ReaderScan = ReaderScan()
    drivers: dict[str, DriverSettings] = {}
    scan_history: Int | None = Field(default=None, ge=0)  # days of tokens.history to keep (0: all), as Core's
    options: dict[str, dict[str, Any]] = {}  # tagd: per-driver options, e.g. [readers.options.pn532uart] keys = [...]

    @field_validator("drivers")
    @classmethod
    def _driver_names(cls, v: dict[str, DriverSettings]) -> dict[str, DriverSettings]:
        for name in v:
            check_driver_key(name)
        return v

    def connect_strings(self) -> list[str]:
        """The ``[[readers.connect]]`` entries to open: enabled, and their driver not switched off."""
        return [c.connect_string for c in self.connect if c.enabled and connect_enabled(c.driver, self.drivers)]

    def detected_drivers(self) -> frozenset[str]:
        """The drivers that auto-detect (pn532uart, acr122): the global switch and each driver's."""
        return detected_drivers(self.auto_detect, self.drivers)

    def scan_mode_for(self, driver: str, path: str) -> str:
        """tap or hold for one reader (its entry's scan_mode, its driver's, else [readers.scan] mode)."""
        return scan_mode_for(driver, path, self)


# --- mappings -------------------------------------------------------------


class MappingEntry(_Section):
    """A ``[[mappings.entry]]``, read as Zaparoo Core reads it (``MappingTable.from_config``): token_key "value" =
    the text, "data" = the data, anything else = the UID; match_pattern ``/re/``, with ``*`` (partial), or exact."""

    token_key: str = ""
    match_pattern: str = Field(min_length=1)
    zapscript: str


class Mappings(_Section):
    entry: list[MappingEntry] = []


# --- api ------------------------------------------------------------------


class Api(_Section):
    # every interface: the Zaparoo App on a phone must reach it; what others on the LAN may do is the access
    # policy's (tagd/daemon/api/access.py): nothing but pairing and /health without a key, allowed_ips or a pairing
    listen: str = ":7497"
    keys: list[str] = []
    allowed_origins: list[str] = []

    @field_validator("listen")
    @classmethod
    def _host_port(cls, v: str) -> str:
        parse_listen(v)
        return v


# --- cores (forwarders) ----------------------------------------------------

Seconds = Annotated[float, Strict(), Field(gt=0, le=3600)]


class _TlsCore(_Section):
    ca_file: str = ""  # PEM to trust for wss:// / https:// (a home server's own CA or self-signed certificate)

    @field_validator("ca_file")
    @classmethod
    def _loadable(cls, v: str) -> str:
        from tagd.web.client import tls_context

        tls_context(v)  # ValueError naming the file
        return v


class ZaparooCore(_TlsCore):
    type: Literal["zaparoo"]
    name: str = ""
    url: str = "ws://127.0.0.1:7497/api/v0.1"
    api_key: str = ""
    key_in_query: Bool = False  # send the key as ?key= instead of Authorization: Bearer
    max_age: Seconds = 10.0
    timeout: Seconds = 5.0

    @field_validator("url")
    @classmethod
    def _ws_url(cls, v: str) -> str:
        return check_url(v, ("ws", "wss"), "must be a ws:// or wss:// URL, e.g. ws://127.0.0.1:7497/api/v0.1")


class MqttCore(_Section):
    type: Literal["mqtt"]
    name: str = ""
    max_age: Seconds = 10.0  # a launch not sent this long after its scan is dropped (every core has it)
    host: str = Field(min_length=1)
    port: Int = Field(default=1883, gt=0, lt=65536)
    topic: str = ""  # publish each launch's text here (Zaparoo Core's MQTT reader takes it as a scan)
    username: str = ""
    password: str = ""
    qos: Literal[0, 1, 2] = 0
    timeout: Seconds = 5.0
    # The MQTT fabric (README "Several rooms"): with a node name this tagd is a satellite that publishes its
    # readers' taps under <prefix>/<node>/ for a hub, instead of launches on `topic`.
    node: str = ""
    prefix: str = "tagd"
    home_assistant: bool = True  # with a node: Home Assistant MQTT discovery (tag scanners, sensors)
    tls: bool = False
    ca_file: str = ""
    session_expiry: Int = Field(default=86400, ge=0)

    @model_validator(mode="after")
    def _topic_or_node(self) -> "MqttCore":
        if not self.topic and not self.node:
            raise ValueError("an mqtt core needs a topic (publish launches) or a node name (a fabric satellite)")
        return self

    @field_validator("node")
    @classmethod
    def _node(cls, v: str) -> str:
        if v and not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", v):
            raise ValueError(f"{v!r}: a node name is 1-64 letters, digits, '_' or '-' (it becomes an MQTT topic level)")
        return v

    @field_validator("prefix")
    @classmethod
    def _prefix(cls, v: str) -> str:
        if not v or any(c in v for c in "+#") or v.startswith("/") or v.endswith("/"):
            raise ValueError(f"{v!r}: the topic prefix must be a plain topic without wildcards, e.g. tagd")
        return v

    @field_validator("qos", mode="before")
    @classmethod
    def _qos_number(cls, v: Any) -> Any:
        if isinstance(v, bool) or not isinstance(v, int):
            raise ValueError(f"must be 0, 1 or 2 (a number), not {v!r}")
        return v

    @field_validator("host")
    @classmethod
    def _host(cls, v: str) -> str:
        usage = "must be the broker's host name or IP address, e.g. broker.local"
        check_printable(v, usage)
        check_host(v.strip("[]"), usage)
        return v


class ExecCore(_Section):
    type: Literal["exec"]
    name: str = ""
    max_age: Seconds = 10.0
    argv: list[str] = Field(min_length=1)
    stop_argv: list[str] = []
    timeout: Seconds = 10.0


class WebhookCore(_TlsCore):
    type: Literal["webhook"]
    name: str = ""
    max_age: Seconds = 10.0
    url: str
    stop_url: str = ""
    headers: dict[str, str] = {}
    timeout: Seconds = 5.0

    @field_validator("url", "stop_url")
    @classmethod
    def _http_url(cls, v: str) -> str:
        return check_url(v, ("http", "https"), "must be an http:// or https:// URL") if v else v

    @field_validator("headers")
    @classmethod
    def _http_headers(cls, v: dict[str, str]) -> dict[str, str]:
        for name, value in v.items():  # HTTP's token characters; a value must not break the header line
            if not re.fullmatch(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+", name):
                raise ValueError(f"header name {name!r} is not an HTTP token (letters, digits, - and the like)")
            if CONTROL_CHARS.search(value.replace("\t", "")):
                raise ValueError(f"header {name}: the value contains a control character (a line break?)")
        return v


class StdoutCore(_Section):
    type: Literal["stdout"]
    name: str = ""
    max_age: Seconds = 10.0


CoreConfig = Annotated[
    Union[ZaparooCore, MqttCore, ExecCore, WebhookCore, StdoutCore], Field(discriminator="type")
]


class Sessions(_Section):
    """``[sessions]``: play sessions (tagd/integrations). Sessions shorter than ``min_duration`` seconds are dropped;
    ``platform_hints`` maps a Zaparoo system ID to the hint sent to retroshelf, over the built-in table."""

    min_duration: Float = Field(default=30.0, ge=0, le=86400)
    sync_batch: Int = Field(default=50, ge=1, le=100)
    platform_hints: dict[str, str] = {}


def default_database_path() -> Path:
    return paths.user_data_dir() / "tagd.db"


class Config(AppSettings, _Section, CoreKeys):
    """The whole file. Its Zaparoo ``settings`` view and ``settings.update`` are :class:`AppSettings`."""

    readers: Readers = Readers()
    mappings: Mappings = Mappings()
    api: Api = Api()
    service: Service = Service()
    core: list[CoreConfig] = []
    database: Path = Field(default_factory=default_database_path)
    sessions: Sessions = Sessions()
    run_zapscript: Bool = True  # tagd's: false = taps are announced and recorded but not forwarded

    @model_validator(mode="after")
    def _service_listen(self) -> Config:
        """Core's ``[service] api_listen``/``api_port`` set ``[api] listen``; both given and different is an error."""
        wanted = self.service.listen()
        if wanted is not None and wanted != self.api.listen:
            if "listen" in self.api.model_fields_set:
                raise ValueError(f"[api] listen {self.api.listen!r} and [service] api_listen/api_port ({wanted!r}) "
                                 "disagree: set one of them")
            self.api.listen = wanted
        extra = [o for o in self.service.allowed_origins if o not in self.api.allowed_origins]
        if extra:
            self.api.allowed_origins = [*self.api.allowed_origins, *extra]
        return self
