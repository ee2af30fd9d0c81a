"""The daemon's TOML configuration: models, loading with clear errors, and saving `settings.update` changes.

The reader and mapping keys are Zaparoo Core's own (``[readers] auto_detect``, ``[[readers.connect]]``,
``[readers.scan]``, ``[[mappings.entry]]``) so a user can carry those sections over; ``[api]``,
``[[core]]`` and ``database`` are tagd's. Unknown keys are errors (``extra="forbid"``): a typo must not be
silently ignored. Every error is a :class:`ConfigError` naming the file, the key path (``core[1].url``)
and the reason.

``settings.update`` writes its keys to the file (as Zaparoo Core does), atomically (temp file + rename): the
file as it is on disk is edited in place with tomlkit, so comments, layout and edits not yet reloaded stay;
only a file that does not exist yet is written whole, by :func:`save_config` (a small TOML writer). Settings are never kept in the database, so the file is the one source of truth and
``settings.reload`` means what it says.

A missing config file means all defaults, unless the user named it (``tagd run --config FILE``): then it is an
error. The default path is ``platformdirs.user_config_dir("tagd")/config.toml``, or ``/etc/tagd/config.toml``
when running as root and that file exists.
"""

from __future__ import annotations

import ipaddress
import logging
import math
import os
import re
from pathlib import Path
from typing import Annotated, Any, Iterable, Literal, Union

import platformdirs
from pydantic import BaseModel, ConfigDict, Field, Strict, ValidationError, field_validator

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

SYSTEM_CONFIG = Path("/etc/tagd/config.toml")

log = logging.getLogger(__name__)


class ConfigError(ValueError):
    """A bad configuration: ``str()`` is ``FILE: KEY: REASON``."""

    def __init__(self, file: str | os.PathLike[str], key: str, reason: str) -> None:
        self.file = str(file)
        self.key = key
        self.reason = reason
        super().__init__(f"{self.file}: {key}: {reason}")


# A TOML boolean or number, not a string that looks like one ("yes", "5") nor a boolean where a number is meant
# (true is not 1). An integer where a float is wanted is fine (exit_delay = 2).
Bool = Annotated[bool, Strict()]
Int = Annotated[int, Strict()]
Float = Annotated[float, Strict()]

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _no_nul(v: Any) -> None:
    """A NUL in any string (a path, an argv word, a URL) is a config error: the OS would refuse it later."""
    if isinstance(v, (str, os.PathLike)):
        if "\x00" in os.fspath(v):
            raise ValueError("must not contain a NUL character (\\u0000)")
    elif isinstance(v, (list, tuple)):
        for x in v:
            _no_nul(x)
    elif isinstance(v, dict):
        for k, x in v.items():
            _no_nul(k)
            _no_nul(x)


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    @field_validator("*")
    @classmethod
    def _no_nul_anywhere(cls, v: Any) -> Any:
        _no_nul(v)
        return v


# --- readers (Zaparoo's keys) ---------------------------------------------


class ReaderConnect(_Section):
    """One ``[[readers.connect]]`` entry: a reader to open at start (connect string ``driver:path``)."""

    driver: str = Field(min_length=1)
    path: str = ""
    enabled: Bool = True
    id_source: str = ""  # Zaparoo's key; accepted, tagd derives readerIds itself

    @field_validator("driver")
    @classmethod
    def _known_driver(cls, v: str) -> str:
        check_reader_driver(v)
        return v

    @property
    def connect_string(self) -> str:
        # Zaparoo drops underscores from driver ids (pn532_uart == pn532uart)
        return f"{self.driver.replace('_', '').lower()}:{self.path}"


class ReaderScan(_Section):
    mode: Literal["tap", "hold"] = "tap"
    exit_delay: Float = Field(default=0.0, ge=0, le=3600)
    ignore_on_connect: Bool = False
    ignore_system: list[str] = []  # Zaparoo's key; accepted, unused by tagd
    on_scan: str = ""  # Zaparoo's key; accepted, unused by tagd
    on_remove: str = ""  # Zaparoo's key; accepted, unused by tagd

    @field_validator("mode", mode="before")
    @classmethod
    def _empty_is_tap(cls, v: Any) -> Any:
        return "tap" if v == "" else v  # Zaparoo treats an empty mode as tap


