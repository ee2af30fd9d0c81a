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
