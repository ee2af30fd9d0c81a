"""The daemon's TOML configuration, one job per module, every name importable from here as before.

- :mod:`.schema` — the models, one per table (``Config`` is the whole file);
- :mod:`.checks` — value checks: strict types, listen addresses, hosts, URLs, reader drivers and their options;
- :mod:`.errors` — :class:`ConfigError` (``FILE: KEY: REASON``) and pydantic's errors turned into key and reason;
- :mod:`.loading` — the default path, reading and validating a file;
- :mod:`.settings` — the Zaparoo App's ``settings`` view and ``settings.update`` keys;
- :mod:`.writing` — ``settings.update`` edits the file in place with tomlkit, atomically;
- :mod:`.zaparoo_readers`, :mod:`.zaparoo_service`, :mod:`.zaparoo_core` — what a Zaparoo Core config.toml's
  ``[readers.drivers]``, ``[service]`` and other keys mean to tagd, so Core's file loads as it is.

The reader and mapping keys are Zaparoo Core's own (``[readers] auto_detect``, ``[[readers.connect]]``,
``[readers.scan]``, ``[[mappings.entry]]``) so a user can carry those sections over; ``[api]``,
``[[core]]`` and ``database`` are tagd's. Unknown keys are errors: a typo must not be silently ignored. Every
error is a :class:`ConfigError` naming the file, the key path (``core[1].url``) and the reason.
"""

from tagd.daemon.config.checks import (
    CONTROL_CHARS,
    READER_OPTIONS,
    Bool,
    Float,
    Int,
    check_connect,
    check_host,
    check_no_nul,
    check_printable,
    check_reader_driver,
    check_url,
    known_reader_drivers,
    parse_listen,
)
from tagd.daemon.config.errors import CORE_TYPES, ConfigError, key_path
from tagd.daemon.config.loading import SYSTEM_CONFIG, default_config_path, load_config, parse_config, tomllib
from tagd.daemon.config.schema import (
    Api,
    Config,
    CoreConfig,
    DriverSettings,
    ExecCore,
    LaunchGuard,
    MappingEntry,
    Mappings,
    MqttCore,
    ReaderConnect,
    Readers,
    ReaderScan,
    Seconds,
    StdoutCore,
    WebhookCore,
    ZaparooCore,
    default_database_path,
)
from tagd.daemon.config.settings import FIXED_SETTINGS, SETTINGS_KEYS, AppSettings
from tagd.daemon.config.writing import config_text, save_config, update_settings
from tagd.daemon.config.zaparoo_service import Discovery, Service

__all__ = [
    "CONTROL_CHARS", "READER_OPTIONS", "Bool", "Float", "Int", "check_connect", "check_host", "check_no_nul",
    "check_printable", "check_reader_driver", "check_url", "known_reader_drivers", "parse_listen", "CORE_TYPES",
    "ConfigError", "key_path", "SYSTEM_CONFIG", "default_config_path", "load_config", "parse_config", "tomllib",
    "Api", "Config", "CoreConfig", "DriverSettings", "ExecCore", "MappingEntry", "Mappings", "MqttCore",
    "ReaderConnect", "Readers", "ReaderScan", "Seconds", "StdoutCore", "WebhookCore", "ZaparooCore",
    "default_database_path", "FIXED_SETTINGS", "SETTINGS_KEYS", "AppSettings", "config_text", "save_config",
    "update_settings", "Service", "Discovery", "LaunchGuard",
]
