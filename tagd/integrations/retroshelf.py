"""retroshelf (seeds/000): the device-code link (RFC 8628), completeLink and syncSessions — sans-I/O.

Request builders return :class:`~tagd.integrations.http.Request`; parsers take a Response and return data or
raise. The token poll's answers are one exception class per RFC 8628 §3.5 error (as oauthlib does), and
:class:`DevicePoll` holds the polling rules as plain state: wait ``interval`` between polls, ``slow_down`` adds
5 s to it for the rest of the flow, ``authorization_pending`` keeps going, ``access_denied`` and
``expired_token`` (or the code's ``expires_in`` running out) end it.

syncSessions is marked idempotent: retroshelf deduplicates on (sync client, romPath, devicePlayedAt, duration),
so the queue sends the very same values again after any failure.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

from tagd.integrations.http import (AuthError, BadResponse, Request, RequestRejected, Response, ServiceError, build,
                                    decipher, decode_json, error_for, error_message)

SERVICE = "retroshelf"
DEFAULT_BASE_URL = "https://retroshelf.org"
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
SLOW_DOWN_STEP = 5.0  # RFC 8628 §3.5
BATCH_MAX = 100


# --- RFC 8628 poll errors ---------------------------------------------------------


class DeviceFlowError(ServiceError):
    code_name = ""


class AuthorizationPending(DeviceFlowError):
    code_name = "authorization_pending"


class SlowDown(DeviceFlowError):
    code_name = "slow_down"


class AccessDenied(DeviceFlowError):
    code_name = "access_denied"


class ExpiredToken(DeviceFlowError):
    code_name = "expired_token"


POLL_ERRORS = {cls.code_name: cls for cls in (AuthorizationPending, SlowDown, AccessDenied, ExpiredToken)}
POLL_MESSAGES = {
    "authorization_pending": "waiting for you to approve the code",
    "slow_down": "polling too fast; slowing down",
    "access_denied": "the link was refused on retroshelf; run tagd link retroshelf again to retry",
    "expired_token": "the code expired before it was approved; run tagd link retroshelf again for a new one",
}


@dataclass(frozen=True)
class DeviceCode:
    device_code: str
    user_code: str
    verification_uri: str
    expires_in: float
    interval: float
    verification_uri_complete: str = ""

    def __repr__(self) -> str:  # the device code is a credential until it expires
        return f"<DeviceCode user_code={self.user_code} uri={self.verification_uri}>"


@dataclass(frozen=True)
class SyncResult:
    synced: int
    matched: int
    unmatched: int
    results: list[dict[str, Any]]


# --- builders ------------------------------------------------------------------------


def device_code_request(base: str, client_id: str) -> Request:
    return build("POST", base, "/api/auth/device/code", json={"client_id": client_id})


def token_request(base: str, client_id: str, device_code: str) -> Request:
    return build("POST", base, "/api/auth/device/token",
                 json={"grant_type": DEVICE_GRANT, "device_code": device_code, "client_id": client_id})


def complete_link_request(base: str, token: str, device_name: str) -> Request:
    return build("POST", base, "/api/syncClient/completeLink", token=token, json={"deviceName": device_name})


def sync_request(base: str, token: str, sync_client_id: str, sessions: Iterable[dict[str, Any]]) -> Request:
    return build("POST", base, "/api/syncClient/syncSessions", token=token, idempotent=True,
                 json={"syncClientId": sync_client_id, "sessions": list(sessions)})


# --- parsers -------------------------------------------------------------------------


def _number(obj: dict[str, Any], key: str, default: float | None = None) -> float:
    value = obj.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise BadResponse(SERVICE, f"device code answer: {key} is not a number of seconds")
    return float(value)


def parse_device_code(resp: Response, now: float) -> DeviceCode:
    obj = decipher(SERVICE, resp, now)
    if not isinstance(obj, dict):
        raise BadResponse(SERVICE, "device code answer is not an object", resp.status)
    for key in ("device_code", "user_code", "verification_uri"):
        if not isinstance(obj.get(key), str) or not obj[key]:
            raise BadResponse(SERVICE, f"device code answer has no {key}", resp.status)
    return DeviceCode(obj["device_code"], obj["user_code"], obj["verification_uri"], _number(obj, "expires_in", 1800),
                      _number(obj, "interval", 5), str(obj.get("verification_uri_complete") or ""))


def parse_token(resp: Response, now: float) -> str:
    """The access token; one of the RFC 8628 errors while the user has not approved (HTTP 400 ``{error}`` or
    ``{detail}``), or the generic error for anything else."""
    if resp.status == 400 or resp.status == 401 or resp.status == 403:
        code, message = error_message(resp)
        code = code or message  # some servers put the code in "detail"
        cls = POLL_ERRORS.get(code)
        if cls is not None:
            raise cls(SERVICE, POLL_MESSAGES[code], resp.status, code)
    obj = decipher(SERVICE, resp, now)
    if not isinstance(obj, dict) or not isinstance(obj.get("access_token"), str) or not obj["access_token"]:
        raise BadResponse(SERVICE, "token answer has no access_token", resp.status)
    return obj["access_token"]


def parse_complete_link(resp: Response, now: float) -> str:
    obj = decipher(SERVICE, resp, now)
    if isinstance(obj, dict):
        value = obj.get("syncClientId")
        if isinstance(value, str) and value:
            return value
    raise BadResponse(SERVICE, "completeLink answer has no syncClientId", resp.status)


def parse_sync(resp: Response, now: float) -> SyncResult:
    if resp.status == 403:  # a revoked sync client is a link problem, not this batch's
        _, message = error_message(resp)
        raise AuthError(SERVICE, message or "forbidden", 403)
    if not 200 <= resp.status < 300:
        raise error_for(SERVICE, resp, now)
    obj = decode_json(SERVICE, resp)
    if not isinstance(obj, dict):
        raise BadResponse(SERVICE, "syncSessions answer is not an object", resp.status)
    results = obj.get("results", [])
    if not isinstance(results, list):
        raise BadResponse(SERVICE, "syncSessions results is not a list", resp.status)

    def count(key: str) -> int:
        v = obj.get(key, 0)
        return int(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else 0

    return SyncResult(count("synced"), count("matched"), count("unmatched"),
                      [r for r in results if isinstance(r, dict)])


# --- the poll loop's rules, as state ------------------------------------------------------


class DevicePoll:
    """When to poll next and whether to stop, for one device code (clock values in seconds, any origin)."""

    def __init__(self, code: DeviceCode, started: float) -> None:
        self.interval = max(code.interval, 1.0)
        self.deadline = started + code.expires_in

    def expired(self, now: float) -> bool:
        return now >= self.deadline

    def on_error(self, exc: DeviceFlowError) -> bool:
        """Apply a poll error; True to keep polling, False to stop (the caller raises it)."""
        if isinstance(exc, SlowDown):
            self.interval += SLOW_DOWN_STEP
            return True
        return isinstance(exc, AuthorizationPending)


def session_payload(row: dict[str, Any]) -> dict[str, Any]:
    """One queued session as syncSessions wants it: required fields always, optional ones only when known."""
    out: dict[str, Any] = {"romPath": row["rom_path"], "duration": int(row["duration"]),
                           "devicePlayedAt": int(row["played_at"])}
    for key, column in (("romName", "rom_name"), ("romHash", "rom_hash"), ("platformHint", "platform_hint")):
        if row.get(column):
            out[key] = row[column]
    return out


__all__ = ["AccessDenied", "AuthorizationPending", "DeviceCode", "DevicePoll", "ExpiredToken", "RequestRejected",
           "SlowDown", "SyncResult"]