class DriverSettings(_Section):
    enabled: Bool | None = None
    auto_detect: Bool | None = None


class Readers(_Section):
    auto_detect: Bool = True
    connect: list[ReaderConnect] = []
    scan: ReaderScan = ReaderScan()
    drivers: dict[str, DriverSettings] = {}
    scan_history: Int | None = None
    options: dict[str, dict[str, Any]] = {}  # tagd: per-driver options, e.g. [readers.options.pn532uart] keys = [...]


def known_reader_drivers() -> list[str]:
    """Every driver name a connect string may use: the built-ins (aliases too, without importing their modules)
    and any driver registered at run time."""
    from tagd.readers import registry
    from tagd.readers.base import drivers

    return sorted(set(registry.MODULES) | set(drivers()))


def check_connect(connect: str) -> None:
    """A connect string (``tagd run --reader``): ``driver:path`` with a known driver; ValueError if not."""
    from tagd.readers.base import parse_connect

    check_reader_driver(parse_connect(connect)[0])


def check_reader_driver(driver: Any) -> str:
    """The driver id as a connect string uses it (``pn532_uart`` → ``pn532uart``); ValueError naming the known
    drivers if there is no such driver. For ``[[readers.connect]] driver`` and ``settings.update``'s
    ``readersConnect``. A known driver whose dependency is missing here (pcsc without pyscard) passes: that
    is the reader's own error when it opens, not the config's."""
    if not isinstance(driver, str) or not driver.strip():
        raise ValueError("must be a reader driver name")
    name = driver.strip().lower()
    known = known_reader_drivers()
    if name not in known and name.replace("_", "") not in known:
        raise ValueError(f"unknown reader driver {driver!r} (known: {', '.join(known)})")
    return name.replace("_", "")


def _hex_key(v: Any) -> None:
    if not isinstance(v, str):
        raise ValueError(f"must be a 6-byte key in hex (e.g. \"a0a1a2a3a4a5\"), not {v!r}")
    try:
        key = bytes.fromhex(v)
    except ValueError:
        raise ValueError(f"{v!r} is not hex (a key is 12 hex digits, e.g. \"a0a1a2a3a4a5\")") from None
    if len(key) != 6:
        raise ValueError(f"{v!r} is {len(key)} bytes: a MIFARE Classic key is 6 (12 hex digits)")


def _keys(v: Any) -> None:
    if not isinstance(v, list):
        raise ValueError("must be a list of 6-byte keys in hex, e.g. [\"a0a1a2a3a4a5\"]")
    for i, k in enumerate(v):
        try:
            _hex_key(k)
        except ValueError as exc:
            raise ValueError(f"[{i}]: {exc}") from None


def _baud(v: Any) -> None:
    if isinstance(v, bool) or not isinstance(v, int) or not 0 < v <= 10_000_000:
        raise ValueError(f"must be a positive whole number of bits per second (e.g. 115200), not {v!r}")


def _bool(v: Any) -> None:
    if not isinstance(v, bool):
        raise ValueError(f"must be true or false, not {v!r}")


def _str_list(v: Any) -> None:
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        raise ValueError(f"must be a list of strings, not {v!r}")


_PN532_OPTIONS = {"baud": _baud, "keys": _keys}  # tagd/readers/pn532/reader.py
_PCSC_OPTIONS = {"keys": _keys, "buzzer": _bool, "led_on_read": _bool}  # tagd/readers/acr122.py
_SERIAL_OPTIONS = {"baud": _baud}  # tagd/readers/simpleserial.py
# [readers.options.<driver>]: the options each driver reads from its options dict, and a check of each value.
# The drivers take what they are given (int(), bytes.fromhex()), so a wrong type must stop here, at load.
# An alias (pn532, acr122pcsc, simple_serial) also gets the options of the drivers it extends.
READER_OPTIONS: dict[str, dict[str, Any]] = {
    "pn532uart": _PN532_OPTIONS, "pn532": _PN532_OPTIONS,
    "pcsc": _PCSC_OPTIONS, "acr122": _PCSC_OPTIONS, "acr122pcsc": _PCSC_OPTIONS,
    "simpleserial": _SERIAL_OPTIONS, "simple_serial": _SERIAL_OPTIONS,
    "nfcpy": {"targets": _str_list},  # tagd/readers/nfcpy_reader.py
    "replay": {"loop": _bool},  # tagd/readers/replay.py
    "file": {},
}


