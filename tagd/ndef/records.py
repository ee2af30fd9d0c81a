"""NDEF messages ↔ token text, with ndeflib doing the record encoding.

The first record of a message decides the token text, as Zaparoo Core does:

- Text record → its text (UTF-8 or UTF-16, any language);
- URI record → the full URI, prefix code expanded (the whole 0x00–0x23 table); trailing NUL bytes, which
  some writing apps pad the record with, are stripped (with a note) instead of making the record invalid;
- anything else → a stable JSON description with sorted keys, so a mapping can match it and two
  reads of the same tag give the same text (Wi-Fi, vCard, Smart Poster, unknown types with hex payload);
- an empty message (no bytes, or the single empty record ``D0 00 00``) → "".
"""

from __future__ import annotations

import json
from typing import Any

import ndef

TEXT_TYPE = "urn:nfc:wkt:T"
URI_TYPE = "urn:nfc:wkt:U"
SMARTPOSTER_TYPE = "urn:nfc:wkt:Sp"
WIFI_TYPE = "application/vnd.wfa.wsc"
VCARD_TYPES = ("text/vcard", "text/x-vcard")


class NdefError(ValueError):
    """A message that is not valid NDEF."""


def _records(message: bytes) -> tuple[list[Any], list[str]]:
    """The typed records and notes on what was repaired. Records are first split without decoding their
    payloads, so a URI padded with NULs can be trimmed before ndeflib judges its characters."""
    notes: list[str] = []
    try:
        raw = list(ndef.message_decoder(bytes(message), errors="strict", known_types={}))
        for i, r in enumerate(raw):
            if r.type == URI_TYPE and r.data.endswith(b"\0"):
                trimmed = bytes(r.data).rstrip(b"\0")
                notes.append(f"record {i + 1}: URI padded with {len(r.data) - len(trimmed)} NUL bytes (stripped)")
                raw[i] = ndef.Record(r.type, r.name, trimmed)
        return [_typed(r) for r in raw], notes
    except (ndef.DecodeError, ValueError, TypeError, KeyError, IndexError, UnicodeError) as exc:
        raise NdefError(f"invalid NDEF message: {exc}") from None


def _typed(record: Any) -> Any:
    """The record as its own class. ndeflib 0.3 forgets its known types after decoding a Smart Poster, so
    a later record of a known type comes back as a plain Record; decoding it on its own fixes that."""
    if type(record) is not ndef.Record or not record.type:
        return record
    return next(iter(ndef.message_decoder(b"".join(ndef.message_encoder([record])), errors="strict")))


def _wifi_name(value: Any) -> str:
    """ndeflib gives Wi-Fi authentication/encryption types as ``(code, name, …)``: the names, joined by
    '+' when a value combines several (WPA/WPA2 mixed mode), or the hex code when none is known."""
    code, names = (value[0], value[1:]) if isinstance(value, tuple) and value else (value, ())
    names = [str(n) for n in names if n]
    return "+".join(names) if names else f"0x{int(code):04X}"


def _describe_record(record: Any) -> dict[str, Any]:
    rtype = record.type
    if rtype == "" and not record.data:  # TNF 0: the NFC Forum "empty NDEF message" D0 00 00
        return {"type": "empty"}
    if rtype == TEXT_TYPE:
        return {"type": "text", "text": record.text, "language": record.language, "encoding": record.encoding}
    if rtype == URI_TYPE:
        return {"type": "uri", "uri": record.iri}
    if rtype == SMARTPOSTER_TYPE:
        out: dict[str, Any] = {"type": "smartposter", "uri": record.resource.iri}
        if record.titles:
            out["titles"] = dict(record.titles)
        if record.action is not None:
            out["action"] = str(record.action)
        return out
    if rtype == WIFI_TYPE:
        out = {"type": "wifi"}
        try:
            cred = record.get_attribute("credential", 0)
            out["ssid"] = bytes(cred.get_attribute("ssid").value).decode("utf-8", "replace")
            out["auth"] = _wifi_name(cred.get_attribute("authentication-type").value)
            out["encryption"] = _wifi_name(cred.get_attribute("encryption-type").value)
        except Exception:  # a malformed credential still gets a stable description
            out["payload"] = bytes(record.data).hex()
        return out
    if rtype in VCARD_TYPES:
        return {"type": "vcard", "vcard": bytes(record.data).decode("utf-8", "replace")}
    return {"type": "unknown", "recordType": rtype, "id": record.name, "payload": bytes(record.data).hex()}


def describe_with_notes(message: bytes) -> tuple[list[dict[str, Any]], list[str]]:
    """Every record of a message as a plain dict (for `tagd decode --all` and logs), and notes on what
    had to be repaired to read them."""
    try:
        records, notes = _records(message)
        return [_describe_record(r) for r in records], notes
    except NdefError:
        raise
    except Exception as exc:  # ndeflib raising from a property on odd input
        raise NdefError(f"invalid NDEF record: {exc}") from None


def describe(message: bytes) -> list[dict[str, Any]]:
    return describe_with_notes(message)[0]


def message_to_text(message: bytes) -> str:
    """The token text of an NDEF message (see the module docstring)."""
    return records_to_text(describe(message)) if message else ""


def records_to_text(records: list[dict[str, Any]]) -> str:
    """The token text of described records: the first record decides."""
    if not records:
        return ""
    rec = records[0]
    if rec["type"] == "empty":
        return ""
    if rec["type"] == "text":
        return str(rec["text"])
    if rec["type"] == "uri":
        return str(rec["uri"])
    return json.dumps(rec, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def text_message(text: str, lang: str = "en") -> bytes:
    """A message of one Text record (UTF-8), as Zaparoo writes ZapScript."""
    try:
        return b"".join(ndef.message_encoder([ndef.TextRecord(text, lang, "UTF-8")]))
    except (ndef.EncodeError, ValueError) as exc:
        raise NdefError(f"cannot encode text record: {exc}") from None


def uri_message(uri: str) -> bytes:
    """A message of one URI record (prefix compressed)."""
    try:
        return b"".join(ndef.message_encoder([ndef.UriRecord(uri)]))
    except (ndef.EncodeError, ValueError) as exc:
        raise NdefError(f"cannot encode URI record: {exc}") from None
