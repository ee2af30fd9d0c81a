"""Value checks the schema's fields and the loader use: strict TOML types, no NUL, listen addresses, hosts,
URLs, reader driver names and each driver's options (from the registry's driver table).

They raise ValueError with a reason a user can act on; the schema's validators and the loader turn that into a
:class:`~tagd.daemon.config.errors.ConfigError` naming file and key.
"""

from __future__ import annotations

import ipaddress
import os
import re
from typing import Annotated, Any, Mapping

from pydantic import BaseModel, ConfigDict, Strict, field_validator

from tagd.readers import registry

# A TOML boolean or number, not a string that looks like one ("yes", "5") nor a boolean where a number is meant
# (true is not 1). An integer where a float is wanted is fine (exit_delay = 2).
Bool = Annotated[bool, Strict()]
Int = Annotated[int, Strict()]
Float = Annotated[float, Strict()]

CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")


def check_no_nul(v: Any) -> None:
    """A NUL in any string (a path, an argv word, a URL) is a config error: the OS would refuse it later."""
    if isinstance(v, (str, os.PathLike)):
        if "\x00" in os.fspath(v):
            raise ValueError("must not contain a NUL character (\\u0000)")
    elif isinstance(v, (list, tuple)):
        for x in v:
            check_no_nul(x)
    elif isinstance(v, dict):
        for k, x in v.items():
            check_no_nul(k)
            check_no_nul(x)


def check_each(values: list[Any], check: Any) -> None:
    """``check`` every item of a list; the ValueError says which (``[2]: …``)."""
    for i, value in enumerate(values):
        try:
            check(value)
        except ValueError as exc:
            raise ValueError(f"[{i}]: {exc}") from None


class Section(BaseModel):
    """A TOML table: unknown keys are errors (a typo must not be ignored) and no string holds a NUL."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    @field_validator("*")
    @classmethod
    def _no_nul_anywhere(cls, v: Any) -> Any:
        check_no_nul(v)
        return v


def known_reader_drivers() -> list[str]:
    """Every driver name a connect string may use: the built-ins (aliases too, without importing their modules)
    and any driver registered at run time."""
    from tagd.readers.base import drivers

    return sorted(set(registry.names()) | set(drivers()))


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
    why = registry.not_supported(name)
    if why is not None:
        raise ValueError(f"Zaparoo Core's {driver!r} driver is not supported: {why}")
    if name.replace("_", "") == "libnfc":
        raise ValueError("libnfc is Zaparoo Core's driver family, not one device: name the device's driver, "
                         "pn532_uart (a PN532 on a serial port) or acr122_usb (an ACR122U)")
    builtin = registry.names()  # the table: no driver module is imported to check a name
    if name in builtin or name.replace("_", "") in builtin:
        return name.replace("_", "")
    known = known_reader_drivers()  # drivers registered at run time too (this imports every built-in one)
    if name not in known and name.replace("_", "") not in known:
        raise ValueError(f"unknown reader driver {driver!r} (known: {', '.join(known)})")
    return name.replace("_", "")


# [readers.options.<driver>]: the options each driver reads, with a check of each value (the registry's table).
# An alias (pn532, acr122pcsc, simple_serial) also gets the options of the drivers it extends.
READER_OPTIONS: dict[str, Mapping[str, Any]] = {n: spec.options for n, spec in registry.by_name().items()}


def parse_listen(value: Any) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:7497``, ``:7497`` = every interface) → ``(host, port)``; ValueError saying what is
    wrong. For ``[api] listen`` and ``tagd run --listen``. Port 0 means any free port (tests, the demo)."""
    usage = "must be HOST:PORT with a port 0-65535, e.g. 127.0.0.1:7497"
    if not isinstance(value, str):
        raise ValueError(usage)
    check_printable(value, usage)
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
        check_host(host, usage)
    return host, int(port)


def check_printable(value: str, usage: str) -> None:
    """An address (listen, URL, host) has no control characters and no whitespace."""
    if CONTROL_CHARS.search(value) or any(ch.isspace() for ch in value):
        raise ValueError(f"{usage} (it contains a control character or a space)")


def check_host(host: str, usage: str) -> None:
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


def check_url(v: str, schemes: tuple[str, ...], usage: str) -> str:
    """A URL the forwarder can use: no control characters or spaces, the scheme, a host, a valid port."""
    check_printable(v, usage)
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(v)
        _ = parts.port  # ValueError for a port that is not a number 0-65535
    except ValueError as exc:
        raise ValueError(f"{usage} ({exc})") from None
    if parts.scheme.lower() not in schemes or not parts.hostname:
        raise ValueError(usage)
    check_host(parts.hostname.strip("[]"), usage)
    return v
