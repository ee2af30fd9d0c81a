"""Driving a simulator by hand or from a script: line commands on a text stream (stdin for `tagd sim …`).

``place FILE``, ``remove``, ``unplug``, ``replug``, ``stats``, ``quit``: each is answered ``ok CMD`` on
stdout (``stats`` prints its JSON first), an error on stderr. The end of the stream does not stop
the simulator (it may run as a background job); ``quit`` sets the stop event. Any simulator with
those methods can be driven (the PN532 on a pty, the ACR122U card for vpcd).
"""

from __future__ import annotations

import json
import sys
import threading
from typing import Any, TextIO

STDIN_HELP = "place FILE, remove, unplug, replug, stats, quit"


def serve(simulator: Any, stop: threading.Event, stream: TextIO | None = None, out: TextIO | None = None,
          err: TextIO | None = None) -> None:
    """Read control commands until end of stream or ``quit``."""
    stream, out, err = stream or sys.stdin, out or sys.stdout, err or sys.stderr
    for line in stream:
        cmd, _, arg = line.strip().partition(" ")
        try:
            if cmd == "place" and arg:
                simulator.place(arg.strip())
            elif cmd in ("remove", "unplug", "replug"):
                getattr(simulator, cmd)()
            elif cmd == "stats":
                print(json.dumps(simulator.stats()), file=out, flush=True)
            elif cmd in ("quit", "exit"):
                stop.set()
                return
            elif cmd:
                print(f"unknown command {cmd!r} ({STDIN_HELP})", file=err, flush=True)
                continue
            else:
                continue
            print(f"ok {cmd}", file=out, flush=True)
        except Exception as exc:  # noqa: BLE001 - a bad dump file must not end the simulator
            print(f"error: {cmd}: {exc}", file=err, flush=True)


def serve_in_background(simulator: Any, stop: threading.Event) -> threading.Thread:
    thread = threading.Thread(target=serve, args=(simulator, stop), name="sim-control", daemon=True)
    thread.start()
    return thread
