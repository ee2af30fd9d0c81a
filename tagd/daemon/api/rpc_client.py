"""The requesting half of JSON-RPC 2.0, sans-I/O: the other side of :class:`tagd.daemon.api.jsonrpc.Dispatcher`.

:meth:`RpcClient.request` builds a request's text and remembers its id; :meth:`RpcClient.receive` turns a
message from the peer into a :class:`Result`, an :class:`ErrorReply` or a :class:`Notification` — or None for
anything else (text that is not JSON, a reply to an id nobody waits for, a batch, a text ``pong``). Nothing a
peer sends can raise out of ``receive``: a Core that answers garbage costs one ignored message, not the
connection. The I/O layer (the zaparoo forwarder's WebSocket; MQTT request/response and web-service clients
tomorrow) only moves text and keeps its own futures keyed by the ids this returns; :meth:`RpcClient.forget`
drops an id it stopped waiting for (a timeout), so a late answer is ignored rather than matched.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any, Callable

from tagd.web.server import json_text


@dataclass(frozen=True)
class Result:
    """The peer answered request ``id`` with ``value``."""

    id: str
    value: Any


@dataclass(frozen=True)
class ErrorReply:
    """The peer answered request ``id`` with a JSON-RPC error (``code`` 0 when it gave none usable)."""

    id: str
    code: int
    message: str
    data: Any = None


@dataclass(frozen=True)
class Notification:
    """The peer told us something unasked (``media.started`` …)."""

    method: str
    params: Any = None


Reply = Result | ErrorReply | Notification


def _new_id() -> str:
    return str(uuid.uuid4())


class RpcClient:
    def __init__(self, new_id: Callable[[], str] = _new_id) -> None:
        self._new_id = new_id
        self.pending: set[str] = set()

    def request(self, method: str, params: Any = None) -> tuple[str, str]:
        """A request's ``(id, text)``; its answer is matched by :meth:`receive` until :meth:`forget`."""
        req_id = self._new_id()
        message: dict[str, Any] = {"jsonrpc": "2.0", "id": req_id, "method": method}
        if params is not None:
            message["params"] = params
        self.pending.add(req_id)
        return req_id, json_text(message)

    def forget(self, req_id: str) -> None:
        """Stop matching ``req_id`` (the caller gave up on it); an answer arriving later is ignored."""
        self.pending.discard(req_id)

    def receive(self, text: str) -> Reply | None:
        """One message from the peer → what it means for us; None if it is nothing we asked for or can use."""
        try:
            msg = json.loads(text)
        except (ValueError, RecursionError):  # not JSON (e.g. "pong"), or nested past what Python parses
            return None
        if not isinstance(msg, dict):
            return None  # a batch: tagd never sends one, so no answer can be one
        msg_id = msg.get("id")
        if isinstance(msg_id, str) and msg_id in self.pending:
            self.pending.discard(msg_id)  # one answer per request: a duplicate is ignored
            if "error" in msg and msg["error"] is not None:
                return _error_reply(msg_id, msg["error"])
            return Result(msg_id, msg.get("result"))
        method = msg.get("method")
        if isinstance(method, str) and msg_id is None:
            return Notification(method, msg.get("params"))
        return None


def _error_reply(msg_id: str, err: Any) -> ErrorReply:
    if not isinstance(err, dict):
        return ErrorReply(msg_id, 0, str(err))
    code = err.get("code")
    if not isinstance(code, int) or isinstance(code, bool):
        code = int(code) if isinstance(code, float) and code.is_integer() else 0
    message = err.get("message")
    return ErrorReply(msg_id, code, message if isinstance(message, str) else "", err.get("data"))
