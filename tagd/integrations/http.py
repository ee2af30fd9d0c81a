"""The sans-I/O part every service shares: requests as values, responses deciphered into data or typed errors.

A service module builds a :class:`Request` (method, URL, headers, body — and whether it is *idempotent*, which
decides if the I/O layer may send it again) and hands a :class:`Response` to its parser. Errors form one
hierarchy so the caller decides by type, never by parsing messages:

- :class:`NetworkError` (no answer: refused, reset, timed out) and :class:`ServerError` (5xx) and
  :class:`RateLimited` (429, with ``retry_after``) are *transient*: back off and send the same request again;
- :class:`AuthError` (401, or what a service says means "log in again") stops the work until the user re-links;
- :class:`RequestRejected` (any other 4xx: 400, 403, 404, 422 …) means this request will never succeed as it is;
- :class:`BadResponse` is an answer that is not what the contract promises (malformed JSON, missing fields).

Messages never contain the request's headers: tokens travel only there (and in form bodies, never echoed).
"""

from __future__ import annotations

import email.utils
import json
from dataclasses import dataclass, field
from typing import Any, Iterator, Mapping
from urllib.parse import urlencode, urlsplit

USER_AGENT = "tagd (+https://github.com/tagd)"


@dataclass(frozen=True)
class Request:
    method: str
    url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""
    idempotent: bool = False  # safe to send twice: GET, PUT, and POSTs the server deduplicates

    def __repr__(self) -> str:  # never the headers: they carry the token
        return f"<Request {self.method} {self.url}>"


@dataclass(frozen=True)
class Response:
    status: int
    headers: Mapping[str, str]  # lower-case names
    body: bytes


class ServiceError(Exception):
    """Something a service call did not do; ``str()`` names the service and why, never a token."""

    transient = False

    def __init__(self, service: str, message: str, status: int | None = None, code: str = "") -> None:
        self.service = service
        self.message = message
        self.status = status
        self.code = code  # the service's own error code (PlayRen "not_found", RFC 8628 "slow_down" …)
        where = f" (HTTP {status})" if status else ""
        super().__init__(f"{service}: {message}{where}")


class NetworkError(ServiceError):
    transient = True


class ServerError(ServiceError):
    transient = True


class RateLimited(ServiceError):
    transient = True

    def __init__(self, service: str, message: str, status: int | None = 429, code: str = "",
                 retry_after: float | None = None) -> None:
        super().__init__(service, message, status, code)
        self.retry_after = retry_after


class AuthError(ServiceError):
    """The credentials are missing, expired or revoked: the user must link again."""


class RequestRejected(ServiceError):
    """A 4xx other than 401/429: sending the same request again cannot help."""


class BadResponse(ServiceError):
    """The answer does not follow the documented contract."""


def json_body(data: Any) -> bytes:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()


def build(method: str, base: str, path: str, *, token: str | None = None, query: Any = None, json: Any = None,
          form: Mapping[str, str] | None = None, idempotent: bool | None = None,
          extra_headers: Mapping[str, str] | None = None) -> Request:
    """A request to ``base`` + ``path`` (``query`` a mapping or list of pairs: repeated keys stay repeated)."""
    url = base.rstrip("/") + path
    if query:
        url += "?" + urlencode(query, doseq=True)
    headers = {"Accept": "application/json", "User-Agent": USER_AGENT}
    body = b""
    if json is not None:
        headers["Content-Type"] = "application/json"
        body = json_body(json)
    elif form is not None:
        headers["Content-Type"] = "application/x-www-form-urlencoded"
        body = urlencode(form).encode()
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if extra_headers:
        headers.update(extra_headers)
    if idempotent is None:
        idempotent = method in ("GET", "HEAD", "PUT", "DELETE", "OPTIONS")
    return Request(method, url, headers, body, idempotent)


def check_base_url(url: str) -> str:
    """An http(s) base URL without query or fragment; ValueError saying what is wrong."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{url!r} is not an http:// or https:// URL")
    if parts.query or parts.fragment:
        raise ValueError(f"{url!r}: a base URL has no ?query or #fragment")
    return url.rstrip("/")


MAX_RETRY_AFTER = 3600.0  # seconds: the longest Retry-After tagd honours


def parse_retry_after(value: str | None, now: float) -> float | None:
    """``Retry-After`` as seconds from ``now`` (unix time): delta-seconds or an HTTP date; None if absent/garbled."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():  # capped: a server asking for a year (or 9…9 seconds) must not stop the worker for good
        return min(float(value), MAX_RETRY_AFTER)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    return min(max(0.0, when.timestamp() - now), MAX_RETRY_AFTER)


def decode_json(service: str, resp: Response) -> Any:
    """The body as JSON, or BadResponse naming the status and the start of what came instead."""
    try:
        return json.loads(resp.body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        start = resp.body[:60].decode("utf-8", "replace")
        raise BadResponse(service, f"the answer is not JSON: {start!r}", resp.status) from None


def error_message(resp: Response) -> tuple[str, str]:
    """(code, message) from an error body in any of the shapes these services use:
    ``{error, message}`` (PlayRen), ``{error, error_description}`` (OAuth), ``{detail: str | [..]}`` (FastAPI);
    a body that is not JSON gives its first line (RomM's plain-text 500)."""
    try:
        obj = json.loads(resp.body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        text = resp.body.decode("utf-8", "replace").strip().splitlines()
        return "", (text[0][:200] if text else "")
    if not isinstance(obj, dict):
        return "", str(obj)[:200]
    code = obj.get("error") if isinstance(obj.get("error"), str) else ""
    for key in ("message", "error_description", "detail"):
        value = obj.get(key)
        if isinstance(value, str) and value:
            return code, value[:300]
        if isinstance(value, list) and value:  # FastAPI 422: [{loc, msg, type}, …]
            parts = [f"{'.'.join(map(str, _loc(v)))}: {v.get('msg', '')}" if isinstance(v, dict) else str(v)
                     for v in value[:3]]
            return code, "; ".join(parts)[:300]
    return code, code


def _loc(item: dict[str, Any]) -> list[Any]:
    loc = item.get("loc", [])
    return loc if isinstance(loc, list) else [loc]


def decipher(service: str, resp: Response, now: float) -> Any:
    """2xx → the JSON body (None for an empty body); anything else → the matching ServiceError."""
    if 200 <= resp.status < 300:
        return decode_json(service, resp) if resp.body.strip() else None
    raise error_for(service, resp, now)


def error_for(service: str, resp: Response, now: float) -> ServiceError:
    code, message = error_message(resp)
    message = message or f"HTTP {resp.status}"
    if resp.status == 429:
        return RateLimited(service, message or "too many requests", 429, code,
                           parse_retry_after(resp.headers.get("retry-after"), now))
    if resp.status == 401:
        return AuthError(service, message, 401, code)
    if 400 <= resp.status < 500:
        return RequestRejected(service, message, resp.status, code)
    if resp.status >= 500:
        return ServerError(service, message, resp.status, code)
    return BadResponse(service, f"unexpected answer: {message}", resp.status, code)


def backoff(first: float = 1.0, factor: float = 2.0, most: float = 300.0) -> Iterator[float]:
    """Delays between attempts: first, first×factor, … capped at ``most`` (a pure generator, as websockets does)."""
    delay = first
    while True:
        yield delay
        delay = min(delay * factor, most)


def retry_delay(exc: ServiceError, planned: float) -> float:
    """How long to wait after a transient error: the server's Retry-After when it gave one, else the plan."""
    if isinstance(exc, RateLimited) and exc.retry_after is not None:
        return max(exc.retry_after, 0.0)
    return planned
