"""Mapping semantics exactly as Zaparoo Core's, table-driven from Core's own tests.

Sources (Zaparoo Core, read for facts): ``pkg/database/userdb/mappings_from_config_test.go`` (how a file entry
becomes a mapping), ``pkg/service/mappings_fuzz_test.go`` (the seed cases of ``checkMappingUID`` /
``checkMappingText`` / ``checkMappingData``, with the result Core's code gives each), and
``pkg/config/configmappings_test.go`` (mapping files: token keys, globs, order). Core's rules, in short: only
``token_key`` "value" and "data" pick a field, anything else is the UID; ``/re/`` is a regex searched anywhere;
a pattern with ``*`` loses every ``*`` and is found anywhere; a UID and a UID pattern are trimmed, lower-cased
and lose their colons (a regex pattern is not); the first match wins, database mappings before file ones.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tagd.daemon.mappings import Mapping, MappingError, MappingTable, load_mapping_dir
from tagd.token import Token


def file_mapping(entry: dict) -> Mapping:
    (mapping,) = MappingTable.from_config([{"zapscript": "Z", **entry}])
    return mapping


def hit(mappings: list[Mapping], token: Token) -> bool:
    return MappingTable(mappings).apply(token).text == "Z"


# --- mappings_from_config_test.go: TestMappingsFromConfig -----------------------------------------------------

@pytest.mark.parametrize(("entry", "type_", "match", "pattern"), [
    ({"match_pattern": "exact-value"}, "uid", "exact", "exact-value"),  # no wildcard, no slashes: exact, on the id
    ({"match_pattern": "prefix*"}, "uid", "partial", "prefix"),  # "*" → partial, the asterisk stripped
    ({"match_pattern": "/^abc[0-9]+$/"}, "uid", "regex", "^abc[0-9]+$"),  # "/…/" → regex, the slashes stripped
    ({"token_key": "value", "match_pattern": "hello"}, "text", "exact", "hello"),  # token_key drives the type
    ({"token_key": "data", "match_pattern": "0401"}, "data", "exact", "0401"),
])
def test_a_file_entry_becomes_the_mapping_core_makes_of_it(entry, type_, match, pattern) -> None:
    m = file_mapping(entry)
    assert (m.type, m.match, m.pattern, m.override, m.enabled, m.id) == (type_, match, pattern, "Z", True, None)


# --- which token keys count (Core's switch on TokenKey: "data", "value", default → id) --------------------------

@pytest.mark.parametrize(("token_key", "type_"), [
    ("", "uid"), ("id", "uid"), ("uid", "uid"), ("value", "text"), ("data", "data"),
    ("text", "uid"),  # not the text: Core's config reader knows only "value" for that
    ("Value", "uid"), ("DATA", "uid"),  # compared as written
    ("name", "uid"),  # anything else: the id (tagd logs a warning)
])
def test_only_value_and_data_pick_a_field_other_than_the_uid(token_key: str, type_: str) -> None:
    assert file_mapping({"token_key": token_key, "match_pattern": "x"}).type == type_


# --- globs and regex markers -----------------------------------------------------------------------------------

@pytest.mark.parametrize(("pattern", "match", "value"), [
    ("*mario*", "partial", "mario"),
    ("mario*", "partial", "mario"),  # not a prefix match: found anywhere, as Core's partial
    ("04*ab", "partial", "04ab"),  # every "*" removed, the rest must appear as one piece
    ("*.sfc", "partial", ".sfc"),
    ("//", "exact", "//"),  # two slashes are not a regex (Core needs more than two characters)
    ("/a/", "regex", "a"),
])
def test_match_pattern_forms(pattern: str, match: str, value: str) -> None:
    m = file_mapping({"token_key": "value", "match_pattern": pattern})
    assert (m.match, m.pattern) == (match, value)


@pytest.mark.parametrize(("pattern", "text", "matched"), [
    ("mario*", "super mario world", True),
    ("*snes*launch*", "**launch.system:snes", False),  # "sneslaunch" is not in it
    ("04*ab", "04 ab", False),
    ("04*ab", "x04aby", True),
    ("*", "anything at all", True),  # all stars: Core's contains("") matches every token
    ("*", "", True),
    ("a.c*", "abc", False),  # "." is literal outside a regex
])
def test_a_glob_matches_as_cores_partial(pattern: str, text: str, matched: bool) -> None:
    assert hit([file_mapping({"token_key": "value", "match_pattern": pattern})], Token(text=text)) is matched


def test_a_uid_glob_is_normalised_before_the_stars_go() -> None:
    """configmappings_test.go TestLoadMappings_WithTokenKey: "04:AB:CD:*" with token_key "uid"."""
    m = file_mapping({"token_key": "uid", "match_pattern": "04:AB:CD:*"})
    assert (m.type, m.match, m.pattern) == ("uid", "partial", "04abcd")
    assert hit([m], Token(uid="04:ab:cd:ef:12:34:56"))
    assert hit([m], Token(uid="9904ABCD"))  # anywhere in the uid
    assert not hit([m], Token(uid="04:ab:ce"))
    assert hit([file_mapping({"match_pattern": ":*"})], Token(uid="04"))  # nothing left: matches every uid


# --- mappings_fuzz_test.go seeds, with what Core's check functions return --------------------------------------

@pytest.mark.parametrize(("pattern", "uid", "match", "matched"), [
    ("04:AB:CD:EF", "04:AB:CD:EF", "exact", True),
    ("04AB", "04ABCDEF1234", "partial", True),
    ("^04[A-F0-9]+$", "04ABCDEF", "regex", False),  # the uid is lower-cased, the regex is not
    ("(?i)^04[A-F0-9]+$", "04ABCDEF", "regex", True),
    (".*", "anything", "regex", True),
    ("test", "TEST", "exact", True),  # both normalised
    ("(a+)+$", "aaaaaaaaaaaaaaaaX", "regex", False),  # RE2: linear time, and no match (it ends with x)
    ("^(a|a)*$", "aaaaaaa", "regex", True),
])
def test_core_uid_cases(pattern: str, uid: str, match: str, matched: bool) -> None:
    m = Mapping.build(type="id", match=match, pattern=pattern, override="Z")
    assert hit([m], Token(uid=uid)) is matched


@pytest.mark.parametrize(("pattern", "text", "match", "matched"), [
    ("SNES/Super Metroid.sfc", "SNES/Super Metroid.sfc", "exact", True),
    ("SNES", "SNES/Super Metroid.sfc", "partial", True),
    ("^SNES/.*\\.sfc$", "SNES/Super Metroid.sfc", "regex", True),
    ("**launch", "**launch.system:nes", "partial", True),  # a database mapping's partial: "*" is literal
    ("snes", "SNES/Super Metroid.sfc", "exact", False),  # the text is not normalised
    ("snes", "SNES/Super Metroid.sfc", "partial", False),
])
def test_core_text_cases(pattern: str, text: str, match: str, matched: bool) -> None:
    m = Mapping.build(type="value", match=match, pattern=pattern, override="Z")
    assert hit([m], Token(text=text)) is matched


@pytest.mark.parametrize(("pattern", "data", "match", "matched"), [
    ("payload123", "payload123", "exact", True),
    ("pay", "payload123", "partial", True),
    ("^pay.*\\d+$", "payload123", "regex", True),
    ("PAY", "payload123", "partial", False),
])
def test_core_data_cases(pattern: str, data: str, match: str, matched: bool) -> None:
    m = Mapping.build(type="data", match=match, pattern=pattern, override="Z")
    assert hit([m], Token(data=data)) is matched


def test_a_regex_core_cannot_compile_is_refused_where_core_never_matches_it() -> None:
    """Core logs "error compiling regex" on every tap and matches nothing; tagd says so once, at load."""
    with pytest.raises(MappingError, match="invalid regex"):
        file_mapping({"match_pattern": "/[invalid/"})


# --- order: database first, then the config's entries, then the files as Core walks them ----------------------

def test_the_first_match_wins_database_before_file_entries() -> None:
    db = Mapping.build(type="value", match="partial", pattern="mario", override="from db")
    files = MappingTable.from_config([{"token_key": "value", "match_pattern": "*mario*", "zapscript": "from file"}])
    assert MappingTable.from_sources([db], files).apply(Token(text="mario")).text == "from db"


def test_mapping_files_load_in_cores_walk_order(tmp_path: Path) -> None:
    """configmappings_test.go loads every *.toml under the directory; afero.Walk visits a directory's entries by
    name, a subdirectory where its name sorts ("a" before "a-b.toml", whose "-" sorts before "/")."""
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.toml").write_text('[[mappings.entry]]\nmatch_pattern = "1"\nzapscript = "a/x"\n')
    (tmp_path / "a-b.toml").write_text('[[mappings.entry]]\nmatch_pattern = "2"\nzapscript = "a-b"\n')
    (tmp_path / "B.TOML").write_text('[[mappings.entry]]\nmatch_pattern = "3"\nzapscript = "B"\n')
    (tmp_path / "readme.md").write_text("# not a mapping")
    assert [m.override for m in load_mapping_dir(tmp_path)] == ["B", "a/x", "a-b"]
