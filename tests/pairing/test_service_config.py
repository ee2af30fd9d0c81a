"""Core's [service] keys for the API, with Core's meaning: api_port, api_listen, allowed_ips, encryption, discovery."""

from __future__ import annotations

import pytest

from tagd.daemon.config import ConfigError, parse_config


def test_the_default_listens_on_every_interface_for_the_app():
    assert parse_config("").api.listen == ":7497"


@pytest.mark.parametrize("service,listen", [
    ("api_port = 7500", ":7500"),
    ('api_listen = "192.168.1.20"', "192.168.1.20:7497"),
    ('api_listen = "::1"\napi_port = 8000', "[::1]:8000"),
    ('api_listen = "10.0.0.1:99"', ":7497"),  # a port in api_listen makes Core ignore it (and use api_port)
])
def test_api_port_and_api_listen_set_the_listen_address_as_core_builds_it(service, listen):
    assert parse_config(f"[service]\n{service}\n").api.listen == listen


@pytest.mark.parametrize("text,key", [
    ('[service]\nallowed_ips = ["192.168.1.0/24", "nope"]', "service.allowed_ips"),
    ("[service]\napi_port = 80", "service.api_port"),
    ('[service]\napi_listen = "bad host!"', "service.api_listen"),
    ('[service]\nencryption = "yes"', "service.encryption"),
    ('[api]\nlisten = "127.0.0.1:7000"\n[service]\napi_port = 7500', "disagree"),
])
def test_bad_service_values_are_config_errors_naming_the_key(text, key):
    with pytest.raises(ConfigError, match=key):
        parse_config(text)


def test_a_core_service_table_loads_unchanged():
    text = """
[service]
device_id = "0f6c1d8e-0000-4000-8000-000000000000"
api_port = 7497
allowed_ips = ["192.168.1.0/24", "10.0.0.5", "10.0.0.6:7497"]
allowed_origins = ["http://batocera.local"]
allow_run = ["**launch.random:snes"]
encryption = true

[service.discovery]
enabled = false
instance_name = "Living Room"

[[service.publishers.mqtt]]
broker = "localhost:1883"
topic = "zaparoo/events"
"""
    c = parse_config(text)
    assert c.service.encryption is True and c.service.discovery.enabled is False
    assert c.service.discovery.instance_name == "Living Room"
    assert "http://batocera.local" in c.api.allowed_origins  # Core's place for it counts too
    assert c.api.listen == ":7497"