def _check_reader_options(config: Config, file: str | os.PathLike[str]) -> None:
    for driver, options in config.readers.options.items():
        where = f"readers.options.{driver}"
        schema = READER_OPTIONS.get(driver)
        if schema is None:
            raise ConfigError(file, where, f"no reader driver takes options by this name "
                                           f"(one of {', '.join(sorted(READER_OPTIONS))})")
        for key, value in options.items():
            check = schema.get(key)
            if check is None:
                known = ", ".join(sorted(schema)) or "none"
                raise ConfigError(file, f"{where}.{key}", f"unknown key (the {driver} driver's options: {known})")
            try:
                check(value)
            except ValueError as exc:
                raise ConfigError(file, f"{where}.{key}", str(exc)) from None


# --- mappings -------------------------------------------------------------


class MappingEntry(_Section):
    """A ``[[mappings.entry]]``: token_key ""=uid, "value"=text, "data"; match_pattern ``/re/``, with ``*``, or exact."""

    token_key: Literal["", "id", "uid", "value", "text", "data"] = ""
    match_pattern: str = Field(min_length=1)
    zapscript: str


class Mappings(_Section):
    entry: list[MappingEntry] = []


# --- api ------------------------------------------------------------------


class Api(_Section):
    listen: str = "127.0.0.1:7497"
    keys: list[str] = []
    allowed_origins: list[str] = []

    @field_validator("listen")
    @classmethod
    def _host_port(cls, v: str) -> str:
        parse_listen(v)
        return v


