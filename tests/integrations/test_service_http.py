"""The shared sans-I/O layer: error typing, Retry-After, backoff, and the client's retry policy."""

from __future__ import annotations

import email.utils

import pytest
from hypothesis import given
from hypothesis import strategies as st
from service_helpers import FakeTime, client
from servers import Retroshelf, Serving

from tagd.integrations import http
from tagd.integrations.http import (AuthError, BadResponse, NetworkError, RateLimited, RequestRejected, Response,
                                    ServerError)


def resp(status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> Response:
    return Response(status, headers or {}, body)


@pytest.mark.parametrize("status, kind, transient", [
    (401, AuthError, False), (403, RequestRejected, False), (404, RequestRejected, False),
    (422, RequestRejected, False), (429, RateLimited, True), (500, ServerError, True), (503, ServerError, True)])
def test_each_status_maps_to_its_error_type(status, kind, transient):
    with pytest.raises(kind) as info:
        http.decipher("svc", resp(status, b'{"detail": "nope"}'), 0.0)
    assert info.value.transient is transient
    assert info.value.status == status
    assert "nope" in str(info.value)


def test_playren_style_errors_keep_their_code_and_message():
    with pytest.raises(RequestRejected) as info:
        http.decipher("PlayRen", resp(404, b'{"error": "not_found", "message": "Game with slug \'x\' not found"}'), 0)
    assert info.value.code == "not_found"
    assert info.value.message == "Game with slug 'x' not found"


def test_fastapi_validation_lists_are_summarised():
    body = b'{"detail": [{"loc": ["query", "limit"], "msg": "out of range", "type": "x"}]}'
    with pytest.raises(RequestRejected, match="query.limit: out of range"):
        http.decipher("RomM", resp(422, body), 0)


def test_malformed_json_in_a_200_is_a_bad_response():
    with pytest.raises(BadResponse, match="not JSON"):
        http.decipher("svc", resp(200, b'{"items": ['), 0)


def test_retry_after_as_seconds_and_as_http_date():
    assert http.parse_retry_after("30", 0) == 30
    date = email.utils.formatdate(1000 + 45, usegmt=True)
    assert http.parse_retry_after(date, 1000) == pytest.approx(45)
    assert http.parse_retry_after("soon", 0) is None
    err = http.error_for("svc", resp(429, b"{}", {"retry-after": "12"}), 0)
    assert isinstance(err, RateLimited) and err.retry_after == 12


def test_backoff_doubles_up_to_the_cap():
    gen = http.backoff(1, 2, 10)
    assert [next(gen) for _ in range(6)] == [1, 2, 4, 8, 10, 10]


def test_a_request_repr_never_shows_its_headers():
    req = http.build("GET", "http://h", "/x", token="sekrit-token")
    assert "sekrit" not in repr(req) and req.headers["Authorization"] == "Bearer sekrit-token"


def test_repeated_query_keys_stay_repeated():
    req = http.build("GET", "http://h", "/api/roms", query=[("platform_ids", 1), ("platform_ids", 2)])
    assert req.url.endswith("?platform_ids=1&platform_ids=2")


@given(st.integers(100, 599), st.binary(max_size=200), st.dictionaries(st.sampled_from(["retry-after"]), st.text()))
def test_decipher_never_fails_with_anything_but_its_own_errors(status, body, headers):
    try:
        http.decipher("svc", Response(status, headers, body), 0.0)
    except http.ServiceError:
        pass


# --- the client's retry policy, against a loopback server ---------------------------------------------------


async def test_idempotent_calls_are_retried_after_5xx_and_429_honouring_retry_after():
    server = Retroshelf()
    t = FakeTime()
    async with Serving(server.app()) as s:
        server.faults = [500, 429]
        c = client("retroshelf", t)
        req = http.build("POST", s.url, "/api/auth/device/code", json={"client_id": "rs_test_client"},
                         idempotent=True)
        out = await c.call(req, lambda r, now: http.decipher("retroshelf", r, now))
        await c.aclose()
    assert out["user_code"] == "483921"
    assert t.sleeps == [1.0, 7.0]  # backoff, then the server's Retry-After


async def test_a_non_idempotent_call_is_never_sent_twice():
    server = Retroshelf()
    async with Serving(server.app()) as s:
        server.faults = [503]
        c = client("retroshelf", FakeTime())
        req = http.build("POST", s.url, "/api/auth/device/code", json={"client_id": "rs_test_client"})
        with pytest.raises(ServerError):
            await c.call(req, lambda r, now: http.decipher("retroshelf", r, now))
        await c.aclose()
    assert len(server.requests) == 1


async def test_a_server_that_hangs_is_a_network_error_after_the_timeout():
    server = Retroshelf()
    async with Serving(server.app()) as s:
        server.faults = ["hang"]
        c = client("retroshelf", FakeTime(), timeout=0.3)
        with pytest.raises(NetworkError, match="no answer .* within 0.3 s"):
            await c.call(http.build("GET", s.url, "/x"), lambda r, now: None, retries=0)
        await c.aclose()
        server.release()


async def test_a_reset_connection_and_a_refused_port_are_network_errors():
    server = Retroshelf()
    async with Serving(server.app()) as s:
        server.faults = ["reset"]
        c = client("retroshelf", FakeTime())
        with pytest.raises(NetworkError):
            await c.call(http.build("GET", s.url, "/x"), lambda r, now: None, retries=0)
        url = s.url
    with pytest.raises(NetworkError, match="cannot reach http://127.0.0.1"):
        await c.call(http.build("GET", url, "/x"), lambda r, now: None, retries=0)
    await c.aclose()


async def test_transient_errors_give_up_after_the_retries():
    server = Retroshelf()
    t = FakeTime()
    async with Serving(server.app()) as s:
        server.faults = [500, 500, 500]
        c = client("retroshelf", t, retries=2)
        with pytest.raises(ServerError):
            await c.call(http.build("GET", s.url, "/x"), lambda r, now: http.decipher("x", r, now))
        await c.aclose()
    assert len(server.requests) == 3 and t.sleeps == [1.0, 2.0]


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
                        st.sampled_from(["items", "total", "limit", "offset", "id", "name", "games", "slug",
                                         "access_token", "error", "detail", "results", "syncClientId", "device_code",
                                         "user_code", "verification_uri", "interval", "expires_in", "cacheStatus",
                                         "platform_id", "rom_user", "tags", "expires"]), inner, max_size=8),
                    max_leaves=20)


