"""The pairing state machine against the independent client: the flow, the limits Core sets, the rate limit."""

from __future__ import annotations

import base64

import pytest

from tagd.daemon.api.pairing.gateway import FAIL_THRESHOLD, EncryptionGateway, Refused, UnsupportedVersion
from tagd.daemon.api.pairing.manager import MAX_CLIENTS, PairedClient, PairingError, PairingManager, RateLimit
from tagd.daemon.api.pairing.session import FrameError, first_frame
from zaparoo_client import EncryptedChannel, PairingClient


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


class Clients:
    def __init__(self) -> None:
        self.rows: list[PairedClient] = []

    def count_clients(self) -> int:
        return len(self.rows)

    def add_client(self, client: PairedClient) -> None:
        self.rows.append(client)

    def by_token(self, token: str):
        return next((c for c in self.rows if c.auth_token == token), None)


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def store():
    return Clients()


@pytest.fixture
def manager(store, clock):
    return PairingManager(store, clock)


def pair(manager: PairingManager, pin: str, name: str = "phone") -> PairingClient:
    client = PairingClient(pin, name)
    start = client.start_body()
    session, msg_b = manager.start(start["name"], base64.b64decode(start["pake"]))
    finish = client.finish_body({"session": session, "pake": base64.b64encode(msg_b).decode()})
    paired, server_mac = manager.finish(finish["session"], base64.b64decode(finish["confirm"]))
    client.complete({"authToken": paired.auth_token, "clientId": paired.client_id,
                     "confirm": base64.b64encode(server_mac).decode()})
    return client


def test_full_pairing_gives_both_sides_the_same_key_and_clears_the_pin(manager, store):
    pin, _ = manager.begin()
    client = pair(manager, pin)
    (stored,) = store.rows
    assert stored.pairing_key == client.pairing_key and len(client.pairing_key) == 32
    assert stored.auth_token == client.auth_token and stored.name == "phone" and stored.role == "admin"
    assert manager.pending() is None
    assert str(client.pairing_key) not in repr(stored)  # the key never shows in a log line


def test_second_client_is_a_member_by_default(manager, store):
    pair(manager, manager.begin()[0])
    pair(manager, manager.begin()[0])
    assert [c.role for c in store.rows] == ["admin", "member"]


def test_the_first_client_is_admin_even_when_asked_for_a_member_and_later_ones_get_what_is_asked(manager, store):
    pair(manager, manager.begin("member")[0])
    pair(manager, manager.begin("admin")[0])
    pair(manager, manager.begin("member")[0])
    assert [c.role for c in store.rows] == ["admin", "admin", "member"]


def test_pin_is_six_digits_and_lives_five_minutes(manager, clock):
    pin, expires = manager.begin()
    assert len(pin) == 6 and pin.isdigit() and expires - clock.t == 300
    clock.t += 301
    assert manager.pending() is None
    client = PairingClient(pin)
    with pytest.raises(PairingError) as err:
        manager.start("x", client.msg_a)
    assert err.value.status == 410


def test_wrong_pin_three_times_invalidates_the_pin(manager):
    pin, _ = manager.begin()
    wrong = "000000" if pin != "000000" else "111111"
    statuses = []
    for _ in range(3):
        client = PairingClient(wrong)
        session, msg_b = manager.start("x", client.msg_a)
        finish = client.finish_body({"session": session, "pake": base64.b64encode(msg_b).decode()})
        with pytest.raises(PairingError) as err:
            manager.finish(session, base64.b64decode(finish["confirm"]))
        statuses.append(err.value.status)
    assert statuses == [401, 401, 403]
    assert manager.pending() is None
    with pytest.raises(PairingError) as err:
        manager.start("x", PairingClient(pin).msg_a)  # even the right PIN is dead now
    assert err.value.status == 400


def test_a_start_session_lasts_two_minutes_and_is_used_once(manager, clock):
    pin, _ = manager.begin()
    client = PairingClient(pin)
    session, msg_b = manager.start("x", client.msg_a)
    finish = client.finish_body({"session": session, "pake": base64.b64encode(msg_b).decode()})
    clock.t += 121
    with pytest.raises(PairingError) as err:
        manager.finish(session, base64.b64decode(finish["confirm"]))
    assert err.value.status == 410
    with pytest.raises(PairingError) as err:
        manager.finish(session, base64.b64decode(finish["confirm"]))
    assert err.value.status == 404


@pytest.mark.parametrize("name,status", [("", 400), ("é" * 65, 400)])
def test_client_name_must_be_1_to_128_bytes(manager, name, status):
    pin, _ = manager.begin()
    with pytest.raises(PairingError, match="name") as err:
        manager.start(name, PairingClient(pin).msg_a)
    assert err.value.status == status


