"""A Zaparoo Core config.toml loads as it is and means to tagd what it means to Core.

CORE_CONFIG is Core's documented example (zaparoo.org docs/core/config/readers.md and service.md, the mapping
file example of docs/core/mappings.md) with every reader, scan, mapping and service key, and the driver IDs
Core's readers declare (pkg/readers/*/ IDs()), and the keys Core writes into every file it saves.
"""

from __future__ import annotations

import asyncio
import importlib.util
import ipaddress
import time
from pathlib import Path

import pytest
from conftest import need

from tagd.daemon.config import Config, ConfigError, load_config, parse_config
from tagd.daemon.mappings import MappingTable
from tagd.daemon.pipeline import Pipeline
from tagd.daemon.store import Store
from tagd.readers.base import Capability, ReaderAdded, ReaderInfo, TagGone, TagSeen
from tagd.token import Token

CORE_CONFIG = """\
config_schema = 1
debug_logging = false
error_reporting = false

[audio]
scan_feedback = true

[launchers]
index_root = ['/media/fat/games']

[[systems.default]]
system = 'SNES'
launcher = 'SuperNES'

[readers]
auto_detect = true
scan_history = 30

[readers.scan]
mode = 'tap'
exit_delay = 3.0
ignore_system = [ 'PC', 'MSX' ]
on_scan = '**echo:card was scanned'
on_remove = '**echo:card was removed'
ignore_on_connect = true
allow_relaunch = false

[readers.scan.launch_guard]
enabled = true
timeout = 15
delay = 0
require_confirm = false

[[readers.connect]]
driver = 'pn532_uart'
path = '/dev/ttyUSB0'

[[readers.connect]]
driver = 'file'
path = '/tmp/some_file'
scan_mode = 'hold'

[[readers.connect]]
driver = 'pn532uart'
path = '/dev/ttyUSB9'
enabled = false

[[readers.connect]]
driver = 'legacy_pn532_uart'
path = '/dev/ttyACM0'
id_source = 'merged'

[[readers.connect]]
driver = 'acr122_usb'
path = '001:005'

[[readers.connect]]
driver = 'acr122_pcsc'
path = ''

[[readers.connect]]
driver = 'simple_serial'
path = '/dev/ttyUSB3'

[readers.drivers.acr122pcsc]
auto_detect = false

[readers.drivers.simpleserial]
enabled = false

[readers.drivers.opticaldrive]
scan_mode = 'hold'

[readers.drivers.libnfc]
enabled = false

[[mappings.entry]]
token_key = 'id'
match_pattern = '044ed8daed7281'
zapscript = '**launch.random:snes'

[[mappings.entry]]
match_pattern = '*ed8dae*'
zapscript = '**launch.random:nes'

[[mappings.entry]]
token_key = 'value'
match_pattern = '/.*7281$/'
zapscript = '**launch.random:genesis'

[[mappings.entry]]
token_key = 'data'
match_pattern = 'd1010754*'
zapscript = '**launch.random:gb'

[service]
api_port = 7497
api_listen = "0.0.0.0"
on_boot = "**execute:/media/fat/zaparoo/scripts/on-boot.sh"
on_ready = "**execute:/media/fat/zaparoo/scripts/on-ready.sh"
allowed_ips = [
    "192.168.1.100",
    "192.168.1.0/24",
    "10.0.0.0/8",
    "2001:db8::1",
    "2001:db8::/32"
]
encryption = false
device_id = '4d01c19f-09ba-4871-a58a-82fb49f5b518'
allowed_origins = [
    'zaparoo.example.lan'
]
allow_run = [
    '\\*\\*launch\\.random:.+'
]
online_base_url = "https://api.zaparoo.com"
internet_check = true

[service.remote_control]
enabled = false

[service.discovery]
enabled = true
instance_name = "Living Room MiSTer"

[[service.publishers.mqtt]]
enabled = true
broker = "mqtt://localhost:1883"
topic = "zaparoo/events"
filter = [
    "media.started",
    "media.stopped",
    "tokens.added"
]
"""


@pytest.fixture
def core(tmp_path: Path) -> Config:
    file = tmp_path / "config.toml"
    file.write_text(CORE_CONFIG)
    return load_config(file, required=True)


