"""Giving memory back to the system after a burst, so RSS falls back once it is over (glibc).

Python hands large blocks (an answer's text, its encoded frame, a socket's buffer) to the C allocator. glibc's
default raises its mmap threshold to the largest block freed so far, so after the first 2 MB answer every later one
came from the heap, which keeps its pages: ten clients that never read made RSS peak at 190 MB and stay 25-45 MB up
(bench/stress.py). On the first large request or answer (:meth:`Trimmer.soon`) the thresholds are fixed instead
(``mallopt``: blocks from 128 KiB get their own mapping, given back when freed; the heap is trimmed past 128 KiB
free at its top), and a second after a burst ``malloc_trim(0)`` gives back the free pages inside the heap too —
once, however many bursts come in that second. Measured on the never-reading clients: peak 87 → 80 MB, 2 s after
58 → 47 MB.

The daemon also gives memory back once after start (:meth:`Trimmer.soon` a second after it is ready): config
parsing, schema building and the readers' first reads leave ~0.6 MB of free heap that an idle daemon would
otherwise keep (ctypes, 0.2 MB, is loaded for it). On a C library without these calls (musl, macOS) nothing is done.

A crowd of connections leaving is a burst too: the web server calls :meth:`Trimmer.soon` once three quarters of 64
or more connections open at once have gone. Each give-back first runs the cycle collector (which also
empties the interpreter's free lists) and empties CPython's type cache (:func:`drop_caches`); ``tagd run`` keeps
Python's small objects on glibc's malloc (tagd.cli.exec_with_system_malloc), because Python's own allocator gives
memory back only a whole 1 MiB arena at a time. With these, bench/stress.py's RSS 5 s after the hostile cases went
from 62 to 47 MB.
"""

from __future__ import annotations

import asyncio
import gc
import sys
from typing import Any, Callable

DELAY = 1.0  # seconds after a burst before memory is given back
THRESHOLD = 128 << 10  # bytes: blocks at least this large are mapped on their own; free heap past this is trimmed
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # mallopt's parameters (malloc.h)


def _glibc() -> Any:
    """The C library if it has glibc's malloc tuning calls, else None."""
    try:
        import ctypes

        libc = ctypes.CDLL(None)  # the C library the process runs on
        libc.mallopt, libc.malloc_trim  # noqa: B018 (AttributeError if they are missing)
        return libc
    except (OSError, AttributeError):
        return None


def drop_caches() -> None:
    """Let go of what CPython's type attribute cache picked up in a burst, so the memory around it can go back.

    The cache (4096 entries) holds a reference to each attribute name it looked up. Names made on the fly — each
    ``asyncio.gather`` over a cancelled task makes a new "result" string — stay spread over the heap, each keeping
    its page mapped (with Python's own allocator, its whole 1 MiB arena: after 1000 WebSocket clients came and
    went, 10 MB). The cache fills again on the next lookups."""
    clear = getattr(sys, "_clear_type_cache", None)  # CPython's; other interpreters have no such cache
    if clear is not None:
        clear()


def give_back(libc: Any = None) -> bool:
    """``malloc_trim(0)`` now: free heap pages go back to the system. False where the C library has no such call."""
    libc = libc or _glibc()
    if libc is None:
        return False
    libc.malloc_trim(0)
    return True


_freeze_holders = 0  # trimmers holding the interpreter's frozen set (Trimmer.freeze_start_up)


class Trimmer:
    def __init__(self, delay: float = DELAY, busy: Callable[[], bool] = lambda: False) -> None:
        self.delay = delay
        self.busy = busy  # True while the give-back had better wait (a tap on its way, a crowd still connected)
        self.trims = 0  # done (tests, the bench)
        self._timer: asyncio.TimerHandle | None = None
        self._libc: Any = False  # False: not looked up yet
        self._holds_freeze = False  # this trimmer set the start-up objects aside (freeze_start_up)
        self._closed = False

    def soon(self) -> None:
        """A large block was just used: fix the thresholds (the first time), and give memory back ``delay`` seconds
        from now (or when an earlier call asked for: once for both)."""
        if self._libc is False:
            self._libc = _glibc()
            if self._libc is not None:
                self._libc.mallopt(M_MMAP_THRESHOLD, THRESHOLD)
                self._libc.mallopt(M_TRIM_THRESHOLD, THRESHOLD)
        if self._timer is None and self._libc is not None and not self._closed:
            self._timer = asyncio.get_running_loop().call_later(self.delay, self.now)

    def now(self) -> None:
        self._timer = None
        if self.busy():  # its collection takes a few ms of the loop: not while a tap or a crowd needs it
            self.soon()
            return
        # a full collection also empties the interpreter's free lists (2000 spare tuples of each size, 80 lists and
        # dicts …) that a burst left spread over the heap, each keeping its page mapped: 5 MB over bench/stress.py's
        # phases. It looks only at what came after start (freeze_start_up): 2-5 ms after 1000 clients, not 20-30 ms
        gc.collect()
        drop_caches()
        if self._libc and give_back(self._libc):
            self.trims += 1

    def freeze_start_up(self) -> None:
        """Before the daemon takes its first connection: what is alive now (modules, config, schemas, the store) lives
        as long as the daemon or until a reload. It is set aside (``gc.freeze``), so that each give-back's collection
        looks only at what came later. No collection first: it found 5 objects and took 16-32 ms of the start.
        The interpreter has one frozen set: the first trimmer to freeze it and the last to thaw it decide (several
        daemons in one process, as in the tests). After a thaw nothing is frozen again: give-backs then look at
        everything (10-25 ms each), as the collector's own full runs always did."""
        global _freeze_holders
        if self._holds_freeze or self._closed:
            return
        if _freeze_holders == 0:
            gc.freeze()
        _freeze_holders += 1
        self._holds_freeze = True

    def thaw(self) -> None:
        """What was set aside may be garbage now (a reload replaced the config, or the daemon stops): the collector
        looks at it again, from now on."""
        global _freeze_holders
        if not self._holds_freeze:
            return
        self._holds_freeze = False
        _freeze_holders -= 1
        if _freeze_holders == 0:
            gc.unfreeze()

    def close(self) -> None:
        """The daemon stops: no give-back from now on (connections closing now would ask for one), and thaw."""
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.thaw()
