"""RomM (seeds/003, SPEC §6): login, ROM pages, lookup by hash, last played — sans-I/O builders and parsers.

Two ways in. A client API token (``rmm_…``, RomM ≥ 4.8) is sent as Bearer and is what a daemon should use.
The OAuth2 password grant (``POST /api/token``, form fields) gives a 30-minute access token and a refresh token
that is **single use** from 4.8: the caller must store the new pair before using it (a crash between the two
would otherwise leave only a spent refresh token).

"Log in again" has three faces (SPEC §6): 401, 403 (a missing scope, or an older RomM's answer to a missing
login), and — for JWTs only — a plain-text 500, which is what an expired or malformed non-``rmm_`` token gets
every time. All three are :class:`AuthError`; a plain-text 500 with a client token stays a ServerError.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from tagd.integrations.http import AuthError, BadResponse, Request, Response, build, decipher, error_message

SERVICE = "RomM"
PAGE_LIMIT = 500
SCOPES = ("roms.read", "roms.user.read", "roms.user.write", "platforms.read", "me.read")
CHEAP = {"with_char_index": "false", "with_filter_values": "false", "with_rom_id_index": "false"}


def is_client_token(token: str) -> bool:
    return token.startswith("rmm_")


@dataclass(frozen=True)
class TokenSet:
    access_token: str
    refresh_token: str
    expires_at: float  # unix time
    refresh_expires_at: float

    def __repr__(self) -> str:
        return f"<TokenSet expires_at={self.expires_at:.0f}>"


@dataclass(frozen=True)
class Rom:
    id: int
    name: str
    fs_name: str
    platform_id: int
    platform_slug: str
    platform_name: str = ""
    fs_name_no_ext: str = ""
    crc_hash: str = ""
    md5_hash: str = ""
    sha1_hash: str = ""
    updated_at: str = ""
    cover_url: str = ""
    last_played: str = ""

    @property
    def title(self) -> str:
        return self.name or self.fs_name_no_ext or self.fs_name


@dataclass(frozen=True)
class RomPage:
    items: list[Rom]
    total: int | None
    limit: int
    offset: int

    def next_offset(self) -> int | None:
        """Where the next page starts, or None when this was the last one."""
        end = self.offset + len(self.items)
        if len(self.items) < self.limit or (self.total is not None and end >= self.total) or not self.items:
            return None
        return end


@dataclass(frozen=True)
class Platform:
    id: int
    slug: str
    fs_slug: str = ""
    name: str = ""


# --- auth ----------------------------------------------------------------------------


def password_request(base: str, username: str, password: str, scopes: Iterable[str] = SCOPES) -> Request:
    return build("POST", base, "/api/token", form={"grant_type": "password", "username": username,
                                                    "password": password, "scope": " ".join(scopes)})


def refresh_request(base: str, refresh_token: str) -> Request:
    return build("POST", base, "/api/token", form={"grant_type": "refresh_token", "refresh_token": refresh_token})


def parse_token(resp: Response, now: float) -> TokenSet:
    obj = check(resp, now, jwt=False)
    if not isinstance(obj, dict) or not isinstance(obj.get("access_token"), str):
        raise BadResponse(SERVICE, "token answer has no access_token", resp.status)
    expires = obj.get("expires", 1800)
    refresh_expires = obj.get("refresh_expires", 7 * 86400)
    return TokenSet(obj["access_token"], str(obj.get("refresh_token") or ""),
                    now + float(expires if isinstance(expires, (int, float)) else 1800),
                    now + float(refresh_expires if isinstance(refresh_expires, (int, float)) else 7 * 86400))


# --- errors ----------------------------------------------------------------------------


RELOGIN = "log in again: tagd link romm"


def check(resp: Response, now: float, jwt: bool) -> Any:
    """decipher() with RomM's ways of saying "log in again" (module docstring)."""
    if resp.status == 401:
        raise AuthError(SERVICE, f"{error_message(resp)[1] or 'not authenticated'}; {RELOGIN}", 401)
    if resp.status == 403:
        raise AuthError(SERVICE, f"forbidden: the token lacks a scope ({', '.join(SCOPES)}) or the login "
                                 f"expired; {RELOGIN}", 403)
    if resp.status == 500 and jwt and not resp.body.lstrip().startswith((b"{", b"[")):
        raise AuthError(SERVICE, f"the login token expired (RomM answers a plain-text 500); {RELOGIN}", 500)
    return decipher(SERVICE, resp, now)


