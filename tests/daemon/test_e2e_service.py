"""The service's edges: sd_notify datagrams (path and abstract sockets) and the systemd unit."""

from __future__ import annotations

import os
import pathlib
import socket

import pytest

from tagd.daemon import sdnotify

UNIT = pathlib.Path(__file__).resolve().parents[2] / "udev" / "tagd.service"


@pytest.fixture
def datagram_server():
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    srv.settimeout(2)
    yield srv
    srv.close()


def test_sd_notify_sends_every_state_in_one_datagram(tmp_path, monkeypatch, datagram_server):
    datagram_server.bind(str(tmp_path / "notify"))
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "notify"))
    assert sdnotify.notify("READY=1", "STATUS=listening on 127.0.0.1:7497")
    assert datagram_server.recv(4096) == b"READY=1\nSTATUS=listening on 127.0.0.1:7497"


def test_sd_notify_reaches_an_abstract_socket(monkeypatch, datagram_server):
    name = f"tagd-test-{os.getpid()}"
    datagram_server.bind("\0" + name)
    monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
    assert sdnotify.notify("STOPPING=1")
    assert datagram_server.recv(4096) == b"STOPPING=1"


def test_sd_notify_without_systemd_does_nothing(monkeypatch):
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert sdnotify.notify("READY=1") is False


def test_sd_notify_to_a_dead_socket_is_not_an_error(tmp_path, monkeypatch):
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "nobody-listens"))
    assert sdnotify.notify("READY=1") is False


def unit_settings():
    settings: dict[str, list[str]] = {}
    for line in UNIT.read_text().splitlines():
        if "=" in line and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            settings.setdefault(key.strip(), []).append(value.strip())
    return settings


def test_unit_is_type_notify_restarts_on_failure_but_not_on_a_config_error():
    s = unit_settings()
    assert s["Type"] == ["notify"] and s["Restart"] == ["on-failure"] and s["RestartPreventExitStatus"] == ["2"]
    assert s["ExecStart"][0].endswith("tagd run")


def test_unit_hardening_leaves_serial_usb_and_pcscd_reachable():
    s = unit_settings()
    assert "PrivateDevices" not in s and "DevicePolicy" not in s  # /dev/tty*, /dev/bus/usb stay visible
    assert {"dialout", "plugdev"} <= set(s["SupplementaryGroups"][0].split())
    families = set(s["RestrictAddressFamilies"][0].split())
    assert {"AF_UNIX", "AF_NETLINK", "AF_INET"} <= families  # pcscd socket, udev hotplug, the API
    assert s["ProtectSystem"] == ["strict"] and s["NoNewPrivileges"] == ["yes"]


def test_unit_reloads_with_sighup():
    assert unit_settings()["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