def parse_listen(value: Any) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:7497``, ``:7497`` = every interface) → ``(host, port)``; ValueError saying what is
    wrong. For ``[api] listen`` and ``tagd run --listen``. Port 0 means any free port (tests, the demo)."""
    usage = "must be HOST:PORT with a port 0-65535, e.g. 127.0.0.1:7497"
    if not isinstance(value, str):
        raise ValueError(usage)
    _printable(value, usage)
    host, sep, port = value.rpartition(":")
    if not sep:
        raise ValueError(usage)
    if not (port.isascii() and port.isdigit()) or len(port) > 5 or int(port) > 65535:
        raise ValueError(f"{usage}, not port {port!r}")
    if host.startswith("[") or host.endswith("]"):
        if not (host.startswith("[") and host.endswith("]")):
            raise ValueError(f"{usage}: unbalanced brackets in {value!r}")
        host = host[1:-1]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError(f"{usage}: {host!r} in brackets is not an IPv6 address") from None
    elif host:
        _check_host(host, usage)
    return host, int(port)


def _printable(value: str, usage: str) -> None:
    """An address (listen, URL, host) has no control characters and no whitespace."""
    if _CONTROL.search(value) or any(ch.isspace() for ch in value):
        raise ValueError(f"{usage} (it contains a control character or a space)")


def _check_host(host: str, usage: str) -> None:
    """An IP address or a host name the resolver can take (IDNA-encodable, labels of 1-63, at most 253)."""
    try:
        ipaddress.ip_address(host)
        return
    except ValueError:
        pass
    try:
        ascii_host = host.encode("idna").decode("ascii")
    except UnicodeError:
        ascii_host = ""
    if not (0 < len(ascii_host) <= 253 and re.fullmatch(r"[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*\.?", ascii_host)):
        shown = f"{host[:60]!r}{'…' if len(host) > 60 else ''}"
        raise ValueError(f"{usage}: {shown} is not a host name or IP address")


def _check_url(v: str, schemes: tuple[str, ...], usage: str) -> str:
    """A URL the forwarder can use: no control characters or spaces, the scheme, a host, a valid port."""
    _printable(v, usage)
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(v)
        _ = parts.port  # ValueError for a port that is not a number 0-65535
    except ValueError as exc:
        raise ValueError(f"{usage} ({exc})") from None
    if parts.scheme.lower() not in schemes or not parts.hostname:
        raise ValueError(usage)
    _check_host(parts.hostname.strip("[]"), usage)
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
        return _check_url(v, ("ws", "wss"), "must be a ws:// or wss:// URL, e.g. ws://127.0.0.1:7497/api/v0.1")


class MqttCore(_Section):
    type: Literal["mqtt"]
    name: str = ""
    host: str = Field(min_length=1)
    port: Int = Field(default=1883, gt=0, lt=65536)
    topic: str = Field(min_length=1)
    username: str = ""
    password: str = ""
    qos: Literal[0, 1, 2] = 0
    timeout: Seconds = 5.0

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
        _printable(v, usage)
        _check_host(v.strip("[]"), usage)
        return v


class ExecCore(_Section):
    type: Literal["exec"]
    name: str = ""
    argv: list[str] = Field(min_length=1)
    stop_argv: list[str] = []
    timeout: Seconds = 10.0


class WebhookCore(_TlsCore):
    type: Literal["webhook"]
    name: str = ""
    url: str
    stop_url: str = ""
    headers: dict[str, str] = {}
    timeout: Seconds = 5.0

    @field_validator("url", "stop_url")
    @classmethod
    def _http_url(cls, v: str) -> str:
        return _check_url(v, ("http", "https"), "must be an http:// or https:// URL") if v else v

    @field_validator("headers")
    @classmethod
    def _http_headers(cls, v: dict[str, str]) -> dict[str, str]:
        for name, value in v.items():  # HTTP's token characters; a value must not break the header line
            if not re.fullmatch(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+", name):
                raise ValueError(f"header name {name!r} is not an HTTP token (letters, digits, - and the like)")
            if _CONTROL.search(value.replace("\t", "")):
                raise ValueError(f"header {name}: the value contains a control character (a line break?)")
        return v


class StdoutCore(_Section):
    type: Literal["stdout"]
    name: str = ""


CoreConfig = Annotated[
    Union[ZaparooCore, MqttCore, ExecCore, WebhookCore, StdoutCore], Field(discriminator="type")
]
CORE_TYPES = ("zaparoo", "mqtt", "exec", "webhook", "stdout")


class Sessions(_Section):
    """``[sessions]``: play sessions (tagd/integrations). Sessions shorter than ``min_duration`` seconds are dropped;
    ``platform_hints`` maps a Zaparoo system ID to the hint sent to retroshelf, over the built-in table."""

    min_duration: Float = Field(default=30.0, ge=0, le=86400)
    sync_batch: Int = Field(default=50, ge=1, le=100)
    platform_hints: dict[str, str] = {}


def default_database_path() -> Path:
    return Path(platformdirs.user_data_dir("tagd")) / "tagd.db"


class Config(_Section):
    readers: Readers = Readers()
    mappings: Mappings = Mappings()
    api: Api = Api()
    core: list[CoreConfig] = []
    database: Path = Field(default_factory=default_database_path)
    sessions: Sessions = Sessions()

    # -- Zaparoo `settings` / `settings.update` keys (the reader and scan part) --

    def settings_json(self) -> dict[str, Any]:
        """Zaparoo's ``settings`` result. The reader and scan keys are tagd's settings; the others, which the
        document requires, say what tagd does: it always forwards ZapScript (the core decides what runs),
        reports no errors anywhere, has no per-system launch defaults, and gives audio feedback on a scan
        through the ACR122U's buzzer (``[readers.options.acr122] buzzer``)."""
        scan = self.readers.scan
        return {
            "runZapScript": True,
            "debugLogging": logging.getLogger().isEnabledFor(logging.DEBUG),
            "audioScanFeedback": bool(self.readers.options.get("acr122", {}).get("buzzer", True)),
            "errorReporting": False,
            "systemDefaults": [],
            "readersAutoDetect": self.readers.auto_detect,
            "readersScanMode": scan.mode,
            "readersScanExitDelay": scan.exit_delay,
            "readersScanIgnoreSystems": list(scan.ignore_system),
            "readersConnect": [
                {"driver": c.driver, "path": c.path, "idSource": c.id_source, "enabled": c.enabled}
                for c in self.readers.connect
            ],
        }

    def with_settings(self, update: dict[str, Any], file: str = "<settings.update>") -> "Config":
        """A copy with Zaparoo ``settings.update`` keys applied; ConfigError (key = the param name) if invalid.

        Unknown keys are not handled here: the caller decides which of Zaparoo's other keys it accepts."""
        raw = self.model_dump(mode="python")
        readers = raw["readers"]
        for key, value in update.items():
            if key in SETTINGS_KEYS and key != "readersConnect":
                *parents, leaf = SETTINGS_KEYS[key]
                table = raw
                for name in parents:
                    table = table[name]
                table[leaf] = value
            elif key == "readersConnect":
                if not isinstance(value, list) or not all(isinstance(c, dict) for c in value):
                    raise ConfigError(file, key, "must be a list of {driver, path, idSource?, enabled?}")
                readers["connect"] = [
                    {"driver": c.get("driver"), "path": c.get("path", ""), "id_source": c.get("idSource", ""),
                     "enabled": c.get("enabled", True)}
                    for c in value
                ]
            elif key in FIXED_SETTINGS:
                if value != self.settings_json()[key]:
                    raise ConfigError(file, key, FIXED_SETTINGS[key])
            else:
                raise ConfigError(file, key, "not a setting tagd knows")
        try:
            return Config.model_validate(raw)
        except ValidationError as exc:
            err = exc.errors()[0]
            key = next((k for k in update if _param_matches(k, err["loc"])), "/".join(map(str, err["loc"])))
            raise ConfigError(file, key, _reason(err)) from None