def _parsers():
    from tagd.integrations import playren, retroshelf, romm

    return [retroshelf.parse_device_code, retroshelf.parse_token, retroshelf.parse_complete_link,
            retroshelf.parse_sync, romm.parse_token, romm.parse_roms_page(True), romm.parse_by_hash(False),
            romm.parse_platforms(True), playren.parse_games, playren.parse_game, playren.parse_sync_status]


@given(st.sampled_from(range(11)), st.sampled_from([200, 201, 400, 401, 403, 404, 422, 429, 500]), JSON)
def test_every_parser_answers_any_json_with_data_or_its_own_errors(which, status, body):
    import json as json_

    parse = _parsers()[which]
    try:
        parse(Response(status, {}, json_.dumps(body).encode()), 0.0)
    except http.ServiceError:
        pass


def test_hostile_answers_are_named_errors_and_retry_after_is_capped() -> None:
    from tagd.integrations import http

    assert http.parse_retry_after("9" * 400, 0.0) == http.MAX_RETRY_AFTER
    assert http.error_message(http.Response(500, {}, b"[" * 100_000))[1].startswith("[[")
    with pytest.raises(http.BadResponse, match="not JSON"):
        http.decode_json("romm", http.Response(200, {}, b"[" * 100_000))
    weird = http.Response(422, {}, b'{"detail": [{"loc": 5, "msg": "bad"}]}')
    assert http.error_message(weird) == ("", "5: bad")
