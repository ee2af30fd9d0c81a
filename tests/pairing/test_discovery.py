"""mDNS advertisement as Core's: found by a zeroconf browser. Both sides bind loopback only: no test multicasts
on the machine's real interfaces."""

from __future__ import annotations

import asyncio

import pytest

from tagd.daemon.api.access import listens_beyond_loopback
from tagd.daemon.discovery import SERVICE_TYPE, Discovery, instance_name, lan_addresses


def test_instance_name_is_the_configured_one_else_the_host_name():
    assert instance_name("Living Room", "box") == "Living Room"
    assert instance_name("", "retro-pi.lan") == "retro-pi"
    assert instance_name("  ", "") == "zaparoo"


def test_only_lan_interfaces_are_advertised_on():
    adapters = [("lo", ["127.0.0.1", "::1"]), ("eth0", ["192.168.1.20", "fe80::1%eth0", "fd00::2"]),
                ("docker0", ["172.17.0.1"]), ("veth12ab", ["10.1.0.1"]), ("wg0", ["10.8.0.2"]), ("wlan0", ["10.0.0.7"])]
    assert lan_addresses(adapters) == ["192.168.1.20", "fd00::2", "10.0.0.7"]


class Listener:
    def __init__(self):
        self.added = asyncio.Queue()

    def add_service(self, zc, type_, name):
        self.added.put_nowait(name)

    def remove_service(self, zc, type_, name):
        pass

    def update_service(self, zc, type_, name):
        pass


async def found(listener, name, timeout=10.0):
    """Wait until the browser sees ``name``; other services on loopback (another test run's) are passed over."""
    async def wait():
        while (seen := await listener.added.get()) != name:
            pass
        return seen

    return await asyncio.wait_for(wait(), timeout)


@pytest.fixture
async def browser():
    from zeroconf import IPVersion
    from zeroconf.asyncio import AsyncServiceBrowser, AsyncZeroconf

    zc = AsyncZeroconf(interfaces=["127.0.0.1"], ip_version=IPVersion.V4Only)
    listener = Listener()
    browser = AsyncServiceBrowser(zc.zeroconf, SERVICE_TYPE, listener=listener)
    yield zc, listener
    await browser.async_cancel()
    await zc.async_close()


async def test_a_browser_finds_zaparoo_tcp_with_the_api_port_and_an_empty_txt(browser):
    from zeroconf.asyncio import AsyncServiceInfo

    zc, listener = browser
    disco = Discovery(7497, "tagd-test-find", interfaces=["127.0.0.1"])
    await disco.start()
    try:
        name = await found(listener, f"tagd-test-find.{SERVICE_TYPE}")
        info = AsyncServiceInfo(SERVICE_TYPE, name)
        assert await info.async_request(zc.zeroconf, 3000)
        assert info.port == 7497 and info.parsed_addresses() == ["127.0.0.1"]
        assert info.properties == {}  # Core advertises no TXT: version and platform are not for the whole LAN
    finally:
        await disco.stop()
    assert disco._zc is None


async def test_no_interface_means_retrying_in_the_background_not_failing():
    disco = Discovery(7497, "tagd-test-none", interfaces=[])
    await disco.start()
    assert disco._retry is not None and not disco._retry.done()
    await disco.stop()
    assert disco._retry is None


async def test_the_daemon_advertises_as_configured_and_stops_on_reload_switch_off(tmp_path, browser):
    from tagd.daemon.config import Config
    from tagd.daemon.service import Daemon

    zc, listener = browser
    raw = {"readers": {"auto_detect": False}, "database": str(tmp_path / "tagd.db"), "api": {"listen": "127.0.0.1:0"},
           "service": {"discovery": {"instance_name": "tagd-daemon-test", "interfaces": ["127.0.0.1"]}}}
    daemon = Daemon(Config.model_validate(raw), tmp_path / "config.toml")
    await daemon.start()
    try:
        await found(listener, f"tagd-daemon-test.{SERVICE_TYPE}")
        assert daemon.discovery.port == daemon.api.port
        raw["service"]["discovery"]["enabled"] = False
        await daemon.apply_config(Config.model_validate(raw))
        assert daemon.discovery is None and "discovery" not in daemon._started
    finally:
        await daemon.stop()


async def test_a_loopback_only_api_is_not_advertised_and_zeroconf_is_not_loaded(tmp_path):
    import subprocess
    import sys

    code = ("import asyncio, sys\n"
            "from tagd.daemon.config import Config\nfrom tagd.daemon.service import Daemon\n"
            f"c = Config.model_validate({{'readers': {{'auto_detect': False}}, 'database': {str(tmp_path / 'x.db')!r},"
            " 'api': {'listen': '127.0.0.1:0'}})\n"
            "async def main():\n    d = Daemon(c, 'none.toml')\n    await d.start()\n"
            "    print(d.discovery is None, 'zeroconf' in sys.modules, 'cryptography' in sys.modules,"
            " 'ecdsa' in sys.modules)\n    await d.stop()\n"
            "asyncio.run(main())\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.split() == ["True", "False", "False", "False"], out.stderr


@pytest.mark.parametrize("host,beyond", [("127.0.0.1", False), ("127.0.0.2", False), ("::1", False),
                                         ("", True), ("0.0.0.0", True), ("::", True), ("192.168.1.20", True),
                                         ("tagd.local", True)])
def test_which_listen_addresses_a_phone_can_reach(host, beyond):
    """One rule for mDNS (advertise only what a phone can reach) and `tagd pair`'s loopback warning."""
    assert listens_beyond_loopback(host) is beyond