# where each settings.update key lives in the file
SETTINGS_KEYS = {
    "readersAutoDetect": ("readers", "auto_detect"),
    "readersScanMode": ("readers", "scan", "mode"),
    "readersScanExitDelay": ("readers", "scan", "exit_delay"),
    "readersScanIgnoreSystems": ("readers", "scan", "ignore_system"),
    "readersConnect": ("readers", "connect"),
}


FIXED_SETTINGS = {  # Zaparoo settings tagd reports but does not change over the API, and why
    "runZapScript": "tagd always forwards ZapScript: the core decides what runs",
    "debugLogging": "start tagd with -vv for debug logging (tagd -vv run)",
    "audioScanFeedback": "set [readers.options.acr122] buzzer in the config file",
    "errorReporting": "tagd reports errors nowhere",
    "systemDefaults": "tagd does not launch media itself: set system defaults on the core",
}


def _param_matches(param: str, loc: tuple[Any, ...]) -> bool:
    path = SETTINGS_KEYS.get(param)
    return path is not None and path[-1] in loc


# --- loading ---------------------------------------------------------------


def default_config_path() -> Path:
    """``/etc/tagd/config.toml`` for root when it exists, else the user's config dir."""
    if hasattr(os, "geteuid") and os.geteuid() == 0 and SYSTEM_CONFIG.exists():
        return SYSTEM_CONFIG
    return Path(platformdirs.user_config_dir("tagd")) / "config.toml"


def key_path(loc: tuple[Any, ...]) -> str:
    """Pydantic's error location as a config key: ``("core", 1, "zaparoo", "url")`` → ``core[1].url``."""
    out = ""
    parts = list(loc)
    for i, part in enumerate(parts):
        if isinstance(part, int):
            out += f"[{part}]"
            continue
        # the discriminated union adds the tag ("zaparoo") after the list index: not a key the user wrote
        if i >= 2 and parts[i - 2] == "core" and isinstance(parts[i - 1], int) and part in CORE_TYPES:
            continue
        out += f".{part}" if out else str(part)
    return out


