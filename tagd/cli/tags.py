"""`tagd decode` and `tagd fixture make`: dump files ↔ tokens, with no reader involved."""

from __future__ import annotations

import argparse
import hashlib
import json
import sys

KINDS = ("ntag213", "ntag215", "ntag216", "ultralight", "classic1k", "classic4k")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("decode", help="decode tag dump files to Token JSON, one line per file")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument("--all", action="store_true", help="add kind, capacity, records and errors")
    p.set_defaults(func=cmd_decode)

    fx = sub.add_parser("fixture", help="make tag dump files")
    fsub = fx.add_subparsers(dest="fixture_command", metavar="ACTION", required=True)
    mk = fsub.add_parser("make", help="make a dump of a tag holding one NDEF record")
    mk.add_argument("--kind", choices=KINDS, required=True)
    what = mk.add_mutually_exclusive_group(required=True)
    what.add_argument("--text", help="a Text record (UTF-8, lang en)")
    what.add_argument("--uri", help="a URI record")
    mk.add_argument("--uid", help="UID in hex (7 bytes for NTAG/Ultralight, 4 for Classic); default: derived from the content")
    mk.add_argument("--format", choices=("nfc", "json", "bin", "mfd"), help="default: from the -o extension, else nfc")
    mk.add_argument("-o", "--output", required=True, metavar="FILE")
    mk.set_defaults(func=cmd_fixture_make)


def cmd_decode(args: argparse.Namespace) -> int:
    from tagd.ndef.decode import decode_dump
    from tagd.ndef.dumps import DumpError, load

    status = 0
    for path in args.files:
        try:
            decoded = decode_dump(load(path))
        except DumpError as exc:
            print(f"tagd decode: {exc}", file=sys.stderr)
            status = 2
            continue
        out = decoded.to_token(source=path).to_json()
        if args.all:
            out.update(decoded.summary(), file=path)
        print(json.dumps(out, ensure_ascii=False), flush=True)
    return status


def make_dump(kind: str, message: bytes, uid: bytes | None = None):  # -> TagDump
    """A dump of a fresh tag of ``kind`` holding ``message``, written with the same plan a reader uses."""
    from tagd.ndef import classic, type2
    from tagd.ndef.dumps import loads

    if kind.startswith("classic"):
        uid = uid or hashlib.sha256(message).digest()[:4]
        image = classic.blank_image(kind, uid)
        image = classic.apply_writes(image, classic.plan_write(image, message))
    else:
        uid = uid or b"\x04" + hashlib.sha256(message).digest()[:6]
        image = type2.blank_image(kind, uid)
        version = type2.TYPE2_KINDS[kind].version
        image = type2.apply_writes(image, type2.plan_write(image, message, version))
    dump = loads(image, "<fixture>")
    if not kind.startswith("classic"):
        dump.version = type2.TYPE2_KINDS[kind].version
        dump.kind = kind
    return dump


def cmd_fixture_make(args: argparse.Namespace) -> int:
    from tagd.ndef import dumps, records
    from tagd.ndef.classic import ClassicError
    from tagd.ndef.type2 import Type2Error

    try:
        message = records.text_message(args.text) if args.text is not None else records.uri_message(args.uri)
        uid = bytes.fromhex(args.uid.replace(":", "")) if args.uid else None
        dump = make_dump(args.kind, message, uid)
        dumps.save(dump, args.output, args.format)
    except (ValueError, Type2Error, ClassicError, OSError) as exc:
        print(f"tagd fixture make: {exc}", file=sys.stderr)
        return 2
    print(args.output)
    return 0
