"""systemd's sd_notify, without libsystemd: one datagram to $NOTIFY_SOCKET (``@`` = abstract namespace).

Does nothing when not started by systemd (no NOTIFY_SOCKET), so callers never need to check."""

from __future__ import annotations

import os
import socket


def notify(*states: str) -> bool:
    """Send e.g. notify("READY=1", "STATUS=listening"). True if a message was sent."""
    addr = os.environ.get("NOTIFY_SOCKET")
    if not addr or not states:
        return False
    if addr.startswith("@"):
        addr = "\0" + addr[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            s.connect(addr)
            s.sendall("\n".join(states).encode())
        return True
    except OSError:
        return False
