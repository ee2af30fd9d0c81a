"""Config values the daemon cannot use are config errors at load (exit 2 naming file, key and reason), not a
traceback at start-up nor a silent coercion: reader options by driver, NULs, [api] listen and --listen, strict
booleans and numbers, unknown reader drivers, core URLs, and a --config file that does not exist."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tagd.daemon.config import (
    Config,
    ConfigError,
    check_reader_driver,
    load_config,
    parse_config,
    parse_listen,
)
from tagd.readers.base import ReaderError

NUL = "\\u0000"  # as written in a TOML string


def error_of(text: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        parse_config(text, "c.toml")
    return info.value


@pytest.mark.parametrize("text, key, reason", [
    # 1. reader options checked against what each driver reads
    ("[readers.options.pn532uart]\nkeys = 5\n", "readers.options.pn532uart.keys", "must be a list"),
    ("[readers.options.pn532uart]\nkeys = [5]\n", "readers.options.pn532uart.keys", "[0]: must be a 6-byte key"),
    ('[readers.options.pn532uart]\nkeys = ["zz"]\n', "readers.options.pn532uart.keys", "is not hex"),
    ('[readers.options.pn532uart]\nkeys = ["a0a1"]\n', "readers.options.pn532uart.keys", "is 2 bytes"),
    ('[readers.options.pn532uart]\npasswords = "12345678"\n', "readers.options.pn532uart.passwords", "must be a list"),
    ('[readers.options.pn532uart]\npasswords = ["123456"]\n', "readers.options.pn532uart.passwords", "[0]: must be 8"),
    ('[readers.options.pn532uart]\npasswords = ["zz345678"]\n', "readers.options.pn532uart.passwords", "8 hex digits"),
    ("[readers.options.pn532uart]\nbaud = [1]\n", "readers.options.pn532uart.baud", "positive whole number"),
    ('[readers.options.pn532uart]\nbaud = "fast"\n', "readers.options.pn532uart.baud", "positive whole number"),
    ("[readers.options.pn532uart]\nbaud = true\n", "readers.options.pn532uart.baud", "positive whole number"),
    ("[readers.options.pn532]\nkeys = 5\n", "readers.options.pn532.keys", "must be a list"),
    ("[readers.options.acr122]\nkeys = 5\n", "readers.options.acr122.keys", "must be a list"),
    ('[readers.options.acr122]\nbuzzer = "no"\n', "readers.options.acr122.buzzer", "true or false"),
    ("[readers.options.simpleserial]\nbaud = 0\n", "readers.options.simpleserial.baud", "positive"),
    ("[readers.options.replay]\nloop = 1\n", "readers.options.replay.loop", "true or false"),
    ("[readers.options.pn532uart]\nbuad = 9600\n", "readers.options.pn532uart.buad", "unknown key"),
    ("[readers.options.pn533]\nbaud = 9600\n", "readers.options.pn533", "no reader driver takes options"),
    # 2. a NUL in any path (or any other string)
    (f'database = "/tmp/a{NUL}b"\n', "database", "NUL"),
    (f'[[readers.connect]]\ndriver = "file"\npath = "/tmp/a{NUL}b"\n', "readers.connect[0].path", "NUL"),
    (f'[[readers.connect]]\ndriver = "replay"\npath = "/t{NUL}"\n', "readers.connect[0].path", "NUL"),
    (f'[[core]]\ntype = "zaparoo"\nca_file = "/etc/{NUL}ca.pem"\n', "core[0].ca_file", "NUL"),
    (f'[[core]]\ntype = "exec"\nargv = ["/bin/echo{NUL}"]\n', "core[0].argv", "NUL"),
    # 3. [api] listen
    (f'[api]\nlisten = "127.0.0.1{NUL}:17604"\n', "api.listen", ""),
    ('[api]\nlisten = "' + "a" * 300 + ':17604"\n', "api.listen", "not a host name or IP address"),
    ('[api]\nlisten = "127.0.0.1:١٢"\n', "api.listen", "port"),
    ('[api]\nlisten = "127.0.0.1:65536"\n', "api.listen", "port"),
    ('[api]\nlisten = "127.0.0.1"\n', "api.listen", "HOST:PORT"),
    ('[api]\nlisten = "[::1:80"\n', "api.listen", "brackets"),
    # 4. booleans are TOML booleans, numbers TOML numbers
    ('[readers]\nauto_detect = "yes"\n', "readers.auto_detect", "true or false"),
    ("[readers]\nauto_detect = 1\n", "readers.auto_detect", "true or false"),
    ('[readers.scan]\nexit_delay = "2"\n', "readers.scan.exit_delay", "must be a number"),
    ("[readers.scan]\nexit_delay = true\n", "readers.scan.exit_delay", "must be a number"),
    ("[readers.scan]\nignore_on_connect = 0\n", "readers.scan.ignore_on_connect", "true or false"),
    ('[[readers.connect]]\ndriver = "file"\npath = "/x"\nenabled = "no"\n', "readers.connect[0].enabled",
     "true or false"),
    ('[[core]]\ntype = "zaparoo"\ntimeout = "5"\n', "core[0].timeout", "must be a number"),
    ('[[core]]\ntype = "zaparoo"\nkey_in_query = "yes"\n', "core[0].key_in_query", "true or false"),
    ('[[core]]\ntype = "mqtt"\nhost = "h"\ntopic = "t"\nport = "1883"\n', "core[0].port", "whole number"),
    ('[[core]]\ntype = "mqtt"\nhost = "h"\ntopic = "t"\nqos = true\n', "core[0].qos", "0, 1 or 2"),
    # 5. unknown reader driver, with the known ones listed
    ('[[readers.connect]]\ndriver = "garbage"\npath = "/x"\n', "readers.connect[0].driver",
     "unknown reader driver 'garbage' (known: acr122, acr122pcsc,"),
    # 6. core URLs and hosts, webhook headers
    ('[[core]]\ntype = "webhook"\nurl = "http://h/"\nheaders = {"X-A" = "1\\r\\nX-Evil: 1"}\n',
     "core[0].headers", "control character"),
    ('[[core]]\ntype = "webhook"\nurl = "http://h/"\nheaders = {"X A" = "1"}\n', "core[0].headers", "HTTP token"),
    (f'[[core]]\ntype = "zaparoo"\nurl = "ws://a{NUL}b/"\n', "core[0].url", ""),
    ('[[core]]\ntype = "zaparoo"\nurl = "ws://a\\tb/"\n', "core[0].url", "control character"),
    ('[[core]]\ntype = "zaparoo"\nurl = "ws://a\\u007fb/"\n', "core[0].url", "control character"),
    ('[[core]]\ntype = "zaparoo"\nurl = "ws://host:99999/"\n', "core[0].url", "ws:// or wss://"),
    ('[[core]]\ntype = "zaparoo"\nurl = "ws://bad host/"\n', "core[0].url", "ws:// or wss://"),
    ('[[core]]\ntype = "webhook"\nurl = "http://a\\u0001b/"\n', "core[0].url", "control character"),
    ('[[core]]\ntype = "webhook"\nurl = "http://ok/"\nstop_url = "http://a\\nb/"\n', "core[0].stop_url",
     "control character"),
    (f'[[core]]\ntype = "mqtt"\nhost = "bro{NUL}ker"\ntopic = "t"\n', "core[0].host", ""),
    ('[[core]]\ntype = "mqtt"\nhost = "bro\\rker"\ntopic = "t"\n', "core[0].host", "control character"),
])
def test_unusable_value_is_a_config_error_naming_the_key(text: str, key: str, reason: str) -> None:
    err = error_of(text)
    assert (err.file, err.key) == ("c.toml", key), str(err)
    assert reason in err.reason


@pytest.mark.parametrize("text", [
    "[readers.scan]\nexit_delay = 2\n",  # an int where a float is wanted
    '[[readers.connect]]\ndriver = "acr122_pcsc"\npath = "ACR122"\n',
    '[[readers.connect]]\ndriver = "Simple_Serial"\npath = "/dev/ttyACM0"\n',
    '[[readers.connect]]\ndriver = "pcsc"\npath = "x"\n',  # known; whether pyscard is here is the reader's business
    '[[readers.connect]]\ndriver = "nfcpy"\npath = "usb"\n',
    ('[readers.options.pn532uart]\nkeys = ["A0A1A2A3A4A5"]\nbaud = 9600\n[readers.options.acr122]\nbuzzer = false\n'
     'led_on_read = true\n[readers.options.nfcpy]\ntargets = ["106A"]\n[readers.options.file]\n'),
    '[api]\nlisten = "[::1]:7497"\n',
    '[api]\nlisten = ":0"\n',
    '[api]\nlisten = "mister.local:7497"\n',
    '[[core]]\ntype = "zaparoo"\nurl = "wss://[::1]:7497/api/v0.1"\n',
    '[[core]]\ntype = "webhook"\nurl = "https://example.com/hook?a=b"\n',
    '[[core]]\ntype = "mqtt"\nhost = "192.168.1.2"\ntopic = "t"\nqos = 2\n',
])
def test_good_values_still_load(text: str) -> None:
    parse_config(text, "c.toml")


@pytest.mark.parametrize("value", ["127.0.0.1\x00:1", "a" * 300 + ":1", "127.0.0.1:١٢", "garbage", "127.0.0.1:99999",
                                   "127.0.0.1:-1", "127.0.0.1: 80", 7497])
def test_parse_listen_refuses(value: object) -> None:
    with pytest.raises(ValueError, match="HOST:PORT"):
        parse_listen(value)


def test_parse_listen_splits() -> None:
    assert parse_listen("127.0.0.1:7497") == ("127.0.0.1", 7497)
    assert parse_listen("[::1]:80") == ("::1", 80)
    assert parse_listen(":0") == ("", 0)


def test_check_reader_driver_for_settings_update() -> None:
    assert check_reader_driver("PN532_UART") == "pn532uart"
    assert check_reader_driver("acr122pcsc") == "acr122pcsc"
    with pytest.raises(ValueError, match=r"unknown reader driver 'garbage' \(known: .*pn532uart"):
        check_reader_driver("garbage")


@pytest.mark.parametrize("update, reason", [
    ({"readersConnect": [{"driver": "garbage", "path": "/x"}]}, "unknown reader driver 'garbage'"),
    ({"readersConnect": [{"driver": "file", "path": "/a\x00b"}]}, "NUL"),
    ({"readersConnect": [{"driver": "file", "path": "/a", "enabled": "no"}]}, "true or false"),
    ({"readersAutoDetect": "yes"}, "true or false"),
    ({"readersScanExitDelay": "2"}, "must be a number"),
])
def test_settings_update_gets_the_same_checks(update: dict, reason: str) -> None:
    with pytest.raises(ConfigError) as info:
        Config().with_settings(update)
    assert info.value.key == next(iter(update)) and reason in info.value.reason


def test_a_named_config_file_must_exist(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.toml", required=True)
    assert load_config(tmp_path / "nope.toml") == Config()  # the default path missing still means defaults


def test_file_and_replay_readers_refuse_a_nul_path_cleanly() -> None:
    from tagd.readers.file import FileReader
    from tagd.readers.replay import ReplayReader

    for cls in (FileReader, ReplayReader):
        with pytest.raises(ReaderError, match="NUL"):
            cls("/tmp/a\x00b").open()


def run_tagd(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tagd", "run", *args], capture_output=True, text=True,
                          timeout=30, check=False)


def test_tagd_run_exits_2_for_a_bad_reader_option_and_a_missing_config(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text("[readers.options.pn532uart]\nkeys = 5\n")
    r = run_tagd("--config", str(cfg))
    assert r.returncode == 2 and f"{cfg}: readers.options.pn532uart.keys: " in r.stderr, r.stderr
    r = run_tagd("--config", str(tmp_path / "nonexistent.toml"))
    assert r.returncode == 2 and "nonexistent.toml: (file): config file not found" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr


def test_tagd_run_names_listen_when_it_cannot_bind_and_checks_the_flag(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        cfg = tmp_path / "c.toml"
        cfg.write_text(f'database = "{tmp_path / "t.db"}"\n[readers]\nauto_detect = false\n'
                       f'[api]\nlisten = "127.0.0.1:{port}"\n')
        r = run_tagd("--config", str(cfg))
        assert r.returncode == 2 and f"{cfg}: [api] listen: cannot listen on 127.0.0.1:{port}: " in r.stderr, r.stderr
        assert "Traceback" not in r.stderr
    for bad in ("garbage", "127.0.0.1:99999"):
        r = run_tagd("--config", str(cfg), "--listen", bad)
        assert r.returncode == 2 and f"--listen {bad!r}: must be HOST:PORT" in r.stderr, r.stderr
        assert "Traceback" not in r.stderr


@pytest.mark.parametrize(("connect", "reason"), [("garbage:/dev/x", "unknown reader driver 'garbage' (known: "),
                                                  ("no-colon", "is not <driver>:<path>")])
def test_tagd_run_checks_the_reader_flag(tmp_path: Path, connect: str, reason: str) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'database = "{tmp_path / "t.db"}"\n[readers]\nauto_detect = false\n[api]\nlisten = "127.0.0.1:0"\n')
    r = run_tagd("--config", str(cfg), "--reader", connect)
    assert r.returncode == 2 and "--reader" in r.stderr and reason in r.stderr, r.stderr
    assert "Traceback" not in r.stderr


@pytest.mark.parametrize("port", ["99999", "-1", "x", "١٢"])
def test_demo_port_is_checked_by_argparse(port: str, capsys: pytest.CaptureFixture[str]) -> None:
    from tagd.cli import main

    with pytest.raises(SystemExit) as info:
        main(["demo", "--once", f"--port={port}"])
    assert info.value.code == 2 and "argument --port: must be a port 0-65535" in capsys.readouterr().err


def test_a_bad_password_option_is_named_but_never_quoted():
    err = error_of('[readers.options.pn532uart]\npasswords = ["1234567890abcd"]\n')
    assert "passwords" in str(err) and "1234567890abcd" not in str(err)
