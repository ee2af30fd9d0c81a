"""`tagd pair` (show a PIN for the Zaparoo App, with how long it lives) and `tagd clients` (list, remove).

Both talk to the running daemon over its API on loopback, the way Core's own TUI does: pairing and removing
clients are local-only methods, so being on the machine is the permission.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from typing import Any


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("pair", help="show a PIN to pair the Zaparoo App (or another client) with the running daemon")
    p.add_argument("--config", help="config file (default: the user's tagd config), to find the API address")
    p.add_argument("--url", help="the daemon's API, e.g. ws://127.0.0.1:7497/api (default: from the config)")
    p.add_argument("--role", choices=("admin", "member"), default="",
                   help="what the new client may do (default: admin for the first client, member after)")
    p.set_defaults(func=cmd_pair)
    c = sub.add_parser("clients", help="list paired clients, or remove one")
    c.add_argument("remove", nargs="?", choices=("remove",), help="remove the client CLIENT_ID")
    c.add_argument("client_id", nargs="?", metavar="CLIENT_ID")
    c.add_argument("--config", help="config file, to find the API address")
    c.add_argument("--url", help="the daemon's API (default: from the config)")
    c.set_defaults(func=cmd_clients)


def api_url(args: argparse.Namespace) -> str:
    """The daemon's WebSocket URL on this machine, from --url or the config's listen address."""
    if args.url:
        return args.url
    from tagd.daemon.config import load_config, parse_listen

    host, port = parse_listen(load_config(args.config, required=args.config is not None).api.listen)
    if host in ("", "0.0.0.0", "::"):
        host = "127.0.0.1"
    return f"ws://{'[' + host + ']' if ':' in host else host}:{port}/api"


class Rpc:
    """Calls over one WebSocket; notifications that arrive meanwhile are kept for ``next_notification``."""

    def __init__(self, ws: Any) -> None:
        self.ws, self.n, self.notes = ws, 0, asyncio.Queue()  # type: ignore[var-annotated]
        self.pending: dict[int, asyncio.Future[Any]] = {}
        self.reader = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        async for text in self.ws:
            msg = json.loads(text)
            if "id" in msg and msg["id"] in self.pending:
                self.pending.pop(msg["id"]).set_result(msg)
            elif "method" in msg:
                self.notes.put_nowait(msg)

    async def call(self, method: str, params: Any = None) -> Any:
        self.n += 1
        fut = asyncio.get_running_loop().create_future()
        self.pending[self.n] = fut
        await self.ws.send(json.dumps({"jsonrpc": "2.0", "id": self.n, "method": method, "params": params or {}}))
        msg = await asyncio.wait_for(fut, 10)
        if "error" in msg:
            raise RuntimeError(msg["error"].get("message", "error"))
        return msg["result"]


async def _connect(url: str) -> Rpc:
    from tagd.web.client import HttpError, connect_websocket

    try:
        return Rpc(await connect_websocket(url, timeout=5))
    except HttpError as exc:
        raise RuntimeError(f"cannot reach the daemon ({exc}); is `tagd run` running?") from None


def _mmss(seconds: float) -> str:
    s = max(0, int(seconds + 0.999))
    return f"{s // 60}:{s % 60:02d}"


async def pair(url: str, role: str, out: Any = sys.stdout) -> int:
    rpc = await _connect(url)
    try:
        started = await rpc.call("clients.pair.start", {"role": role} if role else {})
        deadline = time.monotonic() + started.get("expiresIn", started["expiresAt"] - time.time())
        print(f"Pairing PIN: {started['pin']}", file=out)
        print("Enter it in the Zaparoo App when it asks to pair with this device.", file=out)
        tty = out.isatty()
        if not tty:
            print(f"The PIN is valid for {_mmss(deadline - time.monotonic())} (one pairing).", file=out, flush=True)
        try:
            while (left := deadline - time.monotonic()) > 0:
                if tty:
                    print(f"\rvalid for {_mmss(left)} … (Ctrl-C cancels) ", end="", file=out, flush=True)
                try:
                    note = await asyncio.wait_for(rpc.notes.get(), min(1.0, left))
                except asyncio.TimeoutError:
                    continue
                if note.get("method") == "clients.paired":
                    name = (note.get("params") or {}).get("clientName", "a client")
                    print(f"{chr(10) if tty else ''}Paired with {name}.", file=out)
                    return 0
            print(f"{chr(10) if tty else ''}The PIN expired; run `tagd pair` again.", file=out)
            return 1
        except asyncio.CancelledError:
            await rpc.call("clients.pair.cancel")
            print(f"{chr(10) if tty else ''}Pairing cancelled.", file=out)
            return 1
    finally:
        rpc.reader.cancel()
        await rpc.ws.close()


def loopback_only(args: argparse.Namespace) -> bool:
    """The config's API listens on this machine only, so no phone can reach it to pair."""
    if args.url:
        return False
    from tagd.daemon.api.access import listens_beyond_loopback
    from tagd.daemon.config import load_config, parse_listen

    return not listens_beyond_loopback(parse_listen(load_config(args.config, required=args.config is not None).api.listen)[0])


def cmd_pair(args: argparse.Namespace) -> int:
    try:
        if loopback_only(args):
            print("note: [api] listen is a loopback address, so a phone cannot reach tagd; set listen = \":7497\" "
                  "(every interface) and restart tagd", file=sys.stderr)
        return asyncio.run(_cancellable(pair(api_url(args), args.role)))
    except RuntimeError as exc:
        print(f"tagd pair: {exc}", file=sys.stderr)
        return 1


async def _cancellable(coro: Any) -> int:
    """Run ``coro`` so that Ctrl-C cancels it (it then cancels the PIN) instead of killing the process mid-call."""
    import signal

    task = asyncio.ensure_future(coro)
    loop = asyncio.get_running_loop()
    try:
        loop.add_signal_handler(signal.SIGINT, task.cancel)
    except (NotImplementedError, RuntimeError):
        pass
    return await task


async def clients(url: str, remove: str | None, out: Any = sys.stdout) -> int:
    rpc = await _connect(url)
    try:
        if remove:
            await rpc.call("clients.delete", {"clientId": remove})
            print(f"Removed {remove}.", file=out)
            return 0
        rows = (await rpc.call("clients"))["clients"]
        if not rows:
            print("No paired clients (`tagd pair` adds one).", file=out)
        for c in rows:
            seen = time.strftime("%Y-%m-%d %H:%M", time.localtime(c["lastSeenAt"]))
            print(f"{c['clientId']}  {c['role']:<6}  last seen {seen}  {c['clientName']}", file=out)
        return 0
    finally:
        rpc.reader.cancel()
        await rpc.ws.close()


def cmd_clients(args: argparse.Namespace) -> int:
    if args.remove and not args.client_id:
        print("tagd clients remove: which CLIENT_ID? (`tagd clients` lists them)", file=sys.stderr)
        return 2
    try:
        return asyncio.run(clients(api_url(args), args.client_id if args.remove else None))
    except RuntimeError as exc:
        print(f"tagd clients: {exc}", file=sys.stderr)
        return 1