# --- ROMs ----------------------------------------------------------------------------------


def roms_request(base: str, token: str, *, limit: int = PAGE_LIMIT, offset: int = 0,
                 platform_ids: Iterable[int] = (), updated_after: str = "", search: str = "") -> Request:
    query: list[tuple[str, Any]] = [("limit", max(1, min(int(limit), 10000))), ("offset", max(0, int(offset))),
                                    ("order_by", "id"), ("order_dir", "asc"), *CHEAP.items()]
    query += [("platform_ids", int(p)) for p in platform_ids]
    if updated_after:
        query.append(("updated_after", updated_after))
    if search:
        query.append(("search_term", search))
    return build("GET", base, "/api/roms", token=token, query=query)


def by_hash_request(base: str, token: str, *, crc: str = "", md5: str = "", sha1: str = "") -> Request:
    query = {k: v for k, v in (("crc_hash", crc), ("md5_hash", md5), ("sha1_hash", sha1)) if v}
    if not query:
        raise ValueError("by-hash needs at least one of crc, md5, sha1")
    return build("GET", base, "/api/roms/by-hash", token=token, query=query)


def last_played_request(base: str, token: str, rom_id: int) -> Request:
    # RomM ≥ 4.9 reads the flag from the query; 4.8 and older from the body: send both (SPEC §6)
    return build("PUT", base, f"/api/roms/{int(rom_id)}/props", token=token, query={"update_last_played": "true"},
                 json={"data": {}, "update_last_played": True})


def platforms_request(base: str, token: str) -> Request:
    return build("GET", base, "/api/platforms", token=token)


def _str(obj: Mapping[str, Any], key: str) -> str:
    value = obj.get(key)
    return value if isinstance(value, str) else ""


def parse_rom(obj: Any) -> Rom:
    if not isinstance(obj, dict) or isinstance(obj.get("id"), bool) or not isinstance(obj.get("id"), int):
        raise BadResponse(SERVICE, "a ROM without an id")
    user = obj.get("rom_user") if isinstance(obj.get("rom_user"), dict) else {}
    pid = obj.get("platform_id")
    return Rom(id=obj["id"], name=_str(obj, "name"), fs_name=_str(obj, "fs_name"),
               platform_id=pid if isinstance(pid, int) else 0,
               platform_slug=_str(obj, "platform_slug") or _str(obj, "platform_fs_slug"),
               platform_name=_str(obj, "platform_display_name") or _str(obj, "platform_name"),
               fs_name_no_ext=_str(obj, "fs_name_no_ext"), crc_hash=_str(obj, "crc_hash"),
               md5_hash=_str(obj, "md5_hash"), sha1_hash=_str(obj, "sha1_hash"), updated_at=_str(obj, "updated_at"),
               cover_url=_str(obj, "path_cover_large") or _str(obj, "url_cover"),
               last_played=_str(user, "last_played"))


def parse_roms_page(jwt: bool) -> Any:
    def parse(resp: Response, now: float) -> RomPage:
        obj = check(resp, now, jwt)
        if not isinstance(obj, dict) or not isinstance(obj.get("items"), list):
            raise BadResponse(SERVICE, "a ROM page without items", resp.status)
        total, limit, offset = (v if isinstance(v, int) and not isinstance(v, bool) else None
                                for v in (obj.get("total"), obj.get("limit"), obj.get("offset")))
        return RomPage([parse_rom(i) for i in obj["items"]], total, limit or len(obj["items"]) or 1, offset or 0)
    return parse


def parse_by_hash(jwt: bool) -> Any:
    def parse(resp: Response, now: float) -> Rom | None:
        if resp.status == 404:
            return None
        return parse_rom(check(resp, now, jwt))
    return parse


def parse_ok(jwt: bool) -> Any:
    def parse(resp: Response, now: float) -> Any:
        return check(resp, now, jwt)
    return parse


def parse_platforms(jwt: bool) -> Any:
    def parse(resp: Response, now: float) -> list[Platform]:
        obj = check(resp, now, jwt)
        if not isinstance(obj, list):
            raise BadResponse(SERVICE, "platforms answer is not a list", resp.status)
        return [Platform(p["id"], _str(p, "slug"), _str(p, "fs_slug"), _str(p, "display_name") or _str(p, "name"))
                for p in obj if isinstance(p, dict) and isinstance(p.get("id"), int)]
    return parse


__all__ = ["AuthError", "Platform", "Rom", "RomPage", "TokenSet"]
