"""After a close, a WebSocket's transport is cut off CLOSE_GRACE seconds later only if it is still there: one whose
peer took the last frames is freed at once (a thousand clients leaving kept their transports, and the heap they were
spread over, for 5 s)."""

from __future__ import annotations

import asyncio
import gc
import weakref

from wsproto.connection import Connection, ConnectionType

from tagd.web import websocket
from tagd.web.websocket import WebSocket


async def test_a_closed_websockets_transport_is_freed_before_the_grace_timer_fires() -> None:
    accepted: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()
    server = await asyncio.start_server(lambda r, w: accepted.put_nowait((r, w)), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    peer_r, peer_w = await asyncio.open_connection("127.0.0.1", port)
    reader, writer = await accepted.get()
    ws = WebSocket(reader, writer, Connection(ConnectionType.SERVER))
    transport = weakref.ref(writer.transport)
    await ws.close(1000)
    assert (await asyncio.wait_for(peer_r.read(), 2))[:1] == b"\x88"  # the peer takes the close frame, then EOF
    del reader, writer, ws
    for _ in range(5):
        await asyncio.sleep(0.01)
    gc.collect()
    assert transport() is None, "the grace timer kept the transport"
    assert websocket.CLOSE_GRACE >= 1
    peer_w.close()
    server.close()


async def _pair() -> tuple[asyncio.AbstractServer, asyncio.StreamReader, asyncio.StreamWriter, WebSocket]:
    accepted: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()
    server = await asyncio.start_server(lambda r, w: accepted.put_nowait((r, w)), "127.0.0.1", 0)
    peer_r, peer_w = await asyncio.open_connection("127.0.0.1", server.sockets[0].getsockname()[1])
    reader, writer = await accepted.get()
    return server, peer_r, peer_w, WebSocket(reader, writer, Connection(ConnectionType.SERVER))


def _grace_timers(loop: asyncio.AbstractEventLoop) -> int:
    scheduled = loop._scheduled  # type: ignore[attr-defined]
    return sum(1 for h in scheduled if getattr(h, "_callback", None) is websocket._abort_if_open)


async def test_a_websocket_whose_close_frame_went_out_at_once_leaves_no_grace_timer() -> None:
    server, peer_r, peer_w, ws = await _pair()
    await ws.close(1000)
    assert ws.closed
    assert _grace_timers(asyncio.get_running_loop()) == 0, "a timer was left for a socket with nothing queued"
    assert (await asyncio.wait_for(peer_r.read(), 2))[:1] == b"\x88"
    peer_w.close()
    server.close()


async def test_a_peer_that_never_takes_the_last_frames_is_cut_off_after_the_grace(monkeypatch) -> None:
    monkeypatch.setattr(websocket, "CLOSE_GRACE", 0.3)
    server, peer_r, peer_w, ws = await _pair()
    transport = ws._writer.transport
    transport.set_write_buffer_limits(high=1 << 30)  # queue, do not push back: the peer reads nothing
    for _ in range(64):
        await ws.send("x" * (1 << 16))  # 4 MiB: more than the socket buffers hold
    assert transport.get_write_buffer_size() > 0
    ws._finish()
    assert _grace_timers(asyncio.get_running_loop()) == 1
    assert not transport.is_closing() or transport.get_write_buffer_size() > 0  # still flushing to a peer that waits
    for _ in range(250):
        if transport._sock is None:  # type: ignore[attr-defined]  (the transport let go of its socket: cut off)
            break
        await asyncio.sleep(0.02)
    cut_off = transport._sock is None  # type: ignore[attr-defined]
    assert cut_off, "the transport of a peer that reads nothing was not cut off"
    peer_w.close()
    server.close()


async def test_a_tls_websocket_keeps_the_grace_timer(certificate) -> None:
    """Under TLS the close frame waits, encrypted, in a buffer the transport's size does not count: always a timer."""
    import ssl

    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(*certificate)
    client_ctx = ssl.create_default_context(cafile=str(certificate[0]))
    accepted: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()
    server = await asyncio.start_server(lambda r, w: accepted.put_nowait((r, w)), "127.0.0.1", 0, ssl=server_ctx)
    peer_r, peer_w = await asyncio.open_connection("127.0.0.1", server.sockets[0].getsockname()[1], ssl=client_ctx)
    reader, writer = await accepted.get()
    ws = WebSocket(reader, writer, Connection(ConnectionType.SERVER))
    await ws.close(1000)
    assert _grace_timers(asyncio.get_running_loop()) == 1, "a TLS socket was left without its grace timer"
    assert (await asyncio.wait_for(peer_r.read(2), 10))[:1] == b"\x88"
    peer_w.close()
    server.close()
