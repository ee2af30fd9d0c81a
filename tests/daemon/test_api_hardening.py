"""The API against hostile or odd input (a black-box review's findings): lone surrogates, NaN and huge numbers,
ids that are not row ids; and its writers against messages that cannot be encoded."""

from __future__ import annotations

import asyncio
import json

import pytest

from test_api import Client, client, daemon, wait_for  # noqa: F401  (fixtures)

SURROGATE_RUN = '{"jsonrpc":"2.0","id":9,"method":"run","params":{"text":"x\\ud800"}}'
SURROGATE_ID = '{"jsonrpc":"2.0","id":"\\ud800","method":"version"}'


async def answer(ws, id_, timeout=3.0):
    """The next response to ``id_`` on a WebSocket (notifications in between are skipped)."""
    while True:
        msg = json.loads((await ws.receive(timeout=timeout)).data)
        if "method" not in msg and msg.get("id") == id_:
            return msg


def assert_parse_error(resp, detail):
    assert resp["id"] is None and resp["error"]["code"] == -32700
    assert resp["error"]["message"].startswith("Parse error") and detail in resp["error"]["message"]


@pytest.mark.parametrize("body", [SURROGATE_RUN, SURROGATE_ID, '{"jsonrpc":"2.0","id":1,"method":"run","params":"\\udc00"}',
                                  '{"jsonrpc":"2.0","id":1,"method":"run","params":{"text":"a","\\udbff":1}}'])
async def test_a_lone_surrogate_is_a_parse_error_and_every_client_is_still_answered(client, daemon, body):
    async def reader_up():
        return daemon.reader_infos()
    assert await wait_for(reader_up)
    async with client.session.ws_connect(f"ws://127.0.0.1:{client.port}/api") as ws:
        status, resp = await client.post(body)  # over HTTP: the connection was closed with no answer for the id
        assert status == 200
        assert_parse_error(resp, "lone surrogate \\ud")
        await ws.send_str(body)  # over the WebSocket: the session went silent
        assert_parse_error(await answer(ws, None), "lone surrogate")
        await ws.send_str('{"jsonrpc":"2.0","id":2,"method":"tokens"}')
        assert (await answer(ws, 2))["result"] == {"active": [], "last": None}
    assert (await client.call("tokens.history"))["result"]["entries"] == []  # nothing was run
    assert (await client.call("version"))["result"]["platform"] == "tagd"


async def test_a_surrogate_pair_escape_is_one_character_and_fine(client):
    status, resp = await client.post('{"jsonrpc":"2.0","id":"\\ud83d\\ude00","method":"version"}')
    assert status == 200 and resp["id"] == "\U0001f600" and resp["result"]["platform"] == "tagd"


async def test_raw_surrogate_bytes_are_a_parse_error(client):
    # json.loads decodes bytes with surrogatepass: "\xed\xa0\x80" (a UTF-8-encoded surrogate) would get through
    status, resp = await client.post(b'{"jsonrpc":"2.0","id":1,"method":"run","params":{"text":"x\xed\xa0\x80"}}')
    assert status == 200 and resp["id"] is None and resp["error"]["code"] == -32700


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e400", "-1e400"])
async def test_numbers_json_has_no_form_for_are_a_parse_error(client, literal):
    # json.loads took them and the answer echoed them back bare: {"id": NaN} is not JSON
    for body in (f'{{"jsonrpc":"2.0","id":{literal},"method":"version"}}',
                 f'{{"jsonrpc":"2.0","id":1,"method":"settings.update","params":{{"readersScanExitDelay":{literal}}}}}'):
        status, resp = await client.post(body)
        assert status == 200
        assert_parse_error(resp, literal.lstrip("-"))


async def test_a_broadcast_that_carries_a_lone_surrogate_does_not_silence_clients(client, daemon):
    # e.g. a Core notification relayed as it came: the writer task died on it, the socket stayed open and silent
    async def reader_up():
        return daemon.reader_infos()
    assert await wait_for(reader_up)
    async with client.session.ws_connect(f"ws://127.0.0.1:{client.port}/api") as ws, \
            client.session.get(client.base + "/api/v0.1/events") as sse:
        await sse.content.readline()
        await sse.content.readline()
        daemon.api.broadcast("media.started", {"mediaName": "x\ud800"})
        msg = json.loads((await ws.receive(timeout=3)).data)
        assert msg["params"]["mediaName"] == "x\ud800"  # sent as its \ud800 escape: valid JSON text
        line = await asyncio.wait_for(sse.content.readline(), 3)
        assert json.loads(line.decode()[len("data: "):])["params"]["mediaName"] == "x\ud800"
        # a message that cannot be encoded at all (queued raw) is skipped, not the end of the writer or stream
        for conn in daemon.api.clients.values():
            conn.outbox.put('{"bad": "\ud800"}')
        for outbox in daemon.api.sse:
            outbox.put('{"bad": "\ud800"}')
        daemon.api.broadcast("tokens.removed")
        assert json.loads((await ws.receive(timeout=3)).data)["method"] == "tokens.removed"
        line = await asyncio.wait_for(sse.content.readline(), 3)
        while not line.strip():
            line = await asyncio.wait_for(sse.content.readline(), 3)
        assert json.loads(line.decode()[len("data: "):])["method"] == "tokens.removed"
        await ws.send_str('{"jsonrpc":"2.0","id":3,"method":"version"}')
        assert (await answer(ws, 3))["result"]["platform"] == "tagd"


NEW = {"type": "text", "match": "exact", "pattern": "p", "override": "@SNES/x"}


@pytest.mark.parametrize("method", ["mappings.update", "mappings.delete", "inbox.delete"])
@pytest.mark.parametrize("bad, why", [(1180591620717411303424, "out of range"), (2**63, "out of range"),
                                      (-1, "out of range"), ("99999999999999999999", "out of range"),
                                      ("\u0662", "is not an id"), (" 2", "is not an id"), ("2.0", "is not an id"),
                                      (2.0, "is not an id"), (None, "is not an id")])
async def test_an_id_that_cannot_be_a_row_id_is_invalid_params(client, daemon, method, bad, why):
    # {"id": 2**70} was "internal error: OverflowError"; {"id": "٢"} (an Arabic-Indic digit) deleted mapping 2
    for _ in range(2):
        await client.call("mappings.new", NEW)
    daemon.store.add_inbox("one")
    daemon.store.add_inbox("two")
    params = {"id": bad, "enabled": False} if method == "mappings.update" else {"id": bad}
    err = (await client.call(method, params))["error"]
    assert err["code"] == 1 and err["message"].startswith("invalid params: id: ") and why in err["message"]
    assert [m["enabled"] for m in (await client.call("mappings"))["result"]["mappings"]] == [True, True]
    assert len((await client.call("inbox"))["result"]["messages"]) == 2


async def test_an_id_as_mappings_lists_it_still_works(client):
    # mappings lists ids as strings ("2"), and the Zaparoo App sends them back as it got them
    await client.call("mappings.new", NEW)
    [row] = (await client.call("mappings"))["result"]["mappings"]
    assert isinstance(row["id"], str) and row["id"].isdigit()
    assert (await client.call("mappings.delete", {"id": row["id"]}))["result"] == {}
