"""JSON-RPC 2.0 as Zaparoo Core speaks it, sans-I/O: request text in, response object (or None) out.

- invalid JSON → -32700 "Parse error" with id null;
- not a request object, or ``jsonrpc`` ≠ "2.0" → -32600 "Invalid Request";
- unknown method → -32601 "Method not found" (names are case-insensitive) — unless a fallback
  (the proxy to the core) takes it;
- a request without ``id`` is a notification: it runs, nothing is answered;
- a handler error → code 1 with its message (e.g. "invalid params: text is required").

Every input gets a well-formed answer; nothing a client sends can raise out of :meth:`Dispatcher.handle`.
"""

from __future__ import annotations

import json
import logging
from typing import Any, Awaitable, Callable

from pydantic import BaseModel, ValidationError

log = logging.getLogger(__name__)

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
HANDLER_ERROR = 1
MAX_MESSAGE = 1 << 20
MAX_BATCH = 100  # requests in one batch array; a longer batch is refused whole rather than half-answered

Handler = Callable[[Any], Awaitable[Any]]
Fallback = Callable[[str, Any], Awaitable[Any]]


class RpcError(Exception):
    """A handler error with a JSON-RPC code (default 1, as Zaparoo answers handler failures)."""

    def __init__(self, message: str, code: int = HANDLER_ERROR, data: Any = None) -> None:
        super().__init__(message)
        self.code, self.message, self.data = code, message, data


class NotFound(Exception):
    """Raised by a fallback that does not serve the method either."""


def error(id_: Any, code: int, message: str, data: Any = None) -> dict[str, Any]:
    err: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        err["data"] = data
    return {"jsonrpc": "2.0", "id": id_, "error": err}


def params_of(model: type[BaseModel], params: Any) -> Any:
    """Validate params with a pydantic model; RpcError("invalid params: …") naming the field otherwise."""
    if params is None:
        params = {}
    if not isinstance(params, dict):
        raise RpcError("invalid params: expected an object")
    try:
        return model.model_validate(params)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"]) or "params"
        if err["type"] == "missing":
            raise RpcError(f"invalid params: {field} is required") from None
        raise RpcError(f"invalid params: {field}: {err['msg']}") from None


class Dispatcher:
    def __init__(self, fallback: Fallback | None = None) -> None:
        self.methods: dict[str, Handler] = {}
        self.fallback = fallback

    def method(self, name: str) -> Callable[[Handler], Handler]:
        def deco(fn: Handler) -> Handler:
            self.methods[name.lower()] = fn
            return fn
        return deco

    async def handle_text(self, text: str | bytes) -> Any:
        """One WebSocket/HTTP message → the response (dict or list), or None for notifications."""
        if len(text) > MAX_MESSAGE:
            return error(None, INVALID_REQUEST, "Invalid Request", "message too large")
        try:
            msg = json.loads(text)
        except (ValueError, UnicodeDecodeError, RecursionError):
            return error(None, PARSE_ERROR, "Parse error")
        if isinstance(msg, list):
            if not msg:
                return error(None, INVALID_REQUEST, "Invalid Request")
            if len(msg) > MAX_BATCH:
                return error(None, INVALID_REQUEST, "Invalid Request", f"a batch holds at most {MAX_BATCH} requests")
            out = [r for r in [await self.handle(m) for m in msg] if r is not None]
            return out or None
        return await self.handle(msg)

    async def handle(self, msg: Any) -> dict[str, Any] | None:
        if not isinstance(msg, dict):
            return error(None, INVALID_REQUEST, "Invalid Request")
        has_id = "id" in msg
        id_ = msg.get("id")
        if has_id and not (id_ is None or isinstance(id_, (str, int, float))) or isinstance(id_, bool):
            return error(None, INVALID_REQUEST, "Invalid Request")
        method = msg.get("method")
        if msg.get("jsonrpc") != "2.0" or not isinstance(method, str):
            return error(id_ if has_id else None, INVALID_REQUEST, "Invalid Request")
        params = msg.get("params")
        try:
            result = await self._call(method, params)
        except NotFound:
            return error(id_, METHOD_NOT_FOUND, "Method not found") if has_id else None
        except RpcError as exc:
            return error(id_, exc.code, exc.message, exc.data) if has_id else None
        except Exception as exc:  # a handler bug must never take the connection down
            log.exception("method %s failed", method)
            return error(id_, HANDLER_ERROR, f"internal error: {exc.__class__.__name__}") if has_id else None
        if not has_id:
            return None
        return {"jsonrpc": "2.0", "id": id_, "result": result}

    async def _call(self, method: str, params: Any) -> Any:
        handler = self.methods.get(method.lower())
        if handler is not None:
            return await handler(params)
        if self.fallback is not None:
            return await self.fallback(method, params)
        raise NotFound(method)


def notification(method: str, params: Any = None) -> dict[str, Any]:
    msg: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
    if params is not None:
        msg["params"] = params
    return msg
