"""The daemon config: Zaparoo-compatible keys, defaults, and errors that name file, key and reason."""

from __future__ import annotations

import typing
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tagd.daemon.config import (
    Config,
    ConfigError,
    CORE_TYPES,
    CoreConfig,
    config_text,
    load_config,
    parse_config,
    save_config,
    update_settings,
)

FULL = """
database = "/var/lib/tagd/tagd.db"

[readers]
auto_detect = false

[[readers.connect]]
driver = "pn532_uart"
path = "/dev/ttyUSB0"

[[readers.connect]]
driver = "acr122pcsc"
path = "ACS ACR122U"
enabled = false

[readers.scan]
mode = "hold"
exit_delay = 2.5
ignore_on_connect = true

[[mappings.entry]]
token_key = ""
match_pattern = "04:ab:cd"
zapscript = "**launch.system:snes"

[api]
listen = "0.0.0.0:7497"
keys = ["secret"]

[[core]]
type = "zaparoo"
url = "ws://mister.local:7497/api/v0.1"
api_key = "k"

[[core]]
type = "mqtt"
host = "broker"
topic = "zaparoo/scan"
qos = 1

[[core]]
type = "exec"
argv = ["/usr/bin/launch", "{text}"]

[[core]]
type = "webhook"
url = "https://example.org/hook"
headers = { Authorization = "Bearer x" }

[[core]]
type = "stdout"
"""


