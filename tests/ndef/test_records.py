import json

import ndef
import pytest
from hypothesis import given, strategies as st

from tagd.ndef.records import NdefError, describe, message_to_text, text_message, uri_message


def enc(*records):
    return b"".join(ndef.message_encoder(list(records)))


def test_text_record_gives_its_text():
    assert message_to_text(text_message("**launch.system:snes")) == "**launch.system:snes"


def test_utf16_text_record_gives_its_text():
    assert message_to_text(enc(ndef.TextRecord("ゼルダ", "ja", "UTF-16"))) == "ゼルダ"


@pytest.mark.parametrize("uri", ["https://zaparoo.org/x", "http://www.a.b", "tel:+123", "mailto:a@b.c",
                                 "urn:nfc:ext:x", "file:///tmp/x", "steam://run/1"])
def test_uri_record_gives_the_full_uri(uri):
    assert message_to_text(uri_message(uri)) == uri


def test_first_record_decides():
    assert message_to_text(enc(ndef.TextRecord("first"), ndef.UriRecord("https://second"))) == "first"


def test_empty_message_is_empty_text():
    assert message_to_text(b"") == ""


def test_smartposter_is_stable_sorted_json():
    text = message_to_text(enc(ndef.SmartposterRecord("https://a.b", title="T")))
    assert json.loads(text) == {"type": "smartposter", "uri": "https://a.b", "titles": {"en": "T"}}
    assert text == json.dumps(json.loads(text), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def test_unknown_type_is_described_with_hex_payload():
    text = message_to_text(enc(ndef.Record("application/x-game", "id1", b"\x01\x02")))
    assert json.loads(text) == {"type": "unknown", "recordType": "application/x-game", "id": "id1", "payload": "0102"}


def test_vcard_is_described():
    assert json.loads(message_to_text(enc(ndef.Record("text/vcard", "", b"BEGIN:VCARD"))))["vcard"] == "BEGIN:VCARD"


def _wsc(attr, value):
    return attr.to_bytes(2, "big") + len(value).to_bytes(2, "big") + value


def test_wifi_record_is_described():
    cred = (_wsc(0x1026, b"\x01") + _wsc(0x1045, b"arcade") + _wsc(0x1003, b"\x00\x20")
            + _wsc(0x100F, b"\x00\x08") + _wsc(0x1027, b"secret") + _wsc(0x1020, b"\xff" * 6))
    payload = _wsc(0x104A, b"\x10") + _wsc(0x100E, cred)
    d = json.loads(message_to_text(enc(ndef.Record("application/vnd.wfa.wsc", "", payload))))
    assert d["type"] == "wifi" and d["ssid"] == "arcade"


def test_malformed_message_raises_ndeferror():
    with pytest.raises(NdefError):
        message_to_text(b"\xd1\x01\x09T\x02en")


@given(st.text(max_size=500))
def test_ndeflib_encoded_text_parses_identically(text):
    assert message_to_text(enc(ndef.TextRecord(text, "en", "UTF-8"))) == text
    assert message_to_text(text_message(text)) == text


@given(st.binary(max_size=300))
def test_random_bytes_give_text_or_ndeferror(data):
    try:
        assert isinstance(message_to_text(data), str)
        describe(data)
    except NdefError:
        pass


URI_PREFIXES = ["", "http://www.", "https://www.", "http://", "https://", "tel:", "mailto:",
                "ftp://anonymous:anonymous@", "ftp://ftp.", "ftps://", "sftp://", "smb://", "nfs://", "ftp://",
                "dav://", "news:", "telnet://", "imap:", "rtsp://", "urn:", "pop:", "sip:", "sips:", "tftp:",
                "btspp://", "btl2cap://", "btgoep://", "tcpobex://", "irdaobex://", "file://", "urn:epc:id:",
                "urn:epc:tag:", "urn:epc:pat:", "urn:epc:raw:", "urn:epc:", "urn:nfc:"]


@pytest.mark.parametrize("code", range(0x24))
def test_every_uri_prefix_code_is_expanded(code):
    raw = bytes([0xD1, 0x01, 2, 0x55, code]) + b"x"  # hand-built: independent of ndeflib's own table
    assert message_to_text(raw) == URI_PREFIXES[code] + "x"


def test_nfc_forum_empty_record_is_empty_text():
    assert message_to_text(bytes.fromhex("D00000")) == ""


def test_text_message_is_one_utf8_text_record_in_english():
    assert text_message("test") == bytes.fromhex("D101075402656E74657374")


def test_records_after_a_smart_poster_keep_their_types():
    # ndeflib 0.3 decodes known types after a Smart Poster as plain Records; describe() must not care
    got = describe(enc(ndef.SmartposterRecord("https://a.b"), ndef.TextRecord("t"), ndef.SmartposterRecord("https://c.d")))
    assert [r["type"] for r in got] == ["smartposter", "text", "smartposter"] and got[2]["uri"] == "https://c.d"
