"""`tagd decode` and `tagd fixture make`: dump files ↔ tokens, with no reader involved.

`decode` is how a user checks what tagd would send for a tag they dumped with a Flipper or a
Proxmark3; `fixture make` writes the dumps that tests, the emulators and the demo use, through the
same write plans a reader uses, so a fixture is exactly what tagd would leave on a real tag.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tagd.ndef.dumps import TagDump

KINDS = ("ntag203", "ntag213", "ntag215", "ntag216", "ultralight", "ultralight_ev1", "classicmini", "classic1k", "classic4k",
         "felica")
FORMATS = ("nfc", "json", "bin", "mfd", "eml")  # tagd.ndef.dumps.FORMATS, without importing it for --help


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("decode", help="decode tag dump files to Token JSON, one line per file",
                       description="Print one Zaparoo Token JSON object per dump file (Flipper .nfc, Proxmark3 "
                                   "JSON (FeliCa too), .eml and .bin, raw .bin, libnfc .mfd; detected from the content). A directory stands "
                                   "for the files in it. Exit status 2 if any file could not be read.")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument("--all", action="store_true", help="add file, kind, capacity, read_only, records, errors and notes")
    p.add_argument("--key", action="append", default=[], metavar="HEX",
                   help="a MIFARE Classic key A the reader is configured with (its `keys` option), so that "
                        "sectors it opens decode as a tap would; repeatable")
    p.set_defaults(func=cmd_decode)

    fx = sub.add_parser("fixture", help="make tag dump files")
    fsub = fx.add_subparsers(dest="fixture_command", metavar="ACTION", required=True)
    mk = fsub.add_parser("make", help="make a dump of a tag holding one NDEF record",
                         description="felica: a FeliCa Lite-S holding the record (NFC Forum Type 3), or with "
                                     "--no-ndef a FeliCa Standard card known by its IDm alone (an arcade access "
                                     "card); .json: Proxmark3 FeliCa JSON, .nfc: a Flipper FeliCa file.")
    mk.add_argument("--kind", choices=KINDS, required=True)
    what = mk.add_mutually_exclusive_group(required=True)
    what.add_argument("--text", help="a Text record (UTF-8, lang en), e.g. a ZapScript")
    what.add_argument("--uri", help="a URI record")
    what.add_argument("--no-ndef", action="store_true", help="felica only: a card whose memory needs keys")
    mk.add_argument("--uid", help="UID in hex, ':' allowed (7 bytes for NTAG/Ultralight, 4 for Classic, "
                                  "the 8-byte IDm for FeliCa); "
                                  "default: derived from the content, so fixtures are reproducible")
    mk.add_argument("--format", choices=FORMATS, help="default: from the -o extension, else nfc")
    mk.add_argument("-o", "--output", required=True, metavar="FILE")
    mk.set_defaults(func=cmd_fixture_make)


def _expand(paths: list[str]) -> list[str]:
    """A directory argument stands for its files (sorted, not recursive), so `tagd decode fixtures/bad` works."""
    out: list[str] = []
    for path in paths:
        if os.path.isdir(path):
            out += sorted(os.path.join(path, n) for n in os.listdir(path) if os.path.isfile(os.path.join(path, n)))
        else:
            out.append(path)
    return out


def _keys(values: list[str]) -> list[bytes] | None:
    keys = []
    for v in values:
        try:
            key = bytes.fromhex(v.replace(":", ""))
        except ValueError:
            key = b""
        if len(key) != 6:
            print(f"tagd decode: --key {v!r}: a MIFARE key is 6 bytes in hex, e.g. a0a1a2a3a4a5", file=sys.stderr)
            return None
        keys.append(key)
    return keys


def cmd_decode(args: argparse.Namespace) -> int:
    """One Token JSON line per readable file; the dump's notes (what was odd but read anyway) go to stderr
    as warnings; exit 2 if any file is not a tag dump tagd can read, naming it and why."""
    from tagd.ndef.decode import decode_dump
    from tagd.ndef.dumps import DumpError, load

    keys = _keys(args.key)
    if keys is None:
        return 2
    status = 0
    for path in _expand(args.files):
        try:
            decoded = decode_dump(load(path), keys)
        except DumpError as exc:
            print(f"tagd decode: {exc}", file=sys.stderr, flush=True)
            status = 2
            continue
        except Exception as exc:  # a gap in the decoder must still name the file, never print a traceback
            print(f"tagd decode: {path}: cannot decode ({exc.__class__.__name__}: {exc})", file=sys.stderr, flush=True)
            status = 2
            continue
        for note in decoded.notes:
            print(f"tagd decode: {path}: warning: {note}", file=sys.stderr, flush=True)
        out = decoded.to_token(source=path).to_json()
        if args.all:
            out.update(file=path, kind=decoded.kind, capacity=decoded.capacity, read_only=decoded.read_only,
                       records=decoded.records, errors=decoded.errors, notes=decoded.notes)
        print(json.dumps(out, ensure_ascii=False), flush=True)
    return status


def default_uid(kind: str, message: bytes) -> bytes:
    """A UID derived from the message: fixtures are reproducible, and different texts get different UIDs.
    Type 2 UIDs start with NXP's manufacturer code 04, as real NTAGs do."""
    digest = hashlib.sha256(message).digest()
    if kind == "felica":  # an IDm: a 2-byte manufacturer code, then 6 bytes
        return b"\x01\x2e" + digest[:6]
    return digest[:4] if kind.startswith("classic") else b"\x04" + digest[:6]


