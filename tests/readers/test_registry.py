"""The driver table (readers/registry.py): one entry per driver, aliases resolved from it, options checked from it."""

from __future__ import annotations

import importlib

import pytest

from tagd.daemon.config import READER_OPTIONS
from tagd.readers import registry
from tagd.readers.base import driver_class, open_reader


@pytest.mark.parametrize("name", registry.names())
def test_every_name_in_the_table_opens_a_reader_reporting_that_name(name: str) -> None:
    """An alias (pn532, acr122pcsc, simple_serial) is its driver's class under its own name: readerIds say it."""
    entry = registry.spec(name)
    assert entry is not None
    try:
        importlib.import_module(entry.module)
    except ImportError as exc:  # an optional extra (pyscard, nfcpy) missing here: the table still resolves it
        assert registry.canonical(name) in registry.DRIVERS, exc
        return
    cls = driver_class(name)
    assert cls is not None and cls.driver == name
    assert issubclass(cls, driver_class(registry.canonical(name) or ""))  # type: ignore[arg-type]
    path = "broker:1883/t" if name == "mqtt" else "x"  # a driver that checks its path gets a valid one
    assert open_reader(f"{name}:{path}").driver == name


def test_an_alias_is_not_a_second_table_entry() -> None:
    aliases = [a for spec in registry.DRIVERS.values() for a in spec.aliases]
    assert not set(aliases) & set(registry.DRIVERS)
    assert len(aliases) == len(set(aliases))
    assert {"pn532", "acr122pcsc", "simple_serial"} <= set(aliases)


def test_the_config_checks_each_name_with_its_drivers_options() -> None:
    assert set(READER_OPTIONS) == set(registry.names())
    assert READER_OPTIONS["pn532"] is registry.DRIVERS["pn532uart"].options
    assert set(READER_OPTIONS["acr122pcsc"]) == {"keys", "buzzer", "feedback", "led_on_read"}


def test_an_unknown_name_is_not_in_the_table() -> None:
    assert registry.spec("garbage") is None and registry.canonical("garbage") is None
    assert registry.load("garbage") is False
