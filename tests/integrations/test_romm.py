"""RomM: client tokens, the password grant with single-use refresh, pages, by-hash, last played, and its errors."""

from __future__ import annotations

import pytest
from service_helpers import FakeTime, client
from servers import ROMM_CLIENT_TOKEN, Romm, Serving, make_rom

from tagd.integrations import romm
from tagd.integrations.accounts import Romm as Account
from tagd.integrations.http import AuthError, BadResponse, RequestRejected, Response, ServerError

SNES, GBA = (1, "snes", "Super Nintendo"), (2, "gba", "Game Boy Advance")


def library() -> Romm:
    return Romm([make_rom(i, SNES if i % 2 else GBA) for i in range(1, 1201)])


async def test_pages_through_the_library_with_cheap_pages_and_a_platform_filter():
    server = library()
    async with Serving(server.app()) as s:
        acct = Account(client("RomM", FakeTime()), s.url, {"access_token": ROMM_CLIENT_TOKEN})
        ids = [r.id async for page in acct.pages(limit=250) for r in page.items]
        snes = [r async for page in acct.pages(platform_ids=[1], limit=500) for r in page.items]
        await acct.http.aclose()
    assert ids == list(range(1, 1201))
    assert len(snes) == 600 and {r.platform_slug for r in snes} == {"snes"}
    first = server.requests[0]["query"]
    assert ("with_char_index", "false") in first and ("with_filter_values", "false") in first
    assert server.requests[0]["headers"]["Authorization"] == f"Bearer {ROMM_CLIENT_TOKEN}"


async def test_updated_after_asks_only_for_what_changed():
    server = Romm([make_rom(1), make_rom(2, updated="2026-06-01T00:00:00+00:00")])
    async with Serving(server.app()) as s:
        acct = Account(client("RomM", FakeTime()), s.url, {"access_token": ROMM_CLIENT_TOKEN})
        got = [r.id async for p in acct.pages(updated_after="2026-01-01T00:00:00+00:00") for r in p.items]
        await acct.http.aclose()
    assert got == [2]


async def test_by_hash_finds_a_rom_and_none_when_not_found_and_no_hash_is_a_value_error():
    server = Romm([make_rom(7, name="Chrono Trigger", md5="ab" * 16)])
    async with Serving(server.app()) as s:
        acct = Account(client("RomM", FakeTime()), s.url, {"access_token": ROMM_CLIENT_TOKEN})
        rom = await acct.by_hash(md5="ab" * 16)
        missing = await acct.by_hash(md5="cd" * 16)
        with pytest.raises(ValueError):
            await acct.by_hash()
        await acct.http.aclose()
    assert rom is not None and rom.title == "Chrono Trigger" and rom.platform_slug == "snes"
    assert missing is None


async def test_mark_played_sends_the_flag_in_the_query_and_the_body():
    server = Romm([make_rom(42)])
    async with Serving(server.app()) as s:
        acct = Account(client("RomM", FakeTime()), s.url, {"access_token": ROMM_CLIENT_TOKEN})
        await acct.mark_played(42)
        with pytest.raises(RequestRejected, match="Rom with id '999' not found"):
            await acct.mark_played(999)
        await acct.http.aclose()
    assert server.played == [42]
    put = server.requests[0]
    assert ("update_last_played", "true") in put["query"] and b'"update_last_played":true' in put["body"]


async def test_password_grant_then_a_single_use_refresh_saved_before_it_is_used():
    server = Romm([make_rom(1)])
    t = FakeTime()
    saved = []
    async with Serving(server.app()) as s:
        c = client("RomM", t)
        record = await Account.login(c, s.url, "ana", "s3cret-pass")
        acct = Account(c, s.url, record, saved.append)
        await acct.mark_played(1)
        t.now += 1800  # the access token is due: refreshed first
        await acct.mark_played(1)
        first_refresh = record["refresh_token"]
        assert saved and saved[-1]["refresh_token"] != first_refresh
        reuse = Account(c, s.url, {**record, "expires_at": 0}, saved.append)  # a spent refresh token
        with pytest.raises(AuthError, match="Could not validate credentials"):
            await reuse.mark_played(1)
        await c.aclose()
    assert server.played == [1, 1]


