"""The admission policy alone (no sockets): who gets a slot when the server is full."""

from __future__ import annotations

from hypothesis import given, strategies as st

from tagd.web.admission import Admission, loopback_address


def local(peer: str) -> bool:
    return peer == "local"


def test_a_full_server_pushes_out_the_longest_waiting_stranger_first() -> None:
    a = Admission(3, local, reserved=0)
    assert a.arrive("l1", "local", 0).admit
    assert a.arrive("s1", "10.0.0.1", 1).admit
    assert a.arrive("s2", "10.0.0.2", 2).admit
    verdict = a.arrive("l2", "local", 3)
    assert verdict.admit and verdict.evict == "s1"


def test_busy_connections_are_never_pushed_out() -> None:
    a = Admission(2, local, reserved=0)
    for key in ("a", "b"):
        a.arrive(key, "local", 0)
        a.busy(key, True, 0)
    verdict = a.arrive("c", "local", 1)
    assert not verdict.admit and verdict.reason == "too many connections"


def test_a_stranger_cannot_push_out_this_machines_clients() -> None:
    a = Admission(2, local, reserved=0)
    a.arrive("a", "local", 0)
    a.arrive("b", "local", 0)
    assert not a.arrive("s", "10.0.0.1", 1).admit


def test_loopback_addresses() -> None:
    assert loopback_address("127.0.0.5") and loopback_address("::1") and loopback_address("::ffff:127.0.0.1")
    assert not loopback_address("192.168.1.2") and not loopback_address("") and not loopback_address("x")


ops = st.lists(st.tuples(st.sampled_from(["arrive", "busy", "idle", "leave"]), st.integers(0, 30),
                         st.sampled_from(["local", "10.0.0.1", "10.0.0.2", "10.0.0.3"])), max_size=200)


@given(ops)
def test_limits_hold_for_any_sequence_of_arrivals_and_departures(sequence) -> None:
    a = Admission(10, local, per_ip=4, reserved=3)
    busy: set[int] = set()
    peers: dict[int, str] = {}
    for t, (op, key, peer) in enumerate(sequence):
        if op == "arrive" and key not in peers:
            verdict = a.arrive(key, peer, t)
            if verdict.admit:
                assert verdict.evict not in busy
                if verdict.evict is not None:
                    peers.pop(verdict.evict)
                peers[key] = peer
        elif op in ("busy", "idle") and key in peers:
            a.busy(key, op == "busy", t)
            (busy.add if op == "busy" else busy.discard)(key)
        elif op == "leave" and key in peers:
            a.leave(key)
            peers.pop(key)
            busy.discard(key)
        busy &= set(peers)
        strangers = [p for p in peers.values() if p != "local"]
        assert len(a) == len(peers) <= 10
        assert len(strangers) <= 10 - 3
        assert all(strangers.count(p) <= 4 for p in set(strangers))
