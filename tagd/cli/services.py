"""`tagd link | unlink | sessions | romm`: the web services from the command line (tagd/integrations).

These commands work on the config's database and credentials directly, so they work with or without a running
daemon; afterwards they poke a running daemon (``sessions.retry`` on its loopback API) so it notices at once.
Secrets (tokens, passwords, keys) are read with getpass or from stdin — never from argv, where ``ps`` shows them.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import sys
import time
from typing import Any

SERVICES = ("retroshelf", "romm", "playren")


def register(sub: argparse._SubParsersAction) -> None:
    link = sub.add_parser("link", help="link a web service (retroshelf, romm, playren)")
    lsub = link.add_subparsers(dest="service", metavar="SERVICE", required=True)
    rs = lsub.add_parser("retroshelf", help="device-code login; play sessions are then sent to your activity")
    rs.add_argument("--client-id", required=True, metavar="ID", help="the client ID retroshelf approved")
    rs.add_argument("--base-url", metavar="URL", help="default https://retroshelf.org")
    rs.add_argument("--device-name", metavar="NAME", help="how this tagd is named on retroshelf")
    rm = lsub.add_parser("romm", help="a RomM server: an rmm_ client token (asked for), or --username for a login")
    rm.add_argument("--url", required=True, metavar="URL", help="e.g. http://romm.local:8080")
    rm.add_argument("--username", metavar="NAME", help="log in with a password (asked for) instead of a client token")
    pr = lsub.add_parser("playren", help="a PlayRen partner key (asked for)")
    pr.add_argument("--base-url", metavar="URL", help="default https://play.ren.bd/api/partners")
    for p in (rs, rm, pr):
        p.add_argument("--config", metavar="FILE")
        p.set_defaults(func=cmd_link)

    un = sub.add_parser("unlink", help="forget a web service's tokens")
    un.add_argument("service", choices=SERVICES)
    un.add_argument("--config", metavar="FILE")
    un.set_defaults(func=cmd_unlink)

    ss = sub.add_parser("sessions", help="play sessions and their retroshelf sync state")
    which = ss.add_mutually_exclusive_group()
    for status in ("pending", "failed", "synced"):
        which.add_argument(f"--{status}", dest="status", action="store_const", const=status,
                           help=f"only {status} sessions")
    ss.add_argument("--limit", type=int, default=50)
    ss.add_argument("--json", action="store_true", help="one JSON object per line")
    ss.add_argument("--config", metavar="FILE")
    ss.add_argument("action", nargs="?", choices=["retry"], help="retry: put failed sessions back in the queue")
    ss.add_argument("ids", nargs="*", type=int, metavar="ID", help="with retry: only these sessions")
    ss.set_defaults(func=cmd_sessions)

    romm = sub.add_parser("romm", help="the RomM catalog: sync it, search it")
    rsub = romm.add_subparsers(dest="romm_command", metavar="COMMAND", required=True)
    sync = rsub.add_parser("sync", help="copy new and changed ROMs into the local catalog")
    sync.add_argument("--full", action="store_true", help="everything again, not only what changed")
    search = rsub.add_parser("search", help="search the catalog (synced first when it is empty)")
    search.add_argument("text", metavar="TEXT")
    search.add_argument("--platform", metavar="SLUG", help="e.g. snes")
    search.add_argument("--json", action="store_true")
    for p in (sync, search):
        p.add_argument("--config", metavar="FILE")
    sync.set_defaults(func=cmd_romm_sync)
    search.set_defaults(func=cmd_romm_search)


# --- shared plumbing ---------------------------------------------------------------------------


def load(args: argparse.Namespace) -> Any:
    from tagd.daemon.config import ConfigError, default_config_path, load_config

    try:
        return load_config(args.config or default_config_path(), required=args.config is not None)
    except ConfigError as exc:
        raise SystemExit(f"tagd: {exc}") from None


def credentials(config: Any) -> Any:
    from tagd.integrations.credentials import Credentials, credentials_dir

    return Credentials(credentials_dir(config.database))


def open_store(config: Any) -> Any:
    from tagd.integrations.store import IntegrationStore

    return IntegrationStore(config.database)


def ask_secret(prompt: str) -> str:
    """A secret from the terminal (not echoed) or, when stdin is not a terminal, its first line."""
    if sys.stdin.isatty():
        value = getpass.getpass(prompt)
    else:
        value = sys.stdin.readline()
    value = value.strip()
    if not value:
        raise SystemExit("tagd: nothing entered")
    return value


def poke_daemon(config: Any) -> bool:
    """Tell a running daemon to look at its links and queue now (best effort, loopback, 1 s)."""
    import urllib.request

    from tagd.daemon.config import parse_listen

    host, port = parse_listen(config.api.listen)
    host = "127.0.0.1" if host in ("", "0.0.0.0") else ("::1" if host == "::" else host)
    url = f"http://{'[' + host + ']' if ':' in host else host}:{port}/api"
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "sessions.retry", "params": {"ids": []}}).encode()
    try:
        with urllib.request.urlopen(urllib.request.Request(url, body, {"Content-Type": "application/json"}),
                                    timeout=1.0) as r:
            return r.status == 200
    except OSError:
        return False


def service_error(exc: Exception) -> SystemExit:
    return SystemExit(f"tagd: {exc}")


def show_qr(url: str) -> None:
    try:
        import segno
    except ImportError:  # the QR code is a convenience: the URL and code are printed anyway
        return
    try:
        segno.make(url, error="l").terminal(out=sys.stdout, compact=True, border=2)
    except (TypeError, ValueError):
        segno.make(url, error="l").terminal(out=sys.stdout, border=2)


# --- link / unlink ------------------------------------------------------------------------------


def cmd_link(args: argparse.Namespace) -> int:
    config = load(args)
    creds = credentials(config)
    from tagd.integrations.http import ServiceError, check_base_url

    try:
        if args.service == "retroshelf":
            from tagd.integrations.retroshelf import DEFAULT_BASE_URL
            record = asyncio.run(_link_retroshelf(check_base_url(args.base_url or DEFAULT_BASE_URL), args))
        elif args.service == "romm":
            record = asyncio.run(_link_romm(check_base_url(args.url), args))
        else:
            from tagd.integrations.playren import DEFAULT_BASE_URL as PLAYREN_URL
            record = asyncio.run(_link_playren(check_base_url(args.base_url or PLAYREN_URL)))
    except ValueError as exc:
        raise SystemExit(f"tagd: {exc}") from None
    except ServiceError as exc:
        raise service_error(exc) from None
    record.setdefault("linked_at", int(time.time()))
    path = creds.save(args.service, record)
    print(f"linked {args.service}; credentials in {path} (mode 0600). `tagd unlink {args.service}` forgets them.")
    poke_daemon(config)
    return 0


async def _link_retroshelf(base: str, args: argparse.Namespace) -> dict[str, Any]:
    from tagd.integrations.client import ServiceClient
    from tagd.integrations.linking import finish, open_account

    account = open_account(ServiceClient, base)
    try:
        code = await account.device_code(args.client_id)
        url = code.verification_uri_complete or code.verification_uri
        print(f"To link tagd with retroshelf, open {code.verification_uri}\nand enter the code:  {code.user_code}\n")
        show_qr(url)
        print(f"(the code expires in {int(code.expires_in // 60)} min; waiting…)", flush=True)
        return await finish(account, args.client_id, code, args.device_name)
    finally:
        await account.http.aclose()


async def _link_romm(base: str, args: argparse.Namespace) -> dict[str, Any]:
    from tagd.integrations.accounts import Romm
    from tagd.integrations.client import ServiceClient

    http = ServiceClient("RomM")
    try:
        if args.username:
            record = await Romm.login(http, base, args.username, ask_secret(f"RomM password for {args.username}: "))
            record["auth"] = "password"
        else:
            token = ask_secret("RomM client token (rmm_…, from RomM's user settings): ")
            if not token.startswith("rmm_"):
                raise SystemExit("tagd: a RomM client token starts with rmm_ (or use --username to log in)")
            record = {"url": base, "access_token": token, "auth": "client token"}
        account = Romm(http, base, record)
        await account.platforms()  # proves the URL and the credentials before they are stored
        return account.record
    finally:
        await http.aclose()


async def _link_playren(base: str) -> dict[str, Any]:
    from tagd.integrations.accounts import PlayRen
    from tagd.integrations.client import ServiceClient

    key = ask_secret("PlayRen partner API key: ")
    account = PlayRen(ServiceClient("PlayRen"), base, key)
    try:
        await account.games()  # proves the key before it is stored
    finally:
        await account.http.aclose()
    return {"base_url": base, "key": key}


def cmd_unlink(args: argparse.Namespace) -> int:
    config = load(args)
    if credentials(config).delete(args.service):
        print(f"unlinked {args.service}: its credentials are deleted"
              + ("; queued play sessions stay queued until you link again" if args.service == "retroshelf" else ""))
        poke_daemon(config)
    else:
        print(f"{args.service} was not linked")
    return 0


# --- sessions ------------------------------------------------------------------------------------


def cmd_sessions(args: argparse.Namespace) -> int:
    from tagd.integrations.store import session_json

    config = load(args)
    store = open_store(config)
    try:
        if args.action == "retry":
            n = store.retry(args.ids or None)
            print(f"{n} session(s) back in the queue")
            poke_daemon(config)
            return 0
        if args.ids:
            raise SystemExit("tagd: session ids go with `tagd sessions retry ID…`")
        rows = store.sessions(args.status, max(1, args.limit))
        counts = store.counts()
    finally:
        store.close()
    if args.json:
        for row in rows:
            print(json.dumps(session_json(row), ensure_ascii=False))
        return 0
    for row in rows:
        s = session_json(row)
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(s["devicePlayedAt"]))
        length = f"{s['duration'] // 60}m{s['duration'] % 60:02d}s" if s["duration"] is not None else "playing"
        extra = f"  {s['error']}" if s.get("error") else (f"  → {s['gameName']}" if s.get("gameName") else "")
        print(f"{s['id']:>6}  {when}  {length:>9}  {s['status']:<8} {s['platformHint'] or '-':<8} "
              f"{s['romName'] or s['romPath']}{extra}")
    print(f"pending {counts['pending']}, failed {counts['failed']}, synced {counts['synced']}", file=sys.stderr)
    return 0


# --- RomM catalog --------------------------------------------------------------------------------------


def romm_account(config: Any) -> Any:
    from tagd.integrations.accounts import Romm
    from tagd.integrations.client import ServiceClient

    creds = credentials(config)
    record = creds.load("romm")
    if not record:
        raise SystemExit("tagd: RomM is not linked (tagd link romm --url URL)")
    return Romm(ServiceClient("RomM"), record["url"], record, lambda rec: creds.save("romm", rec))


async def _sync(config: Any, store: Any, full: bool) -> int:
    from tagd.integrations.catalog import sync_catalog

    account = romm_account(config)
    try:
        return await sync_catalog(account, store, full=full)
    finally:
        await account.http.aclose()


def cmd_romm_sync(args: argparse.Namespace) -> int:
    from tagd.integrations.http import ServiceError

    config = load(args)
    store = open_store(config)
    try:
        n = asyncio.run(_sync(config, store, args.full))
        print(f"{n} ROM(s) new or changed; {store.rom_count()} in the local catalog")
    except ServiceError as exc:
        raise service_error(exc) from None
    finally:
        store.close()
    return 0


def cmd_romm_search(args: argparse.Namespace) -> int:
    from tagd.integrations.http import ServiceError

    config = load(args)
    store = open_store(config)
    try:
        if store.rom_count() == 0:
            asyncio.run(_sync(config, store, False))
        rows = store.roms(args.text, args.platform or "", limit=200)
    except ServiceError as exc:
        raise service_error(exc) from None
    finally:
        store.close()
    for r in rows:
        if args.json:
            print(json.dumps(r, ensure_ascii=False))
        else:
            print(f"{r['id']:>7}  {r['platform_slug']:<10} {r['name'] or r['fs_name_no_ext']}  ({r['fs_name']})")
    if not rows:
        print("no ROM matches", file=sys.stderr)
        return 1
    return 0
