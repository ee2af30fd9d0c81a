"""A tap's outcome, told to the person holding the tag: the App's audioScanFeedback (``[audio] scan_feedback``).

Zaparoo Core plays a success sound when a tap's launch goes out and a fail sound when it fails; tagd tells the
reader that saw the tap instead, which is where the person is looking: the ACR122U shows green and beeps once, or
red and beeps three times (readers/acr122.py ``signal``; with scan_feedback off, the LED alone — the reader's
``buzzer`` option, which scan_feedback sets unless the driver's options say). Readers with neither show nothing.

``[audio] success_command`` / ``fail_command`` (argv lists) add a sound through the system, e.g.
``["paplay", "/usr/share/sounds/freedesktop/stereo/complete.oga"]``: run without a shell and with nothing of the
tag in them, killed after :data:`SOUND_TIMEOUT`, and only while scan_feedback is on.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Callable

from tagd.daemon.hooks import run_command

log = logging.getLogger(__name__)

SOUND_TIMEOUT = 5.0  # seconds a sound command may play before it is killed


class ScanFeedback:
    """Called by the pipeline with (reader_id, ok) for each tap it launched, armed or wrote — or refused; ok is None
    for a tap the launch guard staged (the reader shows it pending)."""

    def __init__(self, reader_for: Callable[[str], Any], audio: Callable[[], Any]) -> None:
        self.reader_for = reader_for  # reader_id → the Reader object that saw it (None: gone, or another node's)
        self.audio = audio  # → the config's [audio], read at each tap: settings.update applies at once
        self._sounds: set[asyncio.Task[Any]] = set()

    def __call__(self, reader_id: str, ok: bool | None) -> None:
        signal = getattr(self.reader_for(reader_id), "signal", None)
        if signal is not None:
            try:
                signal(ok)
            except Exception:  # a reader's trouble showing a light is not the tap's
                log.exception("%s: showing the tap's outcome failed", reader_id)
        if ok is None:
            return  # staged by the launch guard: the reader shows it; no sound command is for it
        audio = self.audio()
        argv = audio.success_command if ok else audio.fail_command
        if audio.scan_feedback and argv:
            task = asyncio.ensure_future(run_command("success_command" if ok else "fail_command", list(argv),
                                                     timeout=SOUND_TIMEOUT))
            self._sounds.add(task)
            task.add_done_callback(self._sounds.discard)

    async def close(self) -> None:
        """Stop the sounds still playing (their processes are killed)."""
        for task in list(self._sounds):
            task.cancel()
        await asyncio.gather(*self._sounds, return_exceptions=True)