def test_full_config_loads_every_section(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(FULL)
    c = load_config(path)
    assert c.readers.auto_detect is False
    assert [r.connect_string for r in c.readers.connect] == ["pn532uart:/dev/ttyUSB0", "acr122pcsc:ACS ACR122U"]
    assert c.readers.connect[1].enabled is False
    assert (c.readers.scan.mode, c.readers.scan.exit_delay, c.readers.scan.ignore_on_connect) == ("hold", 2.5, True)
    assert c.mappings.entry[0].match_pattern == "04:ab:cd"
    assert c.api.listen == "0.0.0.0:7497" and c.api.keys == ["secret"]
    assert [core.type for core in c.core] == ["zaparoo", "mqtt", "exec", "webhook", "stdout"]
    assert c.core[0].max_age == 10.0
    assert c.core[1].port == 1883
    assert c.database == Path("/var/lib/tagd/tagd.db")


def test_missing_file_gives_defaults(tmp_path: Path) -> None:
    c = load_config(tmp_path / "absent.toml")
    assert c.readers.auto_detect is True
    assert c.readers.scan.mode == "tap" and c.readers.scan.exit_delay == 0
    assert c.api.listen == ":7497"  # every interface: the App on a phone reaches it (access.py decides what it may do)
    assert c.core == []
    assert c.database.name == "tagd.db" and c.database.is_absolute()


def test_relative_database_is_relative_to_the_config_file(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('database = "data/tagd.db"\n')
    assert load_config(path).database == tmp_path / "data" / "tagd.db"


def test_empty_scan_mode_means_tap_as_in_zaparoo() -> None:
    assert parse_config('[readers.scan]\nmode = ""\n').readers.scan.mode == "tap"


@pytest.mark.parametrize(
    "text, key, reason",
    [
        ("[readers]\nauto_detec = true\n", "readers.auto_detec", "unknown key"),
        ("[readers]\nauto_detect = 3\n", "readers.auto_detect", "boolean"),
        ('[readers.scan]\nmode = "press"\n', "readers.scan.mode", "'tap' or 'hold'"),
        ("[readers.scan]\nexit_delay = -1\n", "readers.scan.exit_delay", "greater than or equal to 0"),
        ("[[readers.connect]]\npath = \"/dev/x\"\n", "readers.connect[0].driver", "required key is missing"),
        ('[[mappings.entry]]\nmatch_pattern = "x"\n', "mappings.entry[0].zapscript", "required key is missing"),
        ('[api]\nlisten = "localhost"\n', "api.listen", "HOST:PORT"),
        ('[[core]]\ntype = "stdout"\n[[core]]\ntype = "zaparoo"\nurl = "http://x"\n', "core[1].url", "ws://"),
        ('[[core]]\ntype = "carrier-pigeon"\n', "core[0].type", "one of zaparoo, mqtt, exec, webhook, stdout"),
        ('[[core]]\nurl = "ws://x"\n', "core[0].type", "required key is missing"),
        ('[[core]]\ntype = "mqtt"\nhost = "h"\n', "core[0]", "needs a topic (publish launches) or a node name"),
        ('[[core]]\ntype = "mqtt"\nhost = "h"\nnode = "a/b"\n', "core[0].node", "becomes an MQTT topic level"),
        ('[[core]]\ntype = "mqtt"\nhost = "h"\ntopic = "t"\nqos = 3\n', "core[0].qos", "Input should be"),
        ('[[core]]\ntype = "exec"\nargv = []\n', "core[0].argv", "at least 1"),
        ('[[core]]\ntype = "webhook"\nurl = "ftp://x"\n', "core[0].url", "http://"),
        ('[[core]]\ntype = "zaparoo"\nmax_age = 0\n', "core[0].max_age", "greater than 0"),
        ('[[core]]\ntype = "stdout"\nverbose = true\n', "core[0].verbose", "unknown key"),
        ("colour = 'blue'\n", "colour", "unknown key"),
        ("[readers\n", "line 1", "invalid TOML"),
    ],
)
def test_invalid_key_names_file_key_and_reason(tmp_path: Path, text: str, key: str, reason: str) -> None:
    path = tmp_path / "config.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    err = info.value
    assert (err.file, err.key) == (str(path), key)
    assert reason in err.reason
    assert str(err).startswith(f"{path}: {key}: ")


def test_unreadable_file_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_bytes(b"\xff\xfe not utf-8")
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(path)


def test_settings_update_writes_the_file_back(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(FULL)
    new = update_settings(load_config(path), {"readersScanMode": "tap", "readersScanExitDelay": 1.5,
                                              "readersAutoDetect": True,
                                              "readersConnect": [{"driver": "file", "path": "/tmp/t"}]}, path)
    again = load_config(path)
    assert again == new
    assert again.readers.scan.mode == "tap" and again.readers.scan.exit_delay == 1.5
    assert [r.connect_string for r in again.readers.connect] == ["file:/tmp/t"]
    assert again.core == load_config_text(FULL).core  # everything else kept


def load_config_text(text: str) -> Config:
    return parse_config(text, "<test>")


def test_settings_json_reports_reader_keys() -> None:
    c = load_config_text(FULL)
    s = c.settings_json()
    assert s["readersScanMode"] == "hold" and s["readersScanExitDelay"] == 2.5 and s["readersAutoDetect"] is False
    assert s["readersConnect"][0] == {"driver": "pn532_uart", "path": "/dev/ttyUSB0", "idSource": "", "enabled": True}


@pytest.mark.parametrize("update, key", [({"readersScanMode": "squeeze"}, "readersScanMode"),
                                          ({"readersScanExitDelay": -2}, "readersScanExitDelay"),
                                          ({"readersConnect": "pn532"}, "readersConnect"),
                                          ({"debugLogging": "yes"}, "debugLogging")])
def test_bad_settings_update_names_the_param_and_leaves_the_file(tmp_path: Path, update: dict, key: str) -> None:
    path = tmp_path / "config.toml"
    path.write_text(FULL)
    with pytest.raises(ConfigError) as info:
        update_settings(load_config(path), update, path)
    assert info.value.key == key
    assert path.read_text() == FULL


def test_save_creates_a_missing_config(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "config.toml"
    update_settings(load_config(path), {"readersScanMode": "hold"}, path)
    assert load_config(path).readers.scan.mode == "hold"


# --- writing a whole file (tomlkit): what it writes reads back as the same config ----------------------------

_text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",), exclude_characters="\x00"), max_size=20)


@given(st.dictionaries(st.from_regex(r"[A-Za-z0-9-]{1,8}", fullmatch=True), _text.filter(  # what a header value may hold
                       lambda v: not any(ord(c) < 32 and c != "\t" or c == "\x7f" for c in v)),
                       max_size=3),
       st.lists(_text, min_size=1, max_size=3), st.floats(0, 3600), st.booleans())
def test_a_config_written_whole_reads_back_equal(headers: dict, argv: list, delay: float, auto: bool) -> None:
    config = Config.model_validate({
        "readers": {"auto_detect": auto, "scan": {"exit_delay": delay}, "connect": [{"driver": "file", "path": "/t"}]},
        "core": [{"type": "exec", "argv": argv}, {"type": "webhook", "url": "http://h/x", "headers": headers}],
        "database": "/var/lib/tagd/tagd.db"})
    assert parse_config(config_text(config)) == config


def test_core_types_are_the_schemas_core_tables() -> None:
    """errors.CORE_TYPES (to hide pydantic's union tag in key paths) names exactly the [[core]] models."""
    models = typing.get_args(typing.get_args(CoreConfig)[0])
    assert tuple(m.model_fields["type"].annotation.__args__[0] for m in models) == CORE_TYPES


@given(st.builds(lambda mode, delay, auto: {"readersScanMode": mode, "readersScanExitDelay": delay,
                                            "readersAutoDetect": auto},
                 st.sampled_from(["tap", "hold"]), st.floats(0, 3600), st.booleans()))
def test_saved_config_reloads_equal(update: dict) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "config.toml"
        path.write_text(FULL)
        new = update_settings(load_config(path), update, path)
        assert load_config(path) == new


def test_save_config_reports_an_unwritable_place(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(ConfigError, match="cannot write"):
        save_config(Config(), blocker / "config.toml")
