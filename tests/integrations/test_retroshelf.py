"""retroshelf: the device-code flow by RFC 8628's rules, completeLink, syncSessions and its errors."""

from __future__ import annotations

import pytest
from service_helpers import FakeTime, client
from servers import RETROSHELF_CLIENT, Retroshelf, Serving

from tagd.integrations import retroshelf
from tagd.integrations.accounts import Retroshelf as Account
from tagd.integrations.http import AuthError, BadResponse, RequestRejected, Response


async def link(server: Retroshelf, t: FakeTime) -> tuple[str, str]:
    async with Serving(server.app()) as s:
        acct = Account(client("retroshelf", t), s.url)
        code = await acct.device_code(RETROSHELF_CLIENT)
        try:
            token = await acct.wait_for_approval(RETROSHELF_CLIENT, code)
            return token, await acct.complete_link(token, "tagd test")
        finally:
            await acct.http.aclose()


async def test_pending_keeps_polling_at_the_interval_and_slow_down_adds_five_seconds_for_good():
    server, t = Retroshelf(), FakeTime()
    server.poll_script = ["authorization_pending", "slow_down", "authorization_pending", "slow_down"]
    token, sync_id = await link(server, t)
    assert token == server.access_token and sync_id == server.sync_client_id
    assert t.sleeps == [5, 5, 10, 10, 15]


async def test_errors_in_a_detail_field_are_understood_too():
    server, t = Retroshelf(), FakeTime()
    server.poll_shape = "detail"
    server.poll_script = ["slow_down"]
    await link(server, t)
    assert t.sleeps == [5, 10]


@pytest.mark.parametrize("error, kind", [("access_denied", retroshelf.AccessDenied),
                                         ("expired_token", retroshelf.ExpiredToken)])
async def test_access_denied_and_expired_token_stop_with_a_clear_message(error, kind):
    server = Retroshelf()
    server.poll_script = ["authorization_pending", error]
    with pytest.raises(kind) as info:
        await link(server, FakeTime())
    assert "tagd link retroshelf again" in str(info.value)
    assert server.paths().count("/api/auth/device/token") == 2


async def test_the_code_expiring_while_pending_stops_polling():
    server = Retroshelf()
    server.poll_script = ["authorization_pending"] * 1000
    with pytest.raises(retroshelf.ExpiredToken):
        await link(server, FakeTime())
    assert server.paths().count("/api/auth/device/token") == 1800 // 5 - 1


async def test_a_5xx_while_polling_does_not_end_the_flow():
    server = Retroshelf()
    server.faults = [None, 500, "malformed"]  # device code ok, then a 500 and garbage while polling
    with pytest.raises(BadResponse):
        await link(server, FakeTime())
    server = Retroshelf()
    server.faults = [None, 500, 503]
    token, _ = await link(server, FakeTime())
    assert token == server.access_token


async def test_an_unknown_client_id_is_refused():
    server = Retroshelf()
    async with Serving(server.app()) as s:
        acct = Account(client("retroshelf", FakeTime()), s.url)
        with pytest.raises(RequestRejected, match="invalid_client"):
            await acct.device_code("rs_nobody")
        await acct.http.aclose()


async def test_sync_sends_sessions_and_keeps_results_and_the_server_dedupes_a_resend():
    server = Retroshelf()
    async with Serving(server.app()) as s:
        acct = Account(client("retroshelf", FakeTime()), s.url, server.access_token, server.sync_client_id)
        batch = [{"romPath": "Roms/SFC/Chrono Trigger.sfc", "romName": "Chrono Trigger", "duration": 5400,
                  "devicePlayedAt": 1781229600, "platformHint": "snes"}]
        first = await acct.sync(batch)
        again = await acct.sync(batch)
        await acct.http.aclose()
    assert first.synced == 1 and first.matched == 1 and first.results[0]["gameName"] == "Chrono Trigger"
    assert again.synced == 1 and len(server.sessions) == 1


@pytest.mark.parametrize("fault, kind", [(401, AuthError), (403, AuthError), (422, RequestRejected)])
async def test_sync_errors_are_typed(fault, kind):
    server = Retroshelf()
    async with Serving(server.app()) as s:
        server.faults = [fault]
        acct = Account(client("retroshelf", FakeTime()), s.url, server.access_token, server.sync_client_id)
        with pytest.raises(kind):
            await acct.sync([{"romPath": "a", "duration": 60, "devicePlayedAt": 1}])
        await acct.http.aclose()


def test_the_payload_leaves_out_unknown_optional_fields():
    row = {"rom_path": "/games/x.sfc", "duration": 61.7, "played_at": 1781229600, "rom_name": "", "rom_hash": None,
           "platform_hint": "snes"}
    assert retroshelf.session_payload(row) == {"romPath": "/games/x.sfc", "duration": 61, "devicePlayedAt": 1781229600,
                                               "platformHint": "snes"}


def test_a_device_code_answer_without_a_user_code_is_a_bad_response():
    with pytest.raises(BadResponse, match="user_code"):
        retroshelf.parse_device_code(Response(200, {}, b'{"device_code": "x", "verification_uri": "u"}'), 0)
