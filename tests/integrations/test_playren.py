"""PlayRen partner API: games, details, sync status, the client-side token bucket, 429 Retry-After, errors as sent."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from service_helpers import FakeTime, client
from servers import PLAYREN_KEY, PlayRen, Serving, make_game

from tagd.integrations import playren
from tagd.integrations.accounts import PlayRen as Account
from tagd.integrations.http import AuthError, RateLimited, RequestRejected


def catalog() -> PlayRen:
    return PlayRen([make_game("garden-of-forking-paths", "The Garden of Forking Paths"),
                    make_game("nowhere-yet", "Nowhere Yet", cached=0)])


async def test_lists_games_and_fetches_details_with_cache_status():
    server = catalog()
    async with Serving(server.app()) as s:
        acct = Account(client("PlayRen", FakeTime()), s.url + "/api/partners", PLAYREN_KEY)
        games = await acct.games()
        game = await acct.game("garden-of-forking-paths")
        cold = await acct.game("nowhere-yet")
        status = await acct.sync_status("nowhere-yet")
        await acct.http.aclose()
    assert [g.slug for g in games] == ["garden-of-forking-paths", "nowhere-yet"]
    assert game.launcher == "garden-of-forking-paths.sh" and not game.cached_nowhere
    assert cold.cached_nowhere and status.cached_on == 0 and status.total_servers == 3


async def test_errors_are_surfaced_as_playren_sent_them():
    server = catalog()
    async with Serving(server.app()) as s:
        acct = Account(client("PlayRen", FakeTime()), s.url + "/api/partners", PLAYREN_KEY)
        with pytest.raises(RequestRejected) as info:
            await acct.game("no-such-game")
        bad = Account(client("PlayRen", FakeTime()), s.url + "/api/partners", "wrong-key")
        with pytest.raises(AuthError, match="Invalid API key"):
            await bad.games()
        server.faults = [403]
        with pytest.raises(RequestRejected) as forbidden:
            await acct.games()
        await acct.http.aclose()
        await bad.http.aclose()
    assert info.value.code == "not_found" and info.value.message == "Game with slug 'no-such-game' not found"
    assert forbidden.value.code == "forbidden"


async def test_the_bucket_keeps_a_burst_under_100_a_minute_so_the_server_never_says_429():
    server = catalog()
    t = FakeTime()
    server.clock = t.clock
    async with Serving(server.app()) as s:
        acct = Account(client("PlayRen", t), s.url + "/api/partners", PLAYREN_KEY)
        for _ in range(150):
            await acct.games()
        await acct.http.aclose()
    assert len(server.requests) == 150  # not one 429 (each would have been a second request)
    assert len(t.sleeps) == 140 and sum(t.sleeps) == pytest.approx(140 / 1.5)  # burst 10, then 90 a minute


async def test_a_429_is_retried_after_retry_after():
    server = catalog()
    t = FakeTime()
    async with Serving(server.app()) as s:
        server.faults = [429]
        acct = Account(client("PlayRen", t), s.url + "/api/partners", PLAYREN_KEY)
        await acct.games()
        server.faults = [429, 429, 429, 429]
        with pytest.raises(RateLimited):
            await acct.games()
        await acct.http.aclose()
    assert 7.0 in t.sleeps


def test_a_slug_with_a_path_in_it_is_refused_before_any_request():
    with pytest.raises(ValueError):
        playren.game_request("http://h", "k", "../admin")


def test_card_text_from_the_template():
    game = playren._game(make_game("garden-of-forking-paths", "The Garden"))
    assert game.card_text() == "GardenOfForkingPaths-1698234567/garden-of-forking-paths.sh"
    assert game.card_text("**launch.playren:{slug} {title} {nope}") == \
        "**launch.playren:garden-of-forking-paths The Garden {nope}"


@given(st.lists(st.floats(0, 10), max_size=300))
def test_the_bucket_never_allows_more_than_100_in_any_minute(gaps):
    bucket, now, sent = playren.TokenBucket(100, 60.0), 0.0, []
    for gap in gaps:
        now += gap
        now += bucket.take(now)
        sent.append(now)
    for i, t in enumerate(sent):
        assert sum(1 for u in sent[i:] if u - t < 60 - 1e-6) <= 100
