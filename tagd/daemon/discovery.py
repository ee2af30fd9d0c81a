"""mDNS/DNS-SD advertisement of the API as ``_zaparoo._tcp``, so the Zaparoo App finds tagd as it finds Core.

As Core's ``pkg/service/discovery``: the instance name is ``[service.discovery] instance_name`` or the host name;
the port is the API's; the TXT record is empty (version and platform are for authenticated API callers only, not
for the whole LAN); only real LAN interfaces take part (not loopback, not docker/bridge/veth/VPN-style virtual
ones); with no interface yet (booting without network) registration is retried every 30 s for 5 minutes.

python-zeroconf (and its ``ifaddr``) is imported only when discovery starts: a daemon with it switched off, or
listening on loopback only, never loads it. ``interfaces`` can be given (tests bind loopback: a test must never
multicast on the machine's real interfaces).

zeroconf is loaded from its pure-Python modules, which its wheels ship beside the Cython-compiled ones: the compiled
ones are 3.4 MB of shared objects, and most of their pages end up resident (2.2 MB more RSS than the same modules
as bytecode). They make busy mDNS responders fast; tagd advertises one service and answers a few queries a
minute, and its idle memory budget (45 MB with mDNS on, bench/daemon.py) has no room for them.
"""

from __future__ import annotations

import asyncio
import importlib.abc
import importlib.machinery
import logging
import socket
import sys
from typing import Any, Iterable

log = logging.getLogger(__name__)

SERVICE_TYPE = "_zaparoo._tcp.local."
VIRTUAL_PREFIXES = ("docker", "br-", "veth", "virbr", "lxc", "lxd", "cni", "flannel", "cali", "tunl", "wg")
RETRY_EVERY = 30.0
RETRY_FOR = 300.0


class _PurePython(importlib.abc.MetaPathFinder):
    """Finds ``zeroconf`` and its submodules as source or bytecode only, never as extension modules."""

    PACKAGE = "zeroconf"

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> Any:
        if name != self.PACKAGE and not name.startswith(self.PACKAGE + "."):
            return None
        m = importlib.machinery
        for entry in path if path is not None else sys.path:
            finder = m.FileFinder(entry, (m.SourceFileLoader, m.SOURCE_SUFFIXES),
                                  (m.SourcelessFileLoader, m.BYTECODE_SUFFIXES))
            spec = finder.find_spec(name)
            if spec is not None:
                return spec
        return None  # no .py for it (a build without sources): the normal import finds the compiled one


def load_zeroconf() -> None:
    """Import zeroconf as pure Python (see the module docstring). Once zeroconf is in sys.modules (imported
    compiled by someone else first, e.g. a test's browser), it is used as it is."""
    if "zeroconf" not in sys.modules and not any(isinstance(f, _PurePython) for f in sys.meta_path):
        sys.meta_path.insert(0, _PurePython())
    import zeroconf.asyncio  # noqa: F401


def instance_name(configured: str = "", hostname: str | None = None) -> str:
    """The advertised name: the configured one, else the host name (its first label), else "zaparoo"."""
    if configured.strip():
        return configured.strip()
    host = (hostname if hostname is not None else socket.gethostname()).split(".")[0]
    return host or "zaparoo"


def lan_addresses(adapters: Iterable[tuple[str, Iterable[str]]]) -> list[str]:
    """(interface name, its addresses) → the addresses to advertise on: no loopback, link-local or virtual ones."""
    import ipaddress

    out = []
    for name, ips in adapters:
        if name == "lo" or name.lower().startswith(VIRTUAL_PREFIXES):
            continue
        for text in ips:
            ip = ipaddress.ip_address(text.split("%")[0])
            if not (ip.is_loopback or ip.is_link_local or ip.is_multicast or ip.is_unspecified):
                out.append(str(ip))
    return out


def _system_adapters() -> list[tuple[str, list[str]]]:
    import ifaddr

    return [(a.nice_name, [ip.ip if isinstance(ip.ip, str) else ip.ip[0] for ip in a.ips])
            for a in ifaddr.get_adapters()]


class Discovery:
    def __init__(self, port: int, name: str = "", interfaces: list[str] | None = None) -> None:
        self.port = port
        self.name = instance_name(name)
        self.interfaces = interfaces  # None: the LAN interfaces found at start
        self._zc: Any = None
        self._info: Any = None
        self._retry: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Advertise now, or keep trying in the background while no interface is up."""
        if not await self._register():
            log.info("mDNS: no network interface to advertise on yet; retrying every %.0f s", RETRY_EVERY)
            self._retry = asyncio.ensure_future(self._retry_loop())

    async def _retry_loop(self) -> None:
        loop = asyncio.get_running_loop()
        end = loop.time() + RETRY_FOR
        while loop.time() < end:
            await asyncio.sleep(RETRY_EVERY)
            if await self._register():
                return
        log.warning("mDNS: gave up advertising (no network interface); the App will need the address typed in")

    async def _register(self) -> bool:
        load_zeroconf()
        addresses = self.interfaces if self.interfaces is not None else lan_addresses(_system_adapters())
        if not addresses:
            return False
        from zeroconf import IPVersion, ServiceInfo
        from zeroconf.asyncio import AsyncZeroconf

        v6 = [a for a in addresses if ":" in a]
        version = IPVersion.All if v6 and len(v6) < len(addresses) else IPVersion.V6Only if v6 else IPVersion.V4Only
        host = f"{socket.gethostname().split('.')[0] or 'zaparoo'}.local."
        info = ServiceInfo(SERVICE_TYPE, f"{self.name}.{SERVICE_TYPE}", port=self.port, properties={}, server=host,
                           parsed_addresses=addresses)
        try:
            zc = AsyncZeroconf(interfaces=addresses, ip_version=version)
        except OSError as exc:  # an address that went away between listing and binding: try again later
            log.warning("mDNS: could not open sockets on %s: %s", ", ".join(addresses), exc)
            return False
        try:
            await zc.async_register_service(info, allow_name_change=True)
        except Exception as exc:  # a name clash it cannot resolve, a socket error: the API works on without it
            log.warning("mDNS: could not advertise %s: %s", info.name, exc)
            await zc.async_close()
            return False
        self._zc, self._info = zc, info
        log.info("mDNS: advertising %s on port %d (%s)", info.name, self.port, ", ".join(addresses))
        return True

    async def stop(self) -> None:
        """Say goodbye (the App drops the entry at once) and close the sockets."""
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None
        if self._zc is not None:
            try:
                await self._zc.async_unregister_service(self._info)
            finally:
                await self._zc.async_close()
                self._zc = None
