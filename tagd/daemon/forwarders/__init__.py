"""Forwarders: where a launch goes — "the core". Each ``[[core]]`` config entry builds one.

A forwarder gets the token *after* mappings (its text is what to launch) and raises :class:`ForwardError`
when the launch did not reach its target. The pipeline calls every forwarder concurrently and never lets
one forwarder's failure or slowness hold up the others or the readers.

Lifecycle (owned by the service, not the pipeline): ``await start_all(fws)`` after building them,
``await close_all(fws)`` at shutdown. ``stop_media()`` is the hold-mode exit (Zaparoo's ``stop``); a
forwarder with no notion of stopping does nothing. ``on_notification(method, params)`` may be set to
receive the target's own notifications (only the zaparoo forwarder has any: ``media.started`` …).

Each forwarder's launches go through its :class:`LaunchQueue`: one at a time, in order, at most ``MAX_QUEUED``
waiting (more are refused at once: a flood of API launches must not become a minute of games starting late and
a growing heap), and one whose turn comes more than ``max_age`` seconds after its scan (every core has it,
default 10 s) is dropped, not sent late. Both are ForwardErrors, so the pipeline logs them and history
records the launch as failed.

A launch from the API or the web (``token.unsafe``: not a tag someone tapped) is marked as such for every
core: zaparoo's ``run`` gets ``unsafe: true``, exec gets ``TAGD_UNSAFE=1``, webhook ``X-Tagd-Unsafe: 1``, stdout
``"unsafe": true``, and mqtt publishes it to ``<topic>/unsafe`` (MQTT 3.1.1 has no headers, and Core's MQTT
reader would take the text on ``<topic>`` as a tag scan).
"""

from __future__ import annotations

import asyncio
import logging
import time
from abc import ABC, abstractmethod
from typing import Any, Callable, ClassVar, Iterable, Sequence

from tagd.token import Token

log = logging.getLogger(__name__)

NotificationCallback = Callable[[str, Any], None]

# Every request a forwarder makes carries its daemon's instance id in this header; tagd's API refuses a request
# with its own id (508 Loop Detected). Without it a [[core]] url that reaches tagd itself (the default port is
# Zaparoo Core's, 7497; a host name that resolves to this machine) turns one run into an endless run → run loop.
INSTANCE_HEADER = "X-Tagd-Instance"
LOOP_DETECTED = 508
DEFAULT_MAX_AGE = 10.0  # seconds after the scan a launch may still be sent
MAX_QUEUED = 16  # launches running or waiting for one forwarder


class ForwardError(Exception):
    """The launch (or stop) did not reach the target; the message says which target and why."""


class Forwarder(ABC):
    kind: ClassVar[str]
    max_age: float = DEFAULT_MAX_AGE  # from the core's config (build_forwarders)

    def __init__(self, name: str) -> None:
        self.name = name
        self.on_notification: NotificationCallback | None = None
        self.on_disconnect: Callable[[], None] | None = None  # the target's connection dropped (zaparoo)
        self.instance_headers: dict[str, str] = {}  # {INSTANCE_HEADER: id}, set by the daemon

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"

    async def start(self) -> None:
        """Connect or prepare; must not wait for an unreachable target (reconnect in the background)."""

    @abstractmethod
    async def launch(self, token: Token) -> None:
        """Send one launch; ForwardError if it did not reach the target."""

    async def stop_media(self) -> None:
        """Hold-mode exit: stop whatever was launched. Default: nothing to stop."""

    async def close(self) -> None:
        """Release connections and tasks. Must not raise."""

    def reader_event(self, event: Any) -> None:
        """Every local reader event, before the pipeline sees it (a fabric satellite publishes them). Default: none."""

    def daemon_notification(self, method: str, params: Any) -> None:
        """Every notification tagd sends its API clients (Core-style MQTT publishers). Default: none."""

    def _notify(self, method: str, params: Any) -> None:
        if self.on_notification is None:
            return
        try:
            self.on_notification(method, params)
        except Exception:  # a broken listener must not kill the connection
            log.exception("%s: notification callback failed", self.name)


def build_forwarders(cores: Iterable[Any]) -> list[Forwarder]:
    """One forwarder per ``[[core]]`` config model, in config order, named ``<type>`` or ``<type>#N`` (or its ``name``)."""
    cores = list(cores)
    counts: dict[str, int] = {}
    for c in cores:
        counts[c.type] = counts.get(c.type, 0) + 1
    seen: dict[str, int] = {}
    out: list[Forwarder] = []
    for c in cores:
        seen[c.type] = seen.get(c.type, 0) + 1
        name = c.name or (c.type if counts[c.type] == 1 else f"{c.type}#{seen[c.type]}")
        kind = "mqtt-node" if c.type == "mqtt" and getattr(c, "node", "") else c.type
        fw = _forwarder_class(kind)(c, name)
        fw.max_age = float(getattr(c, "max_age", DEFAULT_MAX_AGE))
        out.append(fw)
    return out


class LaunchQueue:
    """One forwarder's launches and stops, one at a time in arrival order, bounded (see the module doc)."""

    def __init__(self, forwarder: Forwarder, limit: int = MAX_QUEUED) -> None:
        self.forwarder = forwarder
        self.limit = limit
        self.queued = 0  # launches running or waiting
        self._lock = asyncio.Lock()

    async def launch(self, token: Token) -> None:
        fw = self.forwarder
        if self.queued >= self.limit:
            raise ForwardError(f"{fw.name}: launch refused: {self.queued} launches are already waiting for it")
        self.queued += 1
        try:
            async with self._lock:
                age, max_age = time.time() - token.scan_ns / 1e9, getattr(fw, "max_age", DEFAULT_MAX_AGE)
                if age > max_age:
                    raise ForwardError(f"{fw.name}: launch expired: scanned {age:.1f} s ago (max_age {max_age:g} s)")
                await fw.launch(token)
        finally:
            self.queued -= 1

    async def stop_media(self) -> None:
        async with self._lock:
            await self.forwarder.stop_media()


def _forwarder_class(kind: str) -> Any:
    # imported on demand: paho is only needed when an mqtt core is configured
    if kind == "zaparoo":
        from tagd.daemon.forwarders.zaparoo import ZaparooForwarder

        return ZaparooForwarder
    if kind == "mqtt":
        from tagd.daemon.forwarders.mqtt import MqttForwarder

        return MqttForwarder
    if kind == "mqtt-node":  # an mqtt core with a node name: this tagd is a satellite of the MQTT fabric
        from tagd.daemon.fabric.node import FabricForwarder

        return FabricForwarder
    if kind == "exec":
        from tagd.daemon.forwarders.command import ExecForwarder

        return ExecForwarder
    if kind == "webhook":
        from tagd.daemon.forwarders.webhook import WebhookForwarder

        return WebhookForwarder
    if kind == "stdout":
        from tagd.daemon.forwarders.stdout import StdoutForwarder

        return StdoutForwarder
    raise ValueError(f"unknown core type {kind!r}")


async def start_all(forwarders: Sequence[Forwarder]) -> None:
    await asyncio.gather(*(f.start() for f in forwarders))


async def close_all(forwarders: Sequence[Forwarder]) -> None:
    results = await asyncio.gather(*(f.close() for f in forwarders), return_exceptions=True)
    for f, r in zip(forwarders, results):
        if isinstance(r, BaseException):
            log.warning("%s: close failed: %s", f.name, r)
