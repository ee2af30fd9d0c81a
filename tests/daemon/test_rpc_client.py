"""The sans-I/O JSON-RPC client half: requests out, replies matched to pending ids, never a crash on what comes back."""

from __future__ import annotations

import asyncio
import itertools
import json
from typing import Any

import pytest
from hypothesis import given, strategies as st

from tagd.daemon.api.jsonrpc import Dispatcher, RpcError
from tagd.daemon.api.rpc_client import ErrorReply, Notification, Result, RpcClient
from tagd.web.server import json_text


def counting_client() -> RpcClient:
    ids = itertools.count(1)
    return RpcClient(new_id=lambda: f"r{next(ids)}")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


def test_request_text_is_a_jsonrpc_request_with_the_id_it_returns() -> None:
    client = counting_client()
    req_id, text = client.request("run", {"text": "**launch.system:snes"})
    assert json.loads(text) == {"jsonrpc": "2.0", "id": req_id, "method": "run",
                                "params": {"text": "**launch.system:snes"}}
    assert client.pending == {req_id}


def test_a_request_without_params_sends_none() -> None:
    _, text = counting_client().request("stop")
    assert "params" not in json.loads(text)


def test_result_matches_the_pending_id_once() -> None:
    client = counting_client()
    req_id, _ = client.request("version")
    answer = json.dumps({"jsonrpc": "2.0", "id": req_id, "result": {"version": "2.6"}})
    assert client.receive(answer) == Result(req_id, {"version": "2.6"})
    assert client.receive(answer) is None  # a duplicate answer is not matched twice
    assert client.pending == set()


def test_error_carries_code_message_and_data() -> None:
    client = counting_client()
    req_id, _ = client.request("media.search")
    answer = {"jsonrpc": "2.0", "id": req_id, "error": {"code": -32602, "message": "bad", "data": [1]}}
    assert client.receive(json.dumps(answer)) == ErrorReply(req_id, -32602, "bad", [1])


@pytest.mark.parametrize("err, expected", [
    ({"code": "x", "message": 5}, (0, "")),
    ({"code": 3.0, "message": "m"}, (3, "m")),
    ({"code": True}, (0, "")),
    ("just text", (0, "just text")),
])
def test_a_malformed_error_is_still_an_error_not_a_crash(err: Any, expected: tuple[int, str]) -> None:
    client = counting_client()
    req_id, _ = client.request("run")
    reply = client.receive(json.dumps({"jsonrpc": "2.0", "id": req_id, "error": err}))
    assert isinstance(reply, ErrorReply) and (reply.code, reply.message) == expected


def test_notification_is_told_apart_from_replies() -> None:
    client = counting_client()
    text = json.dumps({"jsonrpc": "2.0", "method": "media.started", "params": {"systemId": "SNES"}})
    assert client.receive(text) == Notification("media.started", {"systemId": "SNES"})


@pytest.mark.parametrize("text", ["pong", "[]", "[1, 2]", "42", '{"jsonrpc": "2.0", "id": "r9", "result": 1}',
                                  '{"id": 1, "method": "x"}', "[" * 100_000])
def test_what_nobody_asked_for_is_ignored(text: str) -> None:
    assert counting_client().receive(text) is None


def test_a_forgotten_id_does_not_match_a_late_answer() -> None:
    client = counting_client()
    req_id, _ = client.request("run")
    client.forget(req_id)
    assert client.receive(json.dumps({"jsonrpc": "2.0", "id": req_id, "result": None})) is None


@given(st.text())
def test_receive_never_raises_on_any_text(text: str) -> None:
    client = counting_client()
    client.request("run")
    reply = client.receive(text)
    assert reply is None or isinstance(reply, (Result, ErrorReply, Notification))


@given(json_values, st.sampled_from(["r1", "r2", None, 1]))
def test_receive_never_raises_on_any_json_with_a_pending_id(value: Any, msg_id: Any) -> None:
    client = counting_client()
    client.request("run")
    for msg in ({"jsonrpc": "2.0", "id": msg_id, "result": value}, {"jsonrpc": "2.0", "id": msg_id, "error": value},
                {"jsonrpc": "2.0", "method": value, "params": value}, value):
        reply = client.receive(json_text(msg))
        assert reply is None or isinstance(reply, (Result, ErrorReply, Notification))


def echo_dispatcher() -> Dispatcher:
    dispatcher = Dispatcher()

    @dispatcher.method("echo")
    async def echo(params: Any) -> Any:
        return params

    @dispatcher.method("fail")
    async def fail(params: Any) -> Any:
        raise RpcError("invalid params: text is required", data=params)

    return dispatcher


async def round_trip(client: RpcClient, dispatcher: Dispatcher, method: str, params: Any) -> Any:
    req_id, text = client.request(method, params)
    answer = await dispatcher.handle_text(text)
    reply = client.receive(json_text(answer))
    assert getattr(reply, "id", None) == req_id
    return reply


@given(st.dictionaries(st.text(max_size=8), json_values, max_size=4) | st.lists(json_values, max_size=4))
def test_round_trip_with_the_dispatcher_returns_the_result(params: Any) -> None:
    reply = asyncio.run(round_trip(counting_client(), echo_dispatcher(), "echo", params))
    assert reply == Result(reply.id, params)


@given(st.dictionaries(st.text(max_size=8), json_values, min_size=1, max_size=4))
def test_round_trip_with_the_dispatcher_returns_its_errors(params: Any) -> None:
    reply = asyncio.run(round_trip(counting_client(), echo_dispatcher(), "fail", params))
    assert reply == ErrorReply(reply.id, 1, "invalid params: text is required", params)


def test_round_trip_unknown_method_is_method_not_found() -> None:
    reply = asyncio.run(round_trip(counting_client(), echo_dispatcher(), "no.such", None))
    assert isinstance(reply, ErrorReply) and reply.code == -32601
