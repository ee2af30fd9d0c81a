"""PAKE2 on P-256 as schollz/pake v3: known answers from Core and the App, agreement, and refusals."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, strategies as st

from tagd.daemon.api.pairing.pake import CLIENT, SERVER, U, V, Pake, PakeError, PakeMessage, on_curve
from zaparoo_client import PairingClient

# Core's pake_kat_test.go: the spec's example message A, verbatim
SPEC_EXAMPLE = b"""{
  "role": 0,
  "ux": "793136080485469241208656611513609866400481671852",
  "uy": "59748757929350367369315811184980635230185250460108398961713395032485227207304",
  "vx": "1086685267857089638167386722555472967068468061489",
  "vy": "9157340230202296554417312816309453883742349874205386245733062928888341584123",
  "xx": "48439561293906451759052585252797914202762949526041747995844080717082404635286",
  "xy": "36134250956749795798585127919587881956611106672985015071877198253568414405109",
  "yx": "0",
  "yy": "0"
}"""


def test_spec_example_round_trips_exactly_with_string_coordinates():
    encoded = PakeMessage.decode(SPEC_EXAMPLE).encode()
    assert json.loads(encoded) == json.loads(SPEC_EXAMPLE)
    assert all(isinstance(v, str) for k, v in json.loads(encoded).items() if k != "role")


def test_spec_example_x_is_a_curve_point_and_the_server_answers_it():
    server = Pake("123456", SERVER)
    server.update(SPEC_EXAMPLE)
    reply = json.loads(server.message())
    assert reply["role"] == 1 and reply["xx"] == "48439561293906451759052585252797914202762949526041747995844080717082404635286"
    assert on_curve((int(reply["yx"]), int(reply["yy"]))) and len(server.session_key) == 32


def test_fixed_points_are_schollz_pake_p256_constants_and_on_the_curve():
    assert U[0] == 793136080485469241208656611513609866400481671852 and on_curve(U) and on_curve(V)


def test_client_message_matches_the_zaparoo_apps_golden_value_for_pin_123456_alpha_42():
    msg = json.loads(Pake("123456", CLIENT, secret=42).message())
    assert msg["xx"] == "83498509005245465819322201009119001868389827660965897708978743717998135289327"
    assert msg["xy"] == "41379864250107820918826313680313454691537935235393631370474724158168248276403"
    assert (msg["yx"], msg["yy"], msg["role"]) == ("0", "0", 0)


def test_message_fields_are_in_gos_order_and_compact():
    assert Pake("1", CLIENT, secret=1).message().startswith(b'{"ux":"7931360804854692412086566115136098664004816718')
    assert list(json.loads(Pake("1", CLIENT, secret=1).message())) == ["ux", "uy", "vx", "vy", "xx", "xy", "yx", "yy", "role"]


def test_the_independent_client_and_the_server_agree_on_the_key():
    client = PairingClient("246810", alpha=7)
    server = Pake("246810", SERVER, secret=11)
    server.update(client.msg_a)
    # the key the independent client derives feeds its confirmation; recompute it with tagd's client role
    ours = Pake("246810", CLIENT, secret=7)
    assert json.loads(ours.message()) == json.loads(client.msg_a)
    ours.update(server.message())
    assert ours.session_key == server.session_key


def test_different_pins_give_different_keys():
    client, server = Pake("111111", CLIENT), Pake("111112", SERVER)
    server.update(client.message())
    client.update(server.message())
    assert client.session_key != server.session_key


@pytest.mark.parametrize("field,value", [("xx", "1"), ("xy", "1"), ("xx", "0")])
def test_server_refuses_an_x_that_is_not_on_the_curve(field, value):
    msg = json.loads(Pake("123456", CLIENT).message())
    msg[field] = value
    with pytest.raises(PakeError, match="not a point"):
        Pake("123456", SERVER).update(json.dumps(msg).encode())


def test_client_refuses_a_y_off_the_curve_and_a_message_of_its_own_role():
    bad = dict(json.loads(Pake("1", CLIENT).message()), role=1, yx="1", yy="1")
    with pytest.raises(PakeError, match="not a point"):
        Pake("1", CLIENT).update(json.dumps(bad).encode())
    with pytest.raises(PakeError, match="own role"):
        Pake("1", CLIENT).update(Pake("1", CLIENT).message())


@pytest.mark.parametrize("body,why", [
    (b"nope", "not JSON"), (b"[]", "not a JSON object"), (b'{"role": 2}', "role"),
    (b'{"role": 0, "ux": 1}', "'ux'"), (b'{"role": 0, "ux": "-1"}', "'ux'"), (b'{"role": 0, "ux": ""}', "'ux'"),
    (b"{" + b" " * 3000 + b"}", "over 2048"),
])
def test_malformed_messages_are_named(body, why):
    with pytest.raises(PakeError, match=why):
        PakeMessage.decode(body)


@given(st.binary(max_size=600) | st.text(max_size=300).map(str.encode))
def test_server_update_never_raises_anything_but_pake_error(data):
    try:
        Pake("123456", SERVER).update(data)
    except PakeError:
        pass