def test_a_bad_pake_message_is_400_and_no_pairing_open_is_400(manager):
    with pytest.raises(PairingError, match="no pairing"):
        manager.start("x", PairingClient("123456").msg_a)
    manager.begin()
    with pytest.raises(PairingError, match="invalid PAKE") as err:
        manager.start("x", b'{"role":0}')
    assert err.value.status == 400


def test_no_pin_when_fifty_clients_are_paired(store, manager):
    store.rows = [PairedClient(str(i), "c", str(i), b"k" * 32) for i in range(MAX_CLIENTS)]
    with pytest.raises(PairingError, match="maximum") as err:
        manager.begin()
    assert err.value.status == 403


def test_one_pin_at_a_time_and_cancel_ends_it(manager):
    manager.begin()
    with pytest.raises(PairingError, match="in progress"):
        manager.begin()
    manager.cancel()
    assert manager.pending() is None and manager.begin()


def test_rate_limit_is_one_per_second_per_ip(clock):
    limit = RateLimit(clock=clock)
    assert limit.allow("10.0.0.2") and not limit.allow("10.0.0.2") and limit.allow("10.0.0.3")
    clock.t += 1.0
    assert limit.allow("10.0.0.2")


# --- the encryption gateway -----------------------------------------------------------------------
@pytest.fixture
def paired(manager, store):
    return pair(manager, manager.begin()[0])


def test_gateway_opens_a_session_from_the_first_frame(store, clock, paired):
    gateway = EncryptionGateway(store.by_token, clock)
    channel = EncryptedChannel(paired.auth_token, paired.pairing_key)
    cipher, plain, client = gateway.establish(first_frame(channel.send({"id": 1})), "10.0.0.2")
    assert plain == b'{"id": 1}' and client.auth_token == paired.auth_token
    assert channel.receive(cipher.seal(b'{"ok": true}')) == {"ok": True}


def test_gateway_refuses_a_reused_salt_unknown_token_and_other_versions(store, clock, paired):
    gateway = EncryptionGateway(store.by_token, clock)
    frame = first_frame(EncryptedChannel(paired.auth_token, paired.pairing_key, b"s" * 16).send("x"))
    gateway.establish(frame, "10.0.0.2")
    with pytest.raises(Refused, match="salt"):
        gateway.establish(frame, "10.0.0.2")
    with pytest.raises(Refused, match="unknown"):
        gateway.establish(first_frame(EncryptedChannel("nobody", b"k" * 32).send("x")), "10.0.0.2")
    v2 = first_frame(EncryptedChannel(paired.auth_token, paired.pairing_key).send("x").replace('"v": 1', '"v": 2'))
    with pytest.raises(UnsupportedVersion):
        gateway.establish(v2, "10.0.0.2")


def test_ten_failed_first_frames_block_that_token_and_ip_for_30_seconds(store, clock, paired):
    gateway = EncryptionGateway(store.by_token, clock)
    for _ in range(FAIL_THRESHOLD):
        with pytest.raises(FrameError):
            gateway.establish(first_frame(EncryptedChannel(paired.auth_token, b"w" * 32).send("x")), "10.0.0.9")
    good = lambda: first_frame(EncryptedChannel(paired.auth_token, paired.pairing_key).send("x"))  # noqa: E731
    with pytest.raises(Refused, match="blocked"):
        gateway.establish(good(), "10.0.0.9")
    gateway.establish(good(), "10.0.0.8")  # another address is not blocked
    clock.t += 31
    gateway.establish(good(), "10.0.0.9")


def test_a_pairing_cancelled_while_its_pake_step_runs_does_not_complete(manager, store, monkeypatch):
    import tagd.daemon.api.pairing.manager as m

    pin, _ = manager.begin()
    real = m.Pake.message

    def cancelled_meanwhile(self):  # the admin's clients.pair.cancel lands during the slow arithmetic
        manager.cancel()
        return real(self)

    monkeypatch.setattr(m.Pake, "message", cancelled_meanwhile)
    with pytest.raises(PairingError, match="no pairing in progress"):
        pair(manager, pin)
    assert store.rows == [] and manager._sessions == {}


def test_sessions_left_unfinished_are_dropped_when_the_next_one_starts(manager, clock):
    pin, _ = manager.begin()
    for name in ("a", "b"):
        manager.start(name, PairingClient(pin, name).msg_a)
    assert len(manager._sessions) == 2
    clock.t += 121  # past SESSION_TTL, the PIN still alive (5 min)
    manager.start("c", PairingClient(pin, "c").msg_a)
    assert [s.name for s in manager._sessions.values()] == ["c"]