def _reason(err: dict[str, Any]) -> str:
    if err["type"] == "extra_forbidden":
        return "unknown key"
    if err["type"] == "missing":
        return "required key is missing"
    if err["type"] == "union_tag_invalid":
        return f"must be one of {', '.join(CORE_TYPES)}, not {err.get('ctx', {}).get('tag')!r}"
    if err["type"] == "union_tag_not_found":
        return f"required key is missing (one of {', '.join(CORE_TYPES)})"
    if err["type"] == "bool_type":
        return f"must be a boolean, true or false, not {err.get('input')!r}"
    if err["type"] in ("float_type", "int_type"):
        what = "a whole number" if err["type"] == "int_type" else "a number"
        return f"must be {what}, not {err.get('input')!r}"
    return err["msg"].removeprefix("Value error, ")


def parse_config(text: str, file: str | os.PathLike[str] = "<config>") -> Config:
    """Validate TOML text; ConfigError on any problem (the first one; the rest are counted in the reason)."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        m = re.search(r"line (\d+)", str(exc))
        raise ConfigError(file, f"line {m.group(1)}" if m else "(syntax)", f"invalid TOML: {exc}") from None
    try:
        config = Config.model_validate(raw)
    except ValidationError as exc:
        errors = exc.errors()
        first = errors[0]
        for e in errors:  # a bad or missing core type is reported at the key the user must fix
            if e["type"] in ("union_tag_invalid", "union_tag_not_found"):
                e["loc"] = (*e["loc"], "type")
        reason = _reason(first)
        if len(errors) > 1:
            others = "; ".join(f"{key_path(e['loc'])}: {_reason(e)}" for e in errors[1:4])
            reason += f" (and {len(errors) - 1} more: {others})"
        raise ConfigError(file, key_path(first["loc"]) or "(top)", reason) from None
    if not config.database.is_absolute():  # relative to the config file, so the file means the same from any cwd
        base = Path(file).parent if not str(file).startswith("<") else Path.cwd()
        config.database = (base / config.database).resolve()
    _check_reader_options(config, file)
    _check_mapping_entries(config, file)
    return config


_ENTRY_KEYS = {"pattern": "match_pattern", "override": "zapscript", "type": "token_key"}  # Mapping field → file key


def _check_mapping_entries(config: Config, file: str | os.PathLike[str]) -> None:
    """Each ``[[mappings.entry]]`` must build: a regex RE2 refuses is a config error at load, not a crash at start."""
    if not config.mappings.entry:
        return
    from tagd.daemon.mappings import MappingError, MappingTable

    for i, entry in enumerate(config.mappings.entry):
        try:
            MappingTable.from_config([entry])
        except MappingError as exc:
            field = exc.field.rpartition(": ")[2]
            raise ConfigError(file, f"mappings.entry[{i}].{_ENTRY_KEYS.get(field, field)}", exc.reason) from None


def load_config(path: str | os.PathLike[str] | None = None, required: bool = False) -> Config:
    """Load and validate the config file (default path when None). A missing file gives all defaults, unless
    ``required`` (a file the user named, ``tagd run --config FILE``): then it is a ConfigError."""
    file = Path(path) if path is not None else default_config_path()
    if "\x00" in str(file):
        raise ConfigError(str(file).replace("\x00", "\\u0000"), "(file)", "the path contains a NUL character")
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        if required:
            raise ConfigError(file, "(file)", "config file not found") from None
        return Config()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(file, "(file)", f"cannot read: {exc}") from None
    return parse_config(text, file)


# --- saving (settings.update) ----------------------------------------------

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def _toml_key(key: str) -> str:
    return key if _BARE_KEY.match(key) else _toml_string(key)


def _toml_string(s: str) -> str:
    out = []
    for ch in s:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, str):
        return _toml_string(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{_toml_key(k)} = {_toml_value(x)}" for k, x in v.items()) + "}"
    raise TypeError(f"cannot write {type(v).__name__} to TOML")


def _is_table_array(v: Any) -> bool:
    return isinstance(v, list) and bool(v) and all(isinstance(x, dict) for x in v)


def dumps_toml(data: dict[str, Any]) -> str:
    """Write nested dicts/lists/scalars as TOML: scalars first, then sub-tables, then arrays of tables."""
    lines: list[str] = []

    def table(prefix: str, d: dict[str, Any], header: str | None) -> None:
        if header is not None:
            lines.append("")
            lines.append(header)
        subtables = []
        for k, v in d.items():
            if v is None:
                continue
            if isinstance(v, dict) or _is_table_array(v):
                subtables.append((k, v))
            else:
                lines.append(f"{_toml_key(k)} = {_toml_value(v)}")
        for k, v in subtables:
            name = f"{prefix}{_toml_key(k)}"
            if isinstance(v, dict):
                table(name + ".", v, f"[{name}]")
            else:
                for item in v:
                    table(name + ".", item, f"[[{name}]]")

    table("", data, None)
    return "\n".join(lines).lstrip("\n") + "\n"


def _write_atomically(file: Path, text: str) -> None:
    """Temp file in the same directory, fsync, rename: a crash leaves the old file or the new one, never half."""
    import tempfile  # only settings.update writes the config: not loaded at start

    try:
        file.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".config-", suffix=".toml", dir=file.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, file)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise ConfigError(file, "(file)", f"cannot write: {exc}") from None


def save_config(config: Config, path: str | os.PathLike[str]) -> None:
    """Write the whole config as TOML (non-default values only). ConfigError if it cannot."""
    _write_atomically(Path(path), dumps_toml(config.model_dump(mode="json", exclude_defaults=True)))


def _connect_entry(entry: dict[str, Any]) -> dict[str, Any]:
    defaults = ReaderConnect.model_fields
    return {k: v for k, v in entry.items() if k in ("driver", "path") or v != defaults[k].default}


def _edit_settings(text: str, wanted: Config, keys: Iterable[str]) -> str:
    """``text`` with only the settings ``keys`` set to their values in ``wanted``: comments and layout stay."""
    import tomlkit  # only settings.update edits the file

    doc = tomlkit.parse(text)
    values = wanted.model_dump(mode="json")
    for key in keys:
        if key not in SETTINGS_KEYS:
            continue  # a fixed setting, sent unchanged
        *parents, leaf = SETTINGS_KEYS[key]
        table: Any = doc
        source: Any = values
        for name in parents:
            if name not in table:
                table[name] = tomlkit.table(is_super_table=True)
            table, source = table[name], source[name]
        value = source[leaf]
        if leaf == "connect":
            entries = [_connect_entry(c) for c in value]
            if isinstance(table.get(leaf), tomlkit.items.Array) or not entries:
                array = tomlkit.array()
                for c in entries:
                    inline = tomlkit.inline_table()
                    inline.update(c)
                    array.append(inline)
                value = array
            else:
                value = tomlkit.aot()
                for c in entries:
                    value.append(tomlkit.item(c))
        table[leaf] = value
    return tomlkit.dumps(doc)


def update_settings(config: Config, update: dict[str, Any], path: str | os.PathLike[str]) -> Config:
    """``settings.update``: the running config with the Zaparoo keys applied (returned), and the same keys changed
    in the file as it is on disk now — its comments, its layout and any edit made since the last reload are kept.
    A file with an error is not overwritten: ConfigError naming it, and nothing changes."""
    new = config.with_settings(update)
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        save_config(new, file)
        return new
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(file, "(file)", f"cannot read: {exc}") from None
    try:
        wanted = parse_config(text, file).with_settings(update)
    except ConfigError as exc:
        raise ConfigError(exc.file, exc.key, f"{exc.reason} (fix the file: settings.update did not write it)") from None
    edited = None
    try:
        edited = _edit_settings(text, wanted, update)
        if parse_config(edited, file) != wanted:
            edited = None
    except Exception as exc:  # tomlkit could not place a value: write the whole file instead
        log.debug("editing %s in place failed: %s", file, exc)
        edited = None
    if edited is None:
        log.warning("%s: rewritten whole (its comments are lost): the settings could not be edited in place", file)
        edited = dumps_toml(wanted.model_dump(mode="json", exclude_defaults=True))
    _write_atomically(file, edited)
    return new