def test_cores_documented_config_loads_unchanged(core: Config) -> None:
    assert core.readers.auto_detect and core.readers.scan_history == 30
    scan = core.readers.scan
    assert (scan.mode, scan.exit_delay, scan.ignore_system, scan.ignore_on_connect) == ("tap", 3.0, ["PC", "MSX"], True)
    assert scan.on_scan == "**echo:card was scanned" and scan.on_remove == "**echo:card was removed"
    assert len(core.mappings.entry) == 4
    guard = scan.launch_guard
    assert (guard.enabled, guard.timeout, guard.delay, guard.require_confirm) == (True, 15.0, 0.0, False)
    assert (core.config_schema, core.debug_logging, core.error_reporting, core.audio.scan_feedback) == (1, False, False,
                                                                                                       True)
    assert core.core_only_sections() == ["launchers", "systems"]  # kept as written, left to the core


@pytest.mark.parametrize(("text", "key"), [
    ("[readers.scan.launch_guard]\ntimeout = -2\n", "readers.scan.launch_guard.timeout"),  # Core: ≥ -1
    ("[readers.scan.launch_guard]\ndelay = -1\n", "readers.scan.launch_guard.delay"),
    ("config_schema = 2\n", "config_schema"),  # a newer Core's file format
    ("[audio]\nvolume = 101\n", "audio.volume"),
    ("[readers]\nscan_history = -1\n", "readers.scan_history"),
])
def test_core_keys_keep_cores_ranges(text: str, key: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(text)
    assert info.value.key == key


def test_cores_driver_ids_open_the_tagd_drivers_for_the_same_hardware(core: Config) -> None:
    """pn532_uart and libnfc's legacy_pn532_uart: a PN532 on a serial port; acr122_usb and acr122_pcsc: the ACR122U
    through pcscd (libnfc's bus:device path means the first ACR122). Disabled: the entry with enabled = false, and
    simple_serial, whose driver is off in [readers.drivers]. [readers.drivers.libnfc] does not switch off the
    native PN532 driver (Core keeps reading the board with it), only libnfc's own names."""
    assert core.readers.connect_strings() == ["pn532uart:/dev/ttyUSB0", "file:/tmp/some_file", "acr122pcsc:"]


def test_a_libnfc_entry_opens_when_libnfc_is_on() -> None:
    config = parse_config(CORE_CONFIG.replace("[readers.drivers.libnfc]\nenabled = false\n", ""))
    assert "legacypn532uart:/dev/ttyACM0" in config.readers.connect_strings()
    assert "acr122usb:001:005" in config.readers.connect_strings()


def test_the_alias_drivers_build_readers_that_keep_their_names() -> None:
    from tagd.readers.base import open_reader

    legacy = open_reader("legacypn532uart:/dev/ttyACM0")
    assert type(legacy).__name__ == "Pn532Reader" and legacy.driver == "legacypn532uart"
    need(importlib.util.find_spec("smartcard") is not None, "the ACR122U driver needs pyscard (the pcsc extra)")
    acr = open_reader("acr122usb:001:005")
    assert acr.driver == "acr122usb" and acr.path == "ACR122"  # libnfc's bus:device → the first ACR122


def test_auto_detection_follows_the_global_switch_and_each_drivers() -> None:
    config = parse_config(CORE_CONFIG)
    assert config.readers.detected_drivers() == {"pn532uart"}  # acr122pcsc: auto_detect = false
    off = parse_config("[readers]\nauto_detect = false\n[readers.drivers.pn532]\nauto_detect = true\n")
    assert off.readers.detected_drivers() == {"pn532uart"}  # a driver's explicit value wins over the global
    disabled = parse_config("[readers.drivers.pn532]\nenabled = false\n")
    assert disabled.readers.detected_drivers() == {"acr122"}  # a disabled driver does not detect


@pytest.mark.parametrize(("driver", "reason"), [
    ("pn532_i2c", "UART only"), ("pn532spi", "UART only"), ("legacy_pn532_i2c", "UART only"),
    ("opticaldrive", "not discs"), ("external_drive", "not USB drives"), ("tty2oled", "display"),
    ("libnfc", "pn532_uart"),
])
def test_core_drivers_tagd_cannot_serve_are_a_clear_error(driver: str, reason: str) -> None:
    with pytest.raises(ConfigError, match="readers.connect.0..driver") as info:
        parse_config(f"[[readers.connect]]\ndriver = '{driver}'\npath = '/dev/x'\n")
    assert reason in info.value.reason


def test_an_unknown_driver_in_readers_drivers_is_a_typo() -> None:
    with pytest.raises(ConfigError, match=r"readers.drivers: unknown reader driver 'pn523'"):
        parse_config("[readers.drivers.pn523]\nenabled = false\n")


def test_the_mappings_behave_as_in_core(core: Config) -> None:
    table = MappingTable(MappingTable.from_config(core.mappings.entry))
    assert table.apply(Token(uid="04:4E:D8:DA:ED:72:81")).text == "**launch.random:snes"  # normalised exact id
    assert table.apply(Token(uid="aa ed8dae bb")).text == "**launch.random:nes"  # "*ed8dae*": anywhere in the id
    assert table.apply(Token(text="x7281")).text == "**launch.random:genesis"  # the regex searches the text
    assert table.apply(Token(data="00d1010754ff")).text == "**launch.random:gb"  # "d1010754*": anywhere
    assert table.apply(Token(uid="04ff", text="plain")).text == "plain"


def test_the_service_table_is_read_as_core_reads_it(core: Config) -> None:
    service = core.service
    assert core.api.listen == "0.0.0.0:7497" and not service.encryption  # api_listen/api_port set [api] listen
    assert ipaddress.ip_address("192.168.1.77") in service.allowed_networks()[1]
    assert ipaddress.ip_address("2001:db8::5") in service.allowed_networks()[4]
    assert service.discovery.enabled and service.discovery.instance_name == "Living Room MiSTer"
    assert service.device_id == "4d01c19f-09ba-4871-a58a-82fb49f5b518"
    assert service.publishers.mqtt[0].filter == ["media.started", "media.stopped", "tokens.added"]
    assert not service.remote_control.enabled and service.online_base_url == "https://api.zaparoo.com"
    assert core.api.allowed_origins == ["zaparoo.example.lan"]  # Core's list reaches the API's origin policy


@pytest.mark.parametrize(("text", "key", "reason"), [
    ('[service]\nallowed_ips = ["192.168.1.300"]\n', "service.allowed_ips", "not an IP address or CIDR"),
    ("[service]\napi_port = 80\n", "service.api_port", "1024"),
    ('[service]\nencryption = "yes"\n', "service.encryption", "boolean"),
    ('[[service.publishers.mqtt]]\nbrokr = "x"\n', "service.publishers.mqtt[0].brokr", "unknown key"),
    ("[service]\napi_prot = 7497\n", "service.api_prot", "unknown key"),
])
def test_a_bad_service_value_names_its_key(text: str, key: str, reason: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(text)
    assert info.value.key == key and reason in info.value.reason


def test_an_allowed_ip_with_a_port_counts_as_the_address() -> None:
    nets = parse_config('[service]\nallowed_ips = ["10.0.0.5:7497", "[::1]:7497"]\n').service.allowed_networks()
    assert nets == [ipaddress.ip_network("10.0.0.5/32"), ipaddress.ip_network("::1/128")]


async def test_a_readers_own_scan_mode_wins_over_the_global_one(core: Config, tmp_path: Path) -> None:
    """The file reader's entry says hold ([readers.scan] says tap): removing its token stops the media."""
    stops: list[str] = []

    class Fw:
        name = "fake"
        on_notification = None

        async def launch(self, token: Token) -> None:
            pass

        async def stop_media(self) -> None:
            stops.append("stop")

    store = Store(tmp_path / "tagd.db")
    try:
        config = core.model_copy(update={"readers": core.readers.model_copy(update={
            "scan": core.readers.scan.model_copy(update={"exit_delay": 0.0, "ignore_on_connect": False})})})
        pipeline = Pipeline(config, store, MappingTable(), [Fw()], lambda method, params: None)
        held = ReaderInfo("file", "/tmp/some_file", "/tmp/some_file", capabilities=Capability.READ)
        tapped = ReaderInfo("pn532uart", "/dev/ttyUSB0", "1-1", capabilities=Capability.READ)
        for info, uid in ((tapped, "04aa"), (held, "04bb")):
            await pipeline.handle(ReaderAdded(info))
            await pipeline.handle(TagSeen(info.reader_id, Token(uid=uid, text=f"**launch:{uid}")))
            await pipeline.handle(TagGone(info.reader_id))
            await asyncio.sleep(0.05)
        assert stops == ["stop"]  # only the hold reader's removal
    finally:
        store.close()


def test_scan_history_keeps_that_many_days(tmp_path: Path) -> None:
    store = Store(tmp_path / "tagd.db")
    try:
        now = time.time_ns()
        day = 86_400 * 10**9
        for age in (0, 29, 31):
            store.add_history(Token(uid=f"{age:02x}", text=str(age), scan_ns=now - age * day), True)
        assert store.prune_history(30, now) == 1
        assert sorted(e.text for e in store.history()) == ["0", "29"]
        assert store.prune_history(0, now) == 0  # 0 keeps everything, as in Core
    finally:
        store.close()


async def test_history_is_pruned_at_start_and_again_with_the_days_the_config_says_then() -> None:
    from tagd.daemon.retention import prune_history_daily

    calls: list[int] = []
    days = iter([30, None, 7])

    class FakeStore:
        def prune_history(self, keep: int) -> int:
            calls.append(keep)
            return 0

    task = asyncio.ensure_future(prune_history_daily(FakeStore(), lambda: next(days, None), every=0.01))
    try:
        for _ in range(200):
            if len(calls) == 2:
                break
            await asyncio.sleep(0.01)
    finally:
        task.cancel()
    assert calls == [30, 7]  # unset (None) keeps everything: no prune that pass


async def test_hold_mode_leaves_an_ignored_systems_media_running(tmp_path: Path) -> None:
    """[readers.scan] ignore_system: the core's media.started says which system plays; lifting the token then
    stops nothing for PC or MSX (any case), and stops anything else."""
    stops: list[str] = []

    class Fw:
        name = "fake"
        on_notification = None

        async def launch(self, token: Token) -> None:
            pass

        async def stop_media(self) -> None:
            stops.append("stop")

    config = parse_config("[readers.scan]\nmode = 'hold'\nignore_system = ['PC', 'MSX']\n")
    store = Store(tmp_path / "tagd.db")
    try:
        pipeline = Pipeline(config, store, MappingTable(), [Fw()], lambda method, params: None)
        info = ReaderInfo("pn532uart", "/dev/ttyUSB0", "1-1", capabilities=Capability.READ)
        await pipeline.handle(ReaderAdded(info))
        for n, system in enumerate(["msx", "SNES"]):
            pipeline.core_notification("media.started", {"systemId": system, "mediaName": "x"})
            await pipeline.handle(TagSeen(info.reader_id, Token(uid=f"0{n}", text=f"**launch:{n}")))
            await pipeline.handle(TagGone(info.reader_id))
            await asyncio.sleep(0.05)
            assert stops == ([] if system == "msx" else ["stop"])
        pipeline.core_notification("media.stopped", None)
        assert pipeline.playing_system == ""
    finally:
        store.close()


@pytest.mark.parametrize(("text", "driver", "path", "mode"), [
    ("[readers.drivers.pn532]\nscan_mode = 'hold'\n", "pn532uart", "/dev/ttyUSB0", "hold"),  # Core's metadata ID
    ("[readers.drivers.acr122pcsc]\nscan_mode = 'hold'\n", "acr122", "ACR122", "hold"),
    ("[readers.drivers.acr122pcsc]\nscan_mode = 'hold'\n", "pn532uart", "/dev/ttyUSB0", "tap"),  # another driver
    ("[readers.scan]\nmode = 'hold'\n[readers.drivers.pn532]\nscan_mode = 'tap'\n"
     "[[readers.connect]]\ndriver = 'pn532_uart'\npath = '/dev/ttyUSB0'\nscan_mode = 'hold'\n",
     "pn532uart", "/dev/ttyUSB0", "hold"),  # the entry's own beats its driver's
    ("[readers.scan]\nmode = 'hold'\n[readers.drivers.pn532]\nscan_mode = 'tap'\n", "pn532uart", "/dev/x", "tap"),
])
def test_a_drivers_scan_mode_sits_between_the_entrys_and_the_global_one(text, driver, path, mode) -> None:
    assert parse_config(text).readers.scan_mode_for(driver, path) == mode