def make_dump(kind: str, message: bytes | None, uid: bytes | None = None) -> TagDump:
    """A dump of a fresh tag of ``kind`` holding ``message``, written with the same plan a reader uses.
    ``None``: a FeliCa card with no readable memory (tagd.ndef.felica.lite_s_dump)."""
    from tagd.ndef import classic, felica, type2
    from tagd.ndef.dumps import classic_dump, type2_dump

    uid = uid or default_uid(kind, message or b"")
    if kind == felica.KIND:
        return felica.lite_s_dump(uid, message)
    if message is None:
        raise ValueError(f"--no-ndef makes FeliCa cards only, not {kind}")
    if kind.startswith("classic"):
        image = classic.blank_image(kind, uid)
        return classic_dump(classic.apply_writes(image, classic.plan_write(image, message)))
    version = type2.TYPE2_KINDS[kind].version
    image = type2.blank_image(kind, uid)
    image = type2.apply_writes(image, type2.plan_write(image, message, version))
    dump = type2_dump(image, version)
    dump.kind = kind  # a plain Ultralight has no GET_VERSION; say what it is
    return dump


def cmd_fixture_make(args: argparse.Namespace) -> int:
    from tagd.ndef import dumps, records
    from tagd.ndef.classic import ClassicError
    from tagd.ndef.tlv import TlvError
    from tagd.ndef.type2 import Type2Error

    try:
        if args.no_ndef:
            message = None
        else:
            message = records.text_message(args.text) if args.text is not None else records.uri_message(args.uri)
        uid = None
        if args.uid:
            try:
                uid = bytes.fromhex(args.uid.replace(":", ""))
            except ValueError:
                raise ValueError(f"--uid {args.uid!r} is not hex") from None
        dump = make_dump(args.kind, message, uid)
        fmt = args.format or dumps.format_for_path(args.output)
        if fmt == "mfd" and not args.kind.startswith("classic"):
            raise ValueError(f"the .mfd format holds MIFARE Classic cards only, not {args.kind}; use .bin")
        dumps.save(dump, args.output, fmt)
    except (ValueError, Type2Error, ClassicError, TlvError, OSError) as exc:
        print(f"tagd fixture make: {exc}", file=sys.stderr)
        return 2
    print(args.output)
    return 0
