"""Mappings: Zaparoo's types, matches and order; RE2 regexes; mapping files; 10,000 mappings at constant cost."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tagd.daemon.mappings import (
    Mapping,
    MappingError,
    MappingTable,
    load_mapping_dir,
    load_mapping_file,
)
from tagd.token import Token


def mapping(type_: str, match: str, pattern: str, override: str = "OUT", **kw) -> Mapping:
    return Mapping.build(type=type_, match=match, pattern=pattern, override=override, **kw)


NTAG = Token(uid="04:16:C6:C2:D7:38:81", text="**launch.system:snes", data="d1010754")


@pytest.mark.parametrize(
    "type_, match, pattern, hit",
    [
        ("uid", "exact", "0416c6c2d73881", True),
        ("uid", "exact", " 04:16:C6:C2:D7:38:81 ", True),  # the pattern is normalised like the uid
        ("uid", "exact", "0416c6c2d738", False),
        ("uid", "partial", "C6:C2", True),
        ("uid", "regex", "^0416", True),
        ("uid", "regex", "^04:16", False),  # regexes see the normalised uid and are not normalised
        ("text", "exact", "**launch.system:snes", True),
        ("text", "exact", "**launch.system:SNES", False),
        ("text", "partial", "system:", True),
        ("text", "regex", r"system:(snes|nes)$", True),
        ("data", "exact", "d1010754", True),
        ("data", "partial", "0107", True),
        ("data", "regex", "^d1", True),
        ("data", "regex", "^ff", False),
    ],
)
def test_each_type_and_match(type_: str, match: str, pattern: str, hit: bool) -> None:
    table = MappingTable([mapping(type_, match, pattern)])
    assert (table.match(NTAG) is not None) is hit
    assert table.apply(NTAG).text == ("OUT" if hit else NTAG.text)


def test_regex_search_is_unanchored() -> None:
    assert MappingTable([mapping("text", "regex", "snes")]).match(NTAG) is not None


def test_regex_uses_go_re2_syntax() -> None:
    t = Token(text="Ωmega")
    assert MappingTable([mapping("text", "regex", r"^\p{Greek}")]).match(t) is not None


@pytest.mark.parametrize("alias, canonical", [("id", "uid"), ("value", "text"), ("UID", "uid"), ("data", "data")])
def test_type_aliases(alias: str, canonical: str) -> None:
    assert mapping(alias, "exact", "x").type == canonical


def test_disabled_mappings_never_match() -> None:
    assert MappingTable([mapping("text", "partial", "snes", enabled=False)]).match(NTAG) is None


def test_first_match_in_creation_order_wins_among_exact() -> None:
    table = MappingTable([mapping("text", "exact", NTAG.text, "first"), mapping("uid", "exact", NTAG.uid, "second")])
    assert table.apply(NTAG).text == "first"


def test_an_earlier_regex_beats_a_later_exact_index_hit() -> None:
    table = MappingTable([mapping("text", "regex", "snes", "regex"), mapping("uid", "exact", NTAG.uid, "exact")])
    assert table.apply(NTAG).text == "regex"


def test_an_earlier_exact_hit_beats_a_later_regex_without_evaluating_it() -> None:
    table = MappingTable([mapping("uid", "exact", NTAG.uid, "exact"), mapping("text", "regex", "snes", "regex")])
    assert table.apply(NTAG).text == "exact"
    assert table.evaluations == 0


def test_a_non_matching_earlier_regex_does_not_hide_a_later_exact_hit() -> None:
    table = MappingTable([mapping("text", "regex", "^nope", "regex"), mapping("uid", "exact", NTAG.uid, "exact")])
    assert table.apply(NTAG).text == "exact"


@pytest.mark.parametrize(
    "fields, field, reason",
    [
        (dict(type="id", match="regex", pattern="a(b", override="x"), "pattern", "invalid regex: missing ): a(b"),
        (dict(type="text", match="regex", pattern="(?<=a)b", override="x"), "pattern", "invalid perl operator"),
        (dict(type="name", match="exact", pattern="a", override="x"), "type", "must be uid, text or data"),
        (dict(type="text", match="glob", pattern="a", override="x"), "match", "must be exact, partial or regex"),
        (dict(type="text", match="exact", pattern="", override="x"), "pattern", "must not be empty"),
        (dict(type="text", match="exact", pattern="a"), "override", "is required"),
        (dict(type="text", match="exact", pattern="a", override="x", colour="red"), "colour", "unknown field"),
    ],
)
def test_bad_mapping_input_is_a_clear_mapping_error(fields: dict, field: str, reason: str) -> None:
    with pytest.raises(MappingError) as info:
        MappingTable.validate(**fields)
    assert info.value.field == field and reason in info.value.reason


def test_mapping_json_is_zaparoos_shape() -> None:
    m = mapping("id", "exact", "04ab", label="mario").model_copy(update={"id": 7})
    j = m.to_json()
    assert j["id"] == "7" and j["type"] == "uid" and j["label"] == "mario"
    assert set(j) == {"id", "added", "label", "enabled", "type", "match", "pattern", "override"}


# --- mapping files --------------------------------------------------------------


@pytest.mark.parametrize(
    "entry, token, hit",
    [
        ({"token_key": "", "match_pattern": "04:16:c6:c2:d7:38:81"}, NTAG, True),
        ({"match_pattern": "04:16:C6*"}, NTAG, True),
        ({"token_key": "value", "match_pattern": "*system*"}, NTAG, True),
        ({"token_key": "value", "match_pattern": "*launch.sys*"}, NTAG, True),
        ({"token_key": "value", "match_pattern": "**launch*snes"}, NTAG, False),  # Core: "launchsnes", not in it
        ({"token_key": "value", "match_pattern": "/^\\*\\*launch/"}, NTAG, True),
        ({"token_key": "data", "match_pattern": "d1010754"}, NTAG, True),
        ({"token_key": "value", "match_pattern": "a.c*"}, Token(text="abc"), False),  # '.' is literal in a wildcard
    ],
)
def test_mapping_file_entries(entry: dict, token: Token, hit: bool) -> None:
    table = MappingTable(MappingTable.from_config([{**entry, "zapscript": "Z"}]))
    assert (table.apply(token).text == "Z") is hit


def test_bad_mapping_file_entry_names_the_entry() -> None:
    with pytest.raises(MappingError, match="config entry 2: pattern: invalid regex"):
        MappingTable.from_config([{"match_pattern": "x", "zapscript": "z"}, {"match_pattern": "/(/", "zapscript": "z"}])


def test_mapping_files_load_in_name_order(tmp_path: Path) -> None:
    (tmp_path / "b.toml").write_text('[[mappings.entry]]\nmatch_pattern = "04ab"\nzapscript = "from b"\n')
    (tmp_path / "a.toml").write_text('[[mappings.entry]]\nmatch_pattern = "04AB"\nzapscript = "from a"\n')
    (tmp_path / "notes.txt").write_text("ignored")
    ms = load_mapping_dir(tmp_path)
    assert [m.override for m in ms] == ["from a", "from b"]
    assert MappingTable(ms).apply(Token(uid="04:ab")).text == "from a"


def test_unreadable_mapping_file_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[[mappings.entry]\n")
    with pytest.raises(MappingError) as info:
        load_mapping_file(bad)
    assert str(bad) in str(info.value)


def test_missing_mapping_dir_gives_no_mappings(tmp_path: Path) -> None:
    assert load_mapping_dir(tmp_path / "none") == []


def test_database_mappings_come_before_file_mappings() -> None:
    db = [mapping("uid", "exact", NTAG.uid, "db")]
    files = MappingTable.from_config([{"match_pattern": NTAG.uid, "zapscript": "file"}])
    assert MappingTable.from_sources(db, files).apply(NTAG).text == "db"


# --- scale ---------------------------------------------------------------------


def test_ten_thousand_exact_mappings_match_without_scanning() -> None:
    ms = [mapping("uid", "exact", f"04{n:012x}", f"game {n}") for n in range(10_000)]
    ms += [mapping("text", "exact", f"card {n}", f"text {n}") for n in range(5_000)]
    table = MappingTable(ms)
    assert table.apply(Token(uid=f"04{9_999:012x}")).text == "game 9999"
    assert table.apply(Token(text="card 4321")).text == "text 4321"
    assert table.match(Token(uid="ffff")) is None
    assert table.evaluations == 0  # dict lookups only: no pattern was evaluated


def test_exact_hit_stops_the_scan_of_later_regexes() -> None:
    ms = [mapping("uid", "exact", f"04{n:012x}", f"game {n}") for n in range(10_000)]
    ms += [mapping("text", "regex", f"^never{n}$") for n in range(1_000)]
    table = MappingTable(ms)
    table.apply(Token(uid=f"04{5:012x}"))
    assert table.evaluations == 0
    table.match(Token(uid="no such uid"))
    assert table.evaluations == 1_000  # a miss has to try each regex once


@given(st.lists(st.tuples(st.sampled_from(["uid", "text", "data"]), st.sampled_from(["exact", "partial", "regex"]),
                          st.sampled_from(["04ab", "ab", "mario", "^m", "a", "d1"])), max_size=12),
       st.sampled_from(["04ab", "04:AB", "mario", "xyz"]), st.sampled_from(["mario", "luigi", ""]),
       st.sampled_from(["d1", "00"]))
def test_indexed_match_equals_a_plain_first_match_scan(specs, uid, text, data) -> None:
    ms = [mapping(t, m, p, f"#{i}") for i, (t, m, p) in enumerate(specs)]
    token = Token(uid=uid, text=text, data=data)

    def naive() -> str:
        from tagd.daemon.mappings import token_field
        import re2

        for mm in ms:
            v = token_field(token, mm.type)
            pat = mm.pattern.strip().lower().replace(":", "") if mm.type == "uid" and mm.match != "regex" else mm.pattern
            if (mm.match == "exact" and v == pat) or (mm.match == "partial" and pat in v) or (
                    mm.match == "regex" and re2.search(mm.pattern, v)):
                return mm.override
        return text

    assert MappingTable(ms).apply(token).text == naive()
