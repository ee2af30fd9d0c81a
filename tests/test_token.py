import re

from tagd.token import Token, format_scan_time, normalize_uid, reader_id


def test_reader_id_matches_zaparoo_vector():
    assert reader_id("pn532", "1-2.3.1") == "pn532-ujqixjv6"


def test_reader_id_lowercases_driver_and_path_and_flips_backslashes():
    assert reader_id("PN532", "1-2.3.1") == "pn532-ujqixjv6"
    assert reader_id("file", "C:\\Tags\\A") == reader_id("file", "c:/tags/a")
    assert reader_id("file", "/a") != reader_id("file", "/b")


def test_normalize_uid_trims_lowercases_and_drops_colons():
    assert normalize_uid("  04:16:C6:C2:D7:38:81 ") == "0416c6c2d73881"


def test_normalize_uid_drops_inner_spaces_as_the_api_document_says():
    assert normalize_uid("04 16 C6\tC2 D7:38:81") == "0416c6c2d73881"


def test_scan_time_is_rfc3339_with_nanoseconds_and_offset():
    s = format_scan_time(1_700_000_000_123_456_789)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.123456789(Z|[+-]\d\d:\d\d)", s)
    assert "." not in format_scan_time(1_700_000_000_000_000_000)


def test_token_json_has_zaparoo_keys_and_omits_internal_fields():
    t = Token(type="NTAG", uid="04aa", text="**launch.random:snes", data="d1", readerId="pn532-ujqixjv6", source="x")
    j = t.to_json()
    assert set(j) == {"type", "uid", "text", "data", "scanTime", "readerId"}
    assert j["readerId"] == "pn532-ujqixjv6"
    assert "readerId" not in Token(text="a").to_json()


def test_token_key_ignores_uid_formatting():
    assert Token(uid="04:AA", text="x").key == Token(uid="04aa", text="x").key

