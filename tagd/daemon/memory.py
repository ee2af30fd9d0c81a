"""Giving freed heap memory back to the system.

CPython frees objects to glibc's malloc, which keeps the pages for reuse: after start-up (config parsing, schema
building, the first reads) and after a burst of API work, a daemon that is idle again holds memory it no longer
uses. ``malloc_trim(0)`` returns the free pages at the top of each arena and the free runs inside them. It takes
about a millisecond at tagd's size. On a libc without it (musl) :func:`trim` does nothing.
"""

from __future__ import annotations

import asyncio
import logging

log = logging.getLogger(__name__)

_trim = None  # libc's malloc_trim once looked up; False where there is none


def trim() -> bool:
    """Return free heap pages to the system; False where libc has no malloc_trim."""
    global _trim
    if _trim is None:
        try:
            import ctypes  # only here: the daemon needs ctypes for nothing else

            _trim = ctypes.CDLL(None).malloc_trim
        except (OSError, AttributeError):
            _trim = False
    if _trim is False:
        return False
    _trim(0)
    return True


async def trim_after(seconds: float) -> None:
    """Trim once the daemon has settled: its readers open and the start-up garbage freed."""
    await asyncio.sleep(seconds)
    trim()
