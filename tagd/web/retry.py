"""How long to wait before trying a connection or a request again: one policy, as a pure generator.

The caller owns the sleeping (and can cut a sleep short: a tap does not wait out a 10 s backoff), so the
policy is tested without a clock and shared by every client that retries — the zaparoo forwarder's
reconnects today, MQTT request/response and the web-service clients tomorrow. After a success the caller
starts a fresh generator, so the next failure waits the shortest delay again.
"""

from __future__ import annotations

from typing import Iterator

FIRST = 0.5
MAXIMUM = 10.0
FACTOR = 2.0


def backoff(first: float = FIRST, maximum: float = MAXIMUM, factor: float = FACTOR) -> Iterator[float]:
    """Delays in seconds: ``first``, then multiplied by ``factor`` each time, never over ``maximum``; endless.

    No jitter: tagd's peers are one Core or one broker per daemon, not a fleet reconnecting in step.
    """
    if first <= 0 or maximum < first or factor < 1:
        raise ValueError(f"backoff needs 0 < first <= maximum and factor >= 1 (got {first}, {maximum}, {factor})")
    return _delays(first, maximum, factor)  # checked now, at the call, not at the first next()


def _delays(delay: float, maximum: float, factor: float) -> Iterator[float]:
    while True:
        yield delay
        delay = min(delay * factor, maximum)
