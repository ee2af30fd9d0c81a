"""JSON-RPC 2.0 as Zaparoo Core speaks it, sans-I/O: request text in, response object (or None) out.

- invalid JSON → -32700 "Parse error" with id null; so is JSON that is not valid UTF-8 text (a lone surrogate,
  even as a ``\\ud800`` escape: nothing downstream could store or send it) or a number JSON has no form for
  (NaN, Infinity, 1e400), which Python's json would accept and echo back as invalid JSON;
- not a request object, or ``jsonrpc`` ≠ "2.0" → -32600 "Invalid Request";
- unknown method → -32601 "Method not found" (names are case-insensitive) — unless a fallback
  (the proxy to the core) takes it;
- a request without ``id`` is a notification: it runs, nothing is answered;
- a handler error → code 1 with its message (e.g. "invalid params: text is required").

Every input gets a well-formed answer; nothing a client sends can raise out of :meth:`Dispatcher.handle`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import re
from contextvars import ContextVar
from typing import Any, Awaitable, Callable

from pydantic import BaseModel, ConfigDict, ValidationError

log = logging.getLogger(__name__)

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
HANDLER_ERROR = 1
MAX_MESSAGE = 1 << 20
MAX_BATCH = 100  # requests in one batch array; a longer batch is refused whole rather than half-answered

_RAW_SURROGATE = re.compile("[\ud800-\udfff]")
_ESCAPED_SURROGATE = re.compile(r"\\u[dD][89a-fA-F]")
_BATCH = re.compile(r"[ \t\r\n]*\[")  # JSON's whitespace, then an array
_BATCH_BYTES = re.compile(rb"[ \t\r\n]*\[")

Handler = Callable[[Any], Awaitable[Any]]

# Set by a transport for the requests it dispatches: an event set when the client that sent them goes away
# (an HTTP POST's connection closed). A handler that waits on the client's behalf (readers.write) ends then.
CLIENT_GONE: ContextVar["asyncio.Event | None"] = ContextVar("CLIENT_GONE", default=None)
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


class _BadJson(ValueError):
    """JSON that parses in Python but is not JSON text tagd can answer: the detail goes in the error message."""


def _no_constant(name: str) -> Any:
    raise _BadJson(f"{name} is not a JSON number")


def _finite(literal: str) -> float:
    value = float(literal)
    if math.isinf(value):
        raise _BadJson(f"number {literal[:40]} is out of range")
    return value


def _lone_surrogate(obj: Any) -> str | None:
    """The first lone surrogate in any string (key or value) of a parsed message, as ``\\udXXX``; None if none."""
    stack = [obj]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if m := _RAW_SURROGATE.search(item):
                return f"\\u{ord(m.group()):04x}"
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return None


# one decoder for every message: json.loads with these hooks built a decoder and scanner per call, and a thousand
# clients' requests left hundreds of them spread over the heap, holding its arenas (bench/stress.py: RSS after load)
_DECODER = json.JSONDecoder(parse_constant=_no_constant, parse_float=_finite)


def is_batch(text: str | bytes) -> bool:
    """A batch (an array) rather than one request, told by its first character before the text is parsed."""
    return bool((_BATCH_BYTES if isinstance(text, bytes) else _BATCH).match(text))  # type: ignore[arg-type]


def loads(text: str | bytes) -> Any:
    """json.loads for JSON-RPC: ValueError for anything that is not JSON text (see the module doc)."""
    if isinstance(text, (bytes, bytearray)):
        text = bytes(text).decode(json.detect_encoding(text))  # strict: json.loads would let surrogates pass
    elif m := _RAW_SURROGATE.search(text):
        raise _BadJson(f"lone surrogate \\u{ord(m.group()):04x} in a string")
    msg = _DECODER.decode(text)
    if _ESCAPED_SURROGATE.search(text) and (found := _lone_surrogate(msg)):  # a pair is fine: it is one character
        raise _BadJson(f"lone surrogate {found} in a string")
    return msg


class Params(BaseModel):
    """The base of every method's params model. Unknown keys are ignored (Zaparoo's Go decoder does the same); a
    value of the wrong JSON type is refused, not coerced: the document types every param, and "yes" → true,
    "2" → 2.0 or true → id 1 are not its types."""
    model_config = ConfigDict(extra="ignore", strict=True)


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
    """Methods by name. ``reported``: exception types whose message is the answer (an environment problem such as a
    full disk, already worded for the user): logged as one line, not as a handler bug with a traceback."""

    def __init__(self, fallback: Fallback | None = None, reported: tuple[type[Exception], ...] = ()) -> None:
        self.methods: dict[str, Handler] = {}
        self.fallback = fallback
        self.reported = reported
        self.guard: Callable[[str], None] | None = None  # (lower-cased method) → raises RpcError to refuse it

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
            msg = loads(text)
        except _BadJson as exc:
            return error(None, PARSE_ERROR, f"Parse error: {exc}")
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
        except self.reported as exc:
            log.error("%s: %s", method[:60], exc)
            return error(id_, HANDLER_ERROR, str(exc)) if has_id else None
        except Exception as exc:  # a handler bug must never take the connection down
            log.exception("method %s failed", method)
            return error(id_, HANDLER_ERROR, f"internal error: {exc.__class__.__name__}") if has_id else None
        if not has_id:
            return None
        return {"jsonrpc": "2.0", "id": id_, "result": result}

    async def _call(self, method: str, params: Any) -> Any:
        if self.guard is not None:
            self.guard(method.lower())
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
