"""Pipelined HTTP/1.1 requests (sent back to back before any answer) are each answered, in order."""

from __future__ import annotations

import asyncio

from tagd.web.server import HttpServer, Response


async def test_pipelined_requests_are_each_answered_in_order():
    async def handler(request):
        return Response(200, f"[{request.path}]")

    server = HttpServer(handler)
    port = await server.start("127.0.0.1", 0)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
                     b"POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi"
                     b"GET /c HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = await asyncio.wait_for(reader.read(), 3)
        writer.close()
    finally:
        await server.close()
    assert data.count(b"HTTP/1.1 200 ") == 3
    assert data.index(b"[/a]") < data.index(b"[/b]") < data.index(b"[/c]")