async def test_a_wrong_password_is_an_auth_error():
    server = Romm()
    async with Serving(server.app()) as s:
        c = client("RomM", FakeTime())
        with pytest.raises(AuthError, match="Invalid username or password"):
            await Account.login(c, s.url, "ana", "wrong")
        await c.aclose()


async def test_an_expired_jwt_gets_a_plain_text_500_which_means_log_in_again():
    server = Romm([make_rom(1)])
    async with Serving(server.app()) as s:
        acct = Account(client("RomM", FakeTime()), s.url, {"access_token": "eyJexpired.x.y", "expires_at": 9e12})
        with pytest.raises(AuthError, match="plain-text 500"):
            await acct.mark_played(1)
        await acct.http.aclose()


def test_a_plain_text_500_with_a_client_token_is_a_server_error():
    with pytest.raises(ServerError):
        romm.check(Response(500, {}, b"Internal Server Error"), 0, jwt=False)
    with pytest.raises(AuthError):
        romm.check(Response(500, {}, b"Internal Server Error"), 0, jwt=True)


@pytest.mark.parametrize("fault, kind", [(401, AuthError), (403, AuthError), (404, RequestRejected),
                                         (422, RequestRejected), ("malformed", BadResponse)])
async def test_documented_errors_are_typed(fault, kind):
    server = Romm([make_rom(1)])
    async with Serving(server.app()) as s:
        server.faults = [fault]
        acct = Account(client("RomM", FakeTime()), s.url, {"access_token": ROMM_CLIENT_TOKEN})
        with pytest.raises(kind):
            [p async for p in acct.pages()]
        await acct.http.aclose()


async def test_a_500_and_a_429_on_a_page_are_retried():
    server = Romm([make_rom(1)])
    t = FakeTime()
    async with Serving(server.app()) as s:
        server.faults = [500, 429]
        acct = Account(client("RomM", t), s.url, {"access_token": ROMM_CLIENT_TOKEN})
        pages = [p async for p in acct.pages()]
        await acct.http.aclose()
    assert [r.id for r in pages[0].items] == [1] and t.sleeps == [1.0, 7.0]


def test_page_arithmetic():
    page = romm.RomPage([romm.parse_rom(make_rom(i)) for i in range(1, 51)], 120, 50, 0)
    assert page.next_offset() == 50
    assert romm.RomPage(page.items[:20], 120, 50, 100).next_offset() is None
    assert romm.RomPage(page.items, None, 50, 0).next_offset() == 50  # with_total=false: go on while pages are full


async def test_the_catalog_syncs_incrementally_from_the_newest_updated_at(tmp_path):
    from tagd.integrations.catalog import CURSOR_KEY, sync_catalog
    from tagd.integrations.store import IntegrationStore

    server = Romm([make_rom(i, updated=f"2026-01-{i:02d}T00:00:00+00:00") for i in range(1, 21)])
    store = IntegrationStore(tmp_path / "tagd.db")
    async with Serving(server.app()) as s:
        acct = Account(client("RomM", FakeTime()), s.url, {"access_token": ROMM_CLIENT_TOKEN})
        assert await sync_catalog(acct, store) == 20
        assert await sync_catalog(acct, store) == 0  # nothing changed: one small request
        server.roms[5]["name"] = "Renamed"
        server.roms[5]["updated_at"] = "2026-02-01T00:00:00+00:00"
        assert await sync_catalog(acct, store) == 1
        await acct.http.aclose()
    assert store.rom_count() == 20 and store.roms("Renamed")[0]["id"] == 5
    assert store.get_state(CURSOR_KEY) == "2026-02-01T00:00:00+00:00"
    assert ("updated_after", "2026-01-20T00:00:00+00:00") in server.requests[1]["query"]
    store.close()
