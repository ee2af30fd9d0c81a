"""The services' logic over one :class:`ServiceClient`: device-code polling, RomM's token refresh, PlayRen's pacing.

Like gidgethub's ``abc``: everything here is decisions, the network is the client's (a test passes a client
over an in-process transport, a sleep that records instead of waiting, and a fake clock).
"""

from __future__ import annotations

import logging
from typing import Any, AsyncIterator, Callable, Iterable

from tagd.integrations import playren, retroshelf, romm
from tagd.integrations.client import ServiceClient
from tagd.integrations.http import AuthError, NetworkError, ServerError

log = logging.getLogger(__name__)


class Retroshelf:
    def __init__(self, http: ServiceClient, base: str, token: str = "", sync_client_id: str = "") -> None:
        self.http = http
        self.base = base
        self.token = token
        self.sync_client_id = sync_client_id

    async def device_code(self, client_id: str) -> retroshelf.DeviceCode:
        return await self.http.call(retroshelf.device_code_request(self.base, client_id), retroshelf.parse_device_code)

    async def wait_for_approval(self, client_id: str, code: retroshelf.DeviceCode,
                                on_poll: Callable[[float], None] | None = None) -> str:
        """Poll by RFC 8628's rules until the user approves (the access token) or the flow ends (its error).

        A network error or 5xx while polling is not the end: the code is still valid, so polling goes on."""
        poll = retroshelf.DevicePoll(code, self.http.clock())
        while True:
            await self.http.sleep(poll.interval)
            if poll.expired(self.http.clock()):
                raise retroshelf.ExpiredToken(retroshelf.SERVICE, retroshelf.POLL_MESSAGES["expired_token"],
                                              code="expired_token")
            if on_poll is not None:
                on_poll(poll.deadline - self.http.clock())
            try:
                return await self.http.call(retroshelf.token_request(self.base, client_id, code.device_code),
                                            retroshelf.parse_token, retries=0)
            except retroshelf.DeviceFlowError as exc:
                if not poll.on_error(exc):
                    raise
            except (NetworkError, ServerError) as exc:
                log.info("retroshelf: polling: %s (still polling)", exc.message)

    async def complete_link(self, token: str, device_name: str) -> str:
        self.token = token
        self.sync_client_id = await self.http.call(retroshelf.complete_link_request(self.base, token, device_name),
                                                   retroshelf.parse_complete_link, retries=2)
        return self.sync_client_id

    async def sync(self, sessions: Iterable[dict[str, Any]], retries: int = 0) -> retroshelf.SyncResult:
        return await self.http.call(retroshelf.sync_request(self.base, self.token, self.sync_client_id, sessions),
                                    retroshelf.parse_sync, retries=retries)


class Romm:
    """A RomM account: a client token, or password-grant tokens refreshed (single use) through ``save``."""

    REFRESH_MARGIN = 60.0

    def __init__(self, http: ServiceClient, base: str, record: dict[str, Any],
                 save: Callable[[dict[str, Any]], None] = lambda record: None) -> None:
        self.http = http
        self.base = base
        self.record = record
        self.save = save

    @property
    def jwt(self) -> bool:
        return not romm.is_client_token(str(self.record.get("access_token", "")))

    @classmethod
    async def login(cls, http: ServiceClient, base: str, username: str, password: str) -> dict[str, Any]:
        tokens = await http.call(romm.password_request(base, username, password), romm.parse_token, retries=0)
        return {"url": base, "username": username, **_token_fields(tokens)}

    async def _access_token(self, force: bool = False) -> str:
        token = str(self.record.get("access_token", ""))
        if not self.jwt:
            return token
        if force or self.http.clock() >= float(self.record.get("expires_at", 0)) - self.REFRESH_MARGIN:
            refresh = str(self.record.get("refresh_token", ""))
            if not refresh:
                raise AuthError(romm.SERVICE, f"the login expired; {romm.RELOGIN}")
            tokens = await self.http.call(romm.refresh_request(self.base, refresh), romm.parse_token, retries=0)
            self.record = {**self.record, **_token_fields(tokens)}
            self.save(self.record)  # on disk before use: the old refresh token is spent now
            token = tokens.access_token
        return token

    async def _call(self, build: Callable[[str], Any], parse: Callable[[bool], Any]) -> Any:
        token = await self._access_token()
        try:
            return await self.http.call(build(token), parse(self.jwt))
        except AuthError:
            if not (self.jwt and self.record.get("refresh_token")):
                raise
            token = await self._access_token(force=True)  # an access token revoked early: one fresh try
            return await self.http.call(build(token), parse(self.jwt))

    async def pages(self, *, platform_ids: Iterable[int] = (), updated_after: str = "", search: str = "",
                    limit: int = romm.PAGE_LIMIT) -> AsyncIterator[romm.RomPage]:
        offset: int | None = 0
        ids = list(platform_ids)
        while offset is not None:
            start = offset
            page = await self._call(lambda t: romm.roms_request(self.base, t, limit=limit, offset=start,
                                                                 platform_ids=ids, updated_after=updated_after,
                                                                 search=search), romm.parse_roms_page)
            yield page
            offset = page.next_offset()

    async def by_hash(self, **hashes: str) -> romm.Rom | None:
        return await self._call(lambda t: romm.by_hash_request(self.base, t, **hashes), romm.parse_by_hash)

    async def mark_played(self, rom_id: int) -> None:
        await self._call(lambda t: romm.last_played_request(self.base, t, rom_id), romm.parse_ok)

    async def platforms(self) -> list[romm.Platform]:
        return await self._call(lambda t: romm.platforms_request(self.base, t), romm.parse_platforms)


def _token_fields(tokens: romm.TokenSet) -> dict[str, Any]:
    return {"access_token": tokens.access_token, "refresh_token": tokens.refresh_token,
            "expires_at": tokens.expires_at, "refresh_expires_at": tokens.refresh_expires_at}


class PlayRen:
    """A partner key; every attempt (retries too) first takes a token from the 100/min bucket."""

    def __init__(self, http: ServiceClient, base: str, key: str) -> None:
        self.http = http
        self.base = base
        self.key = key
        self.bucket = playren.TokenBucket(now=http.clock())
        http.pace = self._pace

    async def _pace(self) -> None:
        wait = self.bucket.take(self.http.clock())
        if wait > 0:
            await self.http.sleep(wait)

    async def games(self) -> list[playren.Game]:
        return await self.http.call(playren.games_request(self.base, self.key), playren.parse_games)

    async def game(self, slug: str) -> playren.Game:
        return await self.http.call(playren.game_request(self.base, self.key, slug), playren.parse_game)

    async def sync_status(self, slug: str) -> playren.SyncStatus:
        return await self.http.call(playren.sync_status_request(self.base, self.key, slug), playren.parse_sync_status)
