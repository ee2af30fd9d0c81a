"""Print each launch as one JSON line: ``{"event": "launch", <Token JSON>}`` (with ``"unsafe": true`` for a
launch from the API or the web); a hold-mode exit prints ``{"event": "stop"}``. Flushed per line, so a pipe reader (``tagd run | jq``) sees taps as they happen."""

from __future__ import annotations

import json
import sys
from typing import Any, TextIO

from tagd.daemon.forwarders import Forwarder, ForwardError
from tagd.token import Token


class StdoutForwarder(Forwarder):
    kind = "stdout"

    def __init__(self, config: Any = None, name: str = "stdout", stream: TextIO | None = None) -> None:
        super().__init__(name)
        self.stream = stream  # None = the sys.stdout of the moment (so tests' capture works)

    def _write(self, obj: dict[str, Any]) -> None:
        stream = self.stream or sys.stdout
        try:
            stream.write(json.dumps(obj, ensure_ascii=False) + "\n")
            stream.flush()
        except (OSError, ValueError) as exc:  # closed pipe or stream
            raise ForwardError(f"{self.name}: cannot write: {exc}") from None

    async def launch(self, token: Token) -> None:
        self._write({"event": "launch", **token.to_json(), **({"unsafe": True} if token.unsafe else {})})

    async def stop_media(self) -> None:
        self._write({"event": "stop"})
