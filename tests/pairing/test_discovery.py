"""mDNS advertisement as Core's: found by a zeroconf browser. Both sides bind loopback only: no test multicasts
on the machine's real interfaces."""

from __future__ import annotations

import asyncio

import pytest

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
        name = await asyncio.wait_for(listener.added.get(), 10)
        assert name == f"tagd-test-find.{SERVICE_TYPE}"
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
