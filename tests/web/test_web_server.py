"""tagd.web.server over real sockets on 127.0.0.1: HTTP/1.1 framing, limits, errors and streamed bodies.

Exact protocol behaviour is checked with hand-built bytes (web_helpers.Raw); aiohttp's client is used where
the point is that an independent implementation gets on with the server.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any, AsyncIterator

import aiohttp
import pytest

from tagd.web import server as server_module
from tagd.web.server import Request, Response, Stream, Upgrade, json_response
from tagd.web.websocket import WebSocket
from web_helpers import HOST, Raw, get
from web_helpers import start_server  # noqa: F401  (a fixture)


async def app(request: Request) -> Any:
    """Echoes what the handler was given; /boom raises; /ws-only answers every request with an Upgrade."""
    if request.path == "/boom":
        raise RuntimeError("a handler bug")
    if request.path == "/hold":  # busy until the client goes away
        await request.disconnected.wait()
        return Response(200, "held")
    if request.path == "/ws-only":
        async def nothing(ws: WebSocket) -> None:
            pass
        return Upgrade(nothing)
    return json_response({"method": request.method, "target": request.target, "path": request.path,
                          "query": request.query, "headers": request.headers, "peer": request.peer,
                          "body": request.body.decode("latin-1")})


def req(method: str = "GET", target: str = "/", headers: str = "", body: bytes = b"") -> bytes:
    return f"{method} {target} HTTP/1.1\r\nHost: {HOST}\r\n{headers}\r\n".encode() + body


async def assert_alive(port: int) -> None:
    """The server still answers a normal request on a new connection."""
    status, _, body = await get(port, "/alive")
    assert status == 200
    assert json.loads(body)["path"] == "/alive"


@pytest.fixture
async def port(start_server: Any) -> int:
    server = await start_server(app, max_body=1024, max_connections=8)
    return server.port


# --- keep-alive and request framing -------------------------------------------------


async def test_two_requests_on_one_connection_are_both_answered(port: int) -> None:
    raw = await Raw.open(port)
    await raw.send(req(target="/one"))
    status, headers, body = await raw.response()
    assert status == 200 and json.loads(body)["path"] == "/one"
    assert headers.get("connection", "").lower() != "close"
    await raw.send(req(target="/two"))
    status, _, body = await raw.response()
    assert status == 200 and json.loads(body)["path"] == "/two"
    raw.close()


async def test_connection_close_request_is_answered_then_connection_closed(port: int) -> None:
    raw = await Raw.open(port)
    await raw.send(req(headers="Connection: close\r\n"))
    status, _, _ = await raw.response()
    assert status == 200
    assert await raw.eof(timeout=2) == b""  # nothing more, and the server closed its side
    raw.close()


async def test_content_length_body_reaches_handler(port: int) -> None:
    raw = await Raw.open(port)
    await raw.send(req("POST", "/p", "Content-Length: 11\r\n", b"hello world"))
    status, _, body = await raw.response()
    assert status == 200 and json.loads(body)["body"] == "hello world"
    raw.close()


async def test_chunked_request_body_is_decoded(port: int) -> None:
    raw = await Raw.open(port)
    chunked = b"5\r\nhello\r\n1;ext=1\r\n \r\n5\r\nworld\r\n0\r\n\r\n"
    await raw.send(req("POST", "/c", "Transfer-Encoding: chunked\r\n", chunked))
    status, _, body = await raw.response()
    assert status == 200 and json.loads(body)["body"] == "hello world"
    raw.close()


async def test_expect_100_continue_gets_100_before_the_body_is_sent(port: int) -> None:
    raw = await Raw.open(port)
    await raw.send(req("POST", "/e", "Content-Length: 5\r\nExpect: 100-continue\r\n"))
    status, _ = await raw.head(timeout=2)  # sent nothing but the head so far
    assert status == 100
    await raw.send(b"hello")
    status, _, body = await raw.response()
    assert status == 200 and json.loads(body)["body"] == "hello"
    raw.close()


async def test_expect_100_continue_with_too_long_body_gets_413_and_no_100(port: int) -> None:
    raw = await Raw.open(port)
    await raw.send(req("POST", "/e", "Content-Length: 5000\r\nExpect: 100-continue\r\n"))
    status, _ = await raw.head(timeout=2)
    assert status == 413
    raw.close()
    await assert_alive(port)


async def test_query_and_percent_decoded_utf8_path_reach_handler(port: int) -> None:
    raw = await Raw.open(port)
    await raw.send(req(target="/run/caf%C3%A9%20%E2%98%83/%2A?key=a%20b&key=second&flag=&x=%E2%82%AC"))
    status, _, body = await raw.response()
    seen = json.loads(body)
    assert status == 200
    assert seen["path"] == "/run/café ☃/*"
    assert seen["target"] == "/run/caf%C3%A9%20%E2%98%83/%2A?key=a%20b&key=second&flag=&x=%E2%82%AC"
    assert seen["query"] == {"key": "a b", "flag": "", "x": "€"}  # the first value of each name
    raw.close()


async def test_header_names_reach_handler_lower_case_with_repeats_joined(port: int) -> None:
    raw = await Raw.open(port)
    await raw.send(req(headers="X-Token: abc\r\nX-Multi: 1\r\nX-MULTI: 2\r\n"))
    _, _, body = await raw.response()
    headers = json.loads(body)["headers"]
    assert headers["x-token"] == "abc"
    assert headers["x-multi"] == "1, 2"
    raw.close()


async def test_peer_is_the_clients_address(port: int) -> None:
    _, _, body = await get(port)
    assert json.loads(body)["peer"] == "127.0.0.1"


async def test_head_request_is_answered_with_headers_and_no_body(port: int) -> None:
    # RFC 9110 §9.3.2: HEAD is GET without the content; every general-purpose server supports it
    raw = await Raw.open(port)
    await raw.send(req("HEAD", "/h") + req("GET", "/after", "Connection: close\r\n"))
    status, _ = await raw.head(timeout=2)
    assert status == 200
    status, _, body = await raw.response()  # the next response starts right after HEAD's head
    assert status == 200 and json.loads(body)["path"] == "/after"
    raw.close()


# --- limits: each gets its status, and the server carries on ----------------------------


async def test_head_over_16k_sent_in_one_write_gets_431(port: int) -> None:
    raw = await Raw.open(port)
    await raw.send(req(headers=f"X-Big: {'a' * 20_000}\r\n"))
    status, _ = await raw.head()
    assert status == 431
    raw.close()
    await assert_alive(port)


async def test_head_over_64k_gets_431(port: int) -> None:
    raw = await Raw.open(port)
    await raw.send(req(headers=f"X-Big: {'a' * 100_000}\r\n"))
    status, _ = await raw.head()
    assert status == 431
    raw.close()
    await assert_alive(port)


async def test_head_dribbled_past_16k_without_end_gets_431(port: int) -> None:
    raw = await Raw.open(port)
    await raw.send(b"GET / HTTP/1.1\r\nHost: x\r\n")
    for _ in range(17):  # 17 x 1 KiB header lines, each in its own write, never finishing the head
        await raw.send(b"X-Filler: " + b"b" * 1000 + b"\r\n")
        await asyncio.sleep(0.005)
    status, _ = await raw.head()
    assert status == 431
    raw.close()
    await assert_alive(port)


async def test_content_length_over_max_body_gets_413(port: int) -> None:
    raw = await Raw.open(port)
    await raw.send(req("POST", "/", "Content-Length: 1025\r\n"))
    status, headers = await raw.head()
    assert status == 413
    assert headers["connection"] == "close"
    raw.close()
    await assert_alive(port)


async def test_body_of_exactly_max_body_is_accepted(port: int) -> None:
    raw = await Raw.open(port)
    await raw.send(req("POST", "/", "Content-Length: 1024\r\n", b"z" * 1024))
    status, _, body = await raw.response()
    assert status == 200 and len(json.loads(body)["body"]) == 1024
    raw.close()


async def test_oversized_body_sent_in_full_still_gets_413(port: int) -> None:
    raw = await Raw.open(port)
    raw.writer.write(req("POST", "/", "Content-Length: 300000\r\n", b"x" * 300_000))
    status, _ = await raw.head()
    assert status == 413
    raw.close()
    await assert_alive(port)


async def test_chunked_body_over_max_body_gets_413(port: int) -> None:
    raw = await Raw.open(port)
    await raw.send(req("POST", "/", "Transfer-Encoding: chunked\r\n", b"400\r\n" + b"y" * 1024 + b"\r\n"))
    await raw.send(b"1\r\ny\r\n")  # byte 1025
    status, _ = await raw.head()
    assert status == 413
    raw.close()
    await assert_alive(port)


@pytest.mark.parametrize("garbage", [
    b"GARBAGE\r\n\r\n",
    b"GET / HTTP/1.1\r\nNo colon here\r\n\r\n",
    b"GET / HTTP/1.1\r\n\r\n",  # HTTP/1.1 without Host
    b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: nope\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
], ids=["no-request-line", "header-without-colon", "no-host", "bad-content-length", "bad-chunk-size"])
async def test_malformed_request_gets_400(port: int, garbage: bytes) -> None:
    raw = await Raw.open(port)
    await raw.send(garbage)
    status, _ = await raw.head()
    assert status == 400
    raw.close()
    await assert_alive(port)


async def test_request_not_whole_within_request_timeout_gets_408(port: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(server_module, "REQUEST_TIMEOUT", 0.3)
    raw = await Raw.open(port)
    loop = asyncio.get_running_loop()
    start = loop.time()
    await raw.send(b"GET / HTTP/1.1\r\nHost: x\r\n")  # never finished
    status, _ = await raw.head(timeout=3)
    assert status == 408
    assert 0.25 <= loop.time() - start < 2
    raw.close()
    await assert_alive(port)


async def test_request_dripped_byte_by_byte_gets_408_at_the_deadline(port: int,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    # the timeout covers the whole request, not each read: a client dripping bytes cannot hold it open
    monkeypatch.setattr(server_module, "REQUEST_TIMEOUT", 0.4)
    raw = await Raw.open(port)
    loop = asyncio.get_running_loop()
    start = loop.time()

    async def drip() -> None:
        for byte in b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"s" * 200:
            await raw.send(bytes([byte]))
            await asyncio.sleep(0.02)

    dripper = asyncio.ensure_future(drip())
    try:
        status, _ = await raw.head(timeout=3)
    finally:
        dripper.cancel()
        await asyncio.gather(dripper, return_exceptions=True)
    assert status == 408
    assert loop.time() - start < 1.5
    raw.close()
    await assert_alive(port)


async def test_request_with_slow_head_then_slow_body_gets_408_within_request_timeout_of_first_byte(
        port: int, monkeypatch: pytest.MonkeyPatch) -> None:
    # "a request must arrive whole within REQUEST_TIMEOUT of its first byte": head and body share one deadline
    monkeypatch.setattr(server_module, "REQUEST_TIMEOUT", 1.0)
    raw = await Raw.open(port)
    loop = asyncio.get_running_loop()
    start = loop.time()

    async def drip() -> None:
        await raw.send(b"POST / HTTP/1.1\r\n")
        await asyncio.sleep(0.9)
        await raw.send(b"Host: x\r\nContent-Length: 1000\r\n\r\n")  # the head is whole at 0.9 s …
        for _ in range(150):
            await raw.send(b"b")  # … and the body keeps dripping
            await asyncio.sleep(0.02)

    dripper = asyncio.ensure_future(drip())
    try:
        status, _ = await raw.head(timeout=3)
        elapsed = loop.time() - start
    finally:
        dripper.cancel()
        await asyncio.gather(dripper, return_exceptions=True)
    assert status == 408
    # one deadline: 408 at 1.0 s; a fresh one for the body would give it at 1.9 s
    assert elapsed < 1.6, f"408 only {elapsed:.2f} s after the first byte (REQUEST_TIMEOUT 1.0 s)"
    raw.close()
    await assert_alive(port)


async def test_idle_keep_alive_connection_closed_after_idle_timeout(port: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(server_module, "IDLE_TIMEOUT", 0.3)
    raw = await Raw.open(port)
    await raw.send(req())
    assert (await raw.response())[0] == 200
    loop = asyncio.get_running_loop()
    start = loop.time()
    assert await raw.eof(timeout=3) == b""  # closed without a word
    assert 0.25 <= loop.time() - start < 2
    raw.close()
    await assert_alive(port)


async def test_handler_exception_gets_500_and_the_same_connection_serves_the_next_request(port: int) -> None:
    raw = await Raw.open(port)
    await raw.send(req(target="/boom"))
    status, _, _ = await raw.response()
    assert status == 500
    await raw.send(req(target="/next"))
    status, _, body = await raw.response()
    assert status == 200 and json.loads(body)["path"] == "/next"
    raw.close()
    await assert_alive(port)


async def test_upgrade_answer_to_a_plain_request_gets_400(port: int) -> None:
    status, _, _ = await get(port, "/ws-only")
    assert status == 400
    await assert_alive(port)


async def refusal_status(port: int, wait: float = 2.0) -> int | None:
    """Connect, send nothing, and read what the server says of its own accord (None: nothing within ``wait``)."""
    raw = await Raw.open(port)
    try:
        return (await raw.response(timeout=wait))[0]
    except asyncio.TimeoutError:
        return None
    finally:
        raw.close()


async def hold_connections(server: Any, n: int) -> list[Raw]:
    """``n`` connections, each busy (its request is being handled): an idle one would make room (admission)."""
    held = [await Raw.open(server.port) for _ in range(n)]
    for raw in held:
        await raw.send(req(target="/hold"))
    for _ in range(100):
        if len(server._connections) == n:
            break
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.05)
    return held


async def test_connection_past_max_connections_gets_503(start_server: Any) -> None:
    server = await start_server(app, max_connections=2)
    held = await hold_connections(server, 2)
    assert await refusal_status(server.port) == 503
    for raw in held:
        raw.close()


async def test_503_to_a_client_that_sent_its_request_is_read_whole_and_ends_without_a_reset(start_server: Any) -> None:
    # RFC 9112 §9.6: closing with the client's request unread makes the kernel send a RST, which may erase
    # the response before the client reads it; a server closes in stages (half-close, drain, close)
    server = await start_server(app, max_connections=1)
    held = await hold_connections(server, 1)
    raw = await Raw.open(server.port)
    await raw.send(req(headers="Connection: close\r\n"))
    await asyncio.sleep(0.1)  # the answer and the close have happened by now
    received = b""
    try:
        while chunk := await asyncio.wait_for(raw.reader.read(65536), 2):
            received += chunk
    except ConnectionResetError:
        pytest.fail(f"connection reset by the server (after receiving {received!r})")
    assert received.startswith(b"HTTP/1.1 503")
    raw.close()
    held[0].close()


async def test_connection_slot_is_freed_when_a_client_leaves(start_server: Any) -> None:
    server = await start_server(app, max_connections=1)
    held = await hold_connections(server, 1)
    assert await refusal_status(server.port) == 503
    held[0].close()
    for _ in range(100):
        await asyncio.sleep(0.02)
        raw = await Raw.open(server.port)
        try:
            try:
                await raw.send(req(headers="Connection: close\r\n"))
                status = (await raw.response())[0]
            except (ConnectionError, asyncio.IncompleteReadError):
                continue  # refused and closed before our request got in: try later
            if status == 200:
                break
            assert status == 503  # the old connection is not gone yet: try later
        finally:
            raw.close()
    else:
        pytest.fail("the server never took a new connection after the only one closed")


# --- an independent client --------------------------------------------------------------


async def test_aiohttp_client_post_round_trip(port: int) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.post(f"http://{HOST}:{port}/api?x=1", json={"n": "é"},
                                headers={"Authorization": "Bearer k"}) as resp:
            assert resp.status == 200
            assert resp.headers["content-type"].startswith("application/json")
            seen = await resp.json()
    assert seen["method"] == "POST" and seen["path"] == "/api" and seen["query"] == {"x": "1"}
    assert json.loads(seen["body"].encode("latin-1")) == {"n": "é"}
    assert seen["headers"]["authorization"] == "Bearer k"


async def test_aiohttp_session_reuses_one_kept_alive_connection(port: int) -> None:
    created, reused = [], []
    trace = aiohttp.TraceConfig()
    trace.on_connection_create_end.append(lambda *a: _append(created))
    trace.on_connection_reuseconn.append(lambda *a: _append(reused))
    async with aiohttp.ClientSession(trace_configs=[trace]) as session:
        for i in range(3):
            async with session.get(f"http://{HOST}:{port}/n{i}") as resp:
                assert resp.status == 200 and (await resp.json())["path"] == f"/n{i}"
    assert len(created) == 1 and len(reused) == 2


async def _append(seen: list[int]) -> None:
    seen.append(1)


# --- streamed responses -----------------------------------------------------------------


async def test_stream_chunks_arrive_in_order_with_chunked_encoding(start_server: Any) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for i in range(5):
            yield f"data: {i}\n\n".encode()
            await asyncio.sleep(0.01)

    async def handler(request: Request) -> Stream:
        return Stream(chunks(), "text/event-stream", [("cache-control", "no-cache")])

    server = await start_server(handler)
    raw = await Raw.open(server.port)
    await raw.send(req(target="/events"))
    status, headers = await raw.head()
    assert status == 200
    assert headers["content-type"] == "text/event-stream"
    assert headers["cache-control"] == "no-cache"
    assert headers["transfer-encoding"] == "chunked"
    assert "content-length" not in headers
    assert [c async for c in raw.chunks()] == [f"data: {i}\n\n".encode() for i in range(5)]
    raw.close()


async def test_stream_read_by_aiohttp_arrives_in_order(start_server: Any) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for i in range(20):
            yield f"{i},".encode()

    async def handler(request: Request) -> Stream:
        return Stream(chunks())

    server = await start_server(handler)
    async with aiohttp.ClientSession() as session:
        async with session.get(f"http://{HOST}:{server.port}/s") as resp:
            assert resp.status == 200
            body = await resp.read()
    assert body == b"".join(f"{i},".encode() for i in range(20))


async def open_stream(start_server: Any, chunks: AsyncIterator[bytes]) -> tuple[Any, Raw, bytes]:
    """A server whose every request streams ``chunks``; a raw client that asked, and the first chunk it got."""
    async def handler(request: Request) -> Stream:
        return Stream(chunks)

    server = await start_server(handler)
    raw = await Raw.open(server.port)
    await raw.send(req(target="/events"))
    assert (await raw.head())[0] == 200
    return server, raw, await raw.chunks().__anext__()


async def test_stream_generator_is_closed_promptly_when_the_client_disconnects(start_server: Any) -> None:
    first_sent, finished = asyncio.Event(), asyncio.Event()

    async def chunks() -> AsyncIterator[bytes]:
        try:
            yield b"first"
            first_sent.set()
            await asyncio.Event().wait()  # an idle event stream: nothing more to say, for ever
            yield b"never"
        finally:
            finished.set()

    _, raw, first = await open_stream(start_server, chunks())
    assert first == b"first"
    await asyncio.wait_for(first_sent.wait(), 2)
    raw.close()
    await asyncio.wait_for(finished.wait(), 1.0)


async def test_stream_generator_that_keeps_yielding_is_closed_when_the_client_disconnects(start_server: Any) -> None:
    finished = asyncio.Event()

    async def chunks() -> AsyncIterator[bytes]:
        try:
            while True:
                yield b"tick\n"
                await asyncio.sleep(0.01)
        finally:
            finished.set()

    _, raw, first = await open_stream(start_server, chunks())
    assert first == b"tick\n"
    raw.close()
    await asyncio.wait_for(finished.wait(), 1.0)


async def test_server_close_ends_an_open_stream_and_closes_its_generator(start_server: Any) -> None:
    finished = asyncio.Event()

    async def chunks() -> AsyncIterator[bytes]:
        try:
            yield b"hello"
            await asyncio.Event().wait()
        finally:
            finished.set()

    server, raw, first = await open_stream(start_server, chunks())
    assert first == b"hello"
    await asyncio.wait_for(server.close(), 2)
    assert finished.is_set()
    await raw.eof(timeout=2)  # and the connection ends
    raw.close()
