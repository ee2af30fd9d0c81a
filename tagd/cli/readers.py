"""`tagd readers | scan | write | dump`: work with a reader directly, no daemon."""

from __future__ import annotations

import argparse
import glob
import json
import queue
import sys

SERIAL_GLOBS = ("/dev/ttyUSB*", "/dev/ttyACM*", "/dev/tagd-*")


FELICA_HELP = "PN532: FeliCa cards too (the reader's felica option: their IDm as the token, NDEF on a Lite-S)"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("readers", help="list configured and detected readers with their readerId")
    p.add_argument("--reader", action="append", default=[], metavar="CONNECT", help="also show this connect string")
    p.set_defaults(func=cmd_readers)

    s = sub.add_parser("scan", help="print a Token JSON line per tap")
    s.add_argument("--reader", metavar="CONNECT", help="e.g. pn532uart:/dev/ttyUSB0 (default: first detected)")
    s.add_argument("--once", action="store_true", help="exit after the first tag")
    s.add_argument("--all", action="store_true", help="add kind, atqa, sak, capacity")
    s.add_argument("--felica", action="store_true", help=FELICA_HELP)
    s.set_defaults(func=cmd_scan)

    w = sub.add_parser("write", help="wait for a tag, write TEXT as an NDEF Text record, verify")
    w.add_argument("text", metavar="TEXT")
    w.add_argument("--reader", metavar="CONNECT")
    w.add_argument("--timeout", type=float, default=30.0)
    w.set_defaults(func=cmd_write)

    d = sub.add_parser("dump", help="record the tag on the reader into a dump file")
    d.add_argument("--reader", metavar="CONNECT")
    d.add_argument("--timeout", type=float, default=30.0)
    d.add_argument("-o", "--output", required=True, metavar="FILE", help=".nfc, .json, .bin or .mfd")
    d.add_argument("--felica", action="store_true", help=FELICA_HELP)
    d.set_defaults(func=cmd_dump)


def detected() -> list[str]:
    """Connect strings of readers found on this machine (serial bridges; PC/SC readers when available)."""
    found = []
    for pattern in SERIAL_GLOBS:
        found += [f"pn532uart:{p}" for p in sorted(glob.glob(pattern))]
    try:
        from tagd.readers.acr122 import list_pcsc_readers
        found += [f"acr122:{name}" for name in list_pcsc_readers()]
    except Exception:
        pass
    return found


def _pick(connect: str | None) -> str:
    if connect:
        return connect
    found = detected()
    if not found:
        raise SystemExit("tagd: no reader found; give one with --reader (e.g. pn532uart:/dev/ttyUSB0)")
    return found[0]


def cmd_readers(args: argparse.Namespace) -> int:
    from tagd.readers.base import open_reader, parse_connect
    from tagd.readers.registry import unavailable
    from tagd.token import reader_id

    for connect in args.reader + detected():
        try:
            reader = open_reader(connect)
        except ValueError as exc:
            print(f"{connect}\t-\t{exc}")
            continue
        driver, path = parse_connect(connect)
        stable = path
        if driver in ("pn532uart", "pn532"):
            from tagd.readers.pn532.reader import usb_topology
            stable, driver = usb_topology(path) or f"pn532uart:{path}", "pn532"
        print(f"{connect}\t{reader_id(driver, stable)}\t{type(reader).__name__}")
    for name, why in sorted(unavailable().items()):
        print(f"# driver {name} unavailable: {why}", file=sys.stderr)
    return 0


def _options(args: argparse.Namespace) -> dict[str, object] | None:
    return {"felica": True} if getattr(args, "felica", False) else None


def _run_worker(connect: str, options: dict[str, object] | None = None):
    from tagd.readers.base import ReaderWorker, open_reader

    events: queue.Queue = queue.Queue()
    try:
        reader = open_reader(connect, options)
    except ValueError as exc:
        raise SystemExit(f"tagd: {exc}")
    return ReaderWorker(reader, events.put).start(), events


def cmd_scan(args: argparse.Namespace) -> int:
    from tagd.readers.base import ReaderFailed, ReaderLost, TagGone, TagSeen

    connect = _pick(args.reader)
    worker, events = _run_worker(connect, _options(args))
    scripted = connect.startswith("replay:")
    try:
        while True:
            ev = events.get()
            if isinstance(ev, TagSeen):
                out = ev.token.to_json()
                if args.all:
                    out.update(ev.detail)
                print(json.dumps(out, ensure_ascii=False), flush=True)
                if args.once:
                    return 0
            elif isinstance(ev, TagGone):
                print(json.dumps({"removed": True}), flush=True)
            elif isinstance(ev, ReaderLost) and args.once and scripted:
                # a replay timeline that cannot play its tag (an unreadable dump) has no first tag to wait for
                print(f"tagd scan: {ev.reason}", file=sys.stderr, flush=True)
                return 2
            elif isinstance(ev, ReaderLost):
                print(f"tagd scan: reader lost ({ev.reason}); retrying", file=sys.stderr, flush=True)
            elif isinstance(ev, ReaderFailed):
                print(f"tagd scan: the reader does not open ({ev.reason}); retrying", file=sys.stderr, flush=True)
    except KeyboardInterrupt:
        return 130
    finally:
        worker.stop()


def cmd_write(args: argparse.Namespace) -> int:
    from tagd.readers.base import ReaderAdded, ReaderFailed, WriteError, WriteRequest

    worker, events = _run_worker(_pick(args.reader))
    try:
        try:
            ev = events.get(timeout=5)
        except queue.Empty:
            print("tagd write: the reader did not open", file=sys.stderr)
            return 1
        if isinstance(ev, ReaderFailed):
            print(f"tagd write: the reader does not open: {ev.reason}", file=sys.stderr)
            return 1
        if not isinstance(ev, ReaderAdded):
            print(f"tagd write: reader not ready: {ev}", file=sys.stderr)
            return 1
        print("waiting for a tag…", file=sys.stderr, flush=True)
        try:
            seen = worker.submit_write(WriteRequest(args.text, timeout=args.timeout)).result(args.timeout + 10)
        except WriteError as exc:
            print(f"tagd write: {exc}", file=sys.stderr)
            return 1
        print(json.dumps(seen.token.to_json(), ensure_ascii=False), flush=True)
        return 0
    finally:
        worker.stop()


def cmd_dump(args: argparse.Namespace) -> int:
    from tagd.ndef.dumps import save
    from tagd.readers.base import ReaderError, open_reader

    reader = open_reader(_pick(args.reader), _options(args))
    if not hasattr(reader, "dump"):
        print(f"tagd dump: the {reader.driver} reader cannot dump tags", file=sys.stderr)
        return 1
    try:
        reader.open()
        dump = reader.dump(args.timeout)
        save(dump, args.output)
    except (ReaderError, OSError, Exception) as exc:
        print(f"tagd dump: {exc}", file=sys.stderr)
        return 1
    finally:
        reader.close()
    print(args.output)
    return 0
