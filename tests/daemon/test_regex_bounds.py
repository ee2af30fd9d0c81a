"""Issue 13 item 5: one regex mapping must not freeze the daemon — RE2 program size is limited, the text a regex
runs over is limited, and a long text is matched in a worker thread, never on the event loop."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from test_pipeline import FakeForwarder, make_rig  # noqa: F401 (fixture)
from tagd.daemon.mappings import (INLINE_MATCH_TEXT, MAX_MATCH_TEXT, MAX_REGEX_PROGRAM, Mapping, MappingError,
                                  MappingTable)
from tagd.token import Token


def regex(pattern: str, override: str = "mapped", type: str = "text") -> Mapping:
    return Mapping.build(type=type, match="regex", pattern=pattern, override=override)


def test_a_regex_over_the_program_size_limit_is_refused_naming_the_limit():
    with pytest.raises(MappingError) as info:
        regex("(.*a){1000}")  # the pattern: 11,004 RE2 instructions
    assert info.value.field == "pattern" and str(MAX_REGEX_PROGRAM) in str(info.value)
    assert "too complex" in str(info.value)


def test_a_megabyte_pattern_is_refused_quickly_not_compiled_at_length():
    started = time.monotonic()
    with pytest.raises(MappingError, match="too complex"):
        regex("a" * 1_000_000)
    assert time.monotonic() - started < 2.0


def test_mapping_files_refuse_a_too_complex_regex_naming_the_entry():
    with pytest.raises(MappingError) as info:
        MappingTable.from_config([{"token_key": "value", "match_pattern": "/(.*a){1000}/", "zapscript": "x"}], "f.toml")
    assert "f.toml entry 1" in str(info.value) and "too complex" in str(info.value)


def test_a_regex_is_not_run_over_a_value_longer_than_the_match_limit():
    table = MappingTable([regex("(.*a){150}")])  # allowed, but ~1,650 instructions: slow over 300 KB
    started = time.monotonic()
    assert table.match(Token(text="a" * 300_000)) is None
    assert time.monotonic() - started < 0.05
    assert table.match(Token(text="a" * 200)) is not None and MAX_MATCH_TEXT >= 8192  # every tag's data fits


def test_exact_and_partial_mappings_still_match_a_long_text():
    text = "x" * (MAX_MATCH_TEXT + 10) + "mario"
    table = MappingTable([Mapping.build(type="text", match="partial", pattern="mario", override="p")])
    assert table.apply(Token(text=text)).text == "p"


async def test_a_long_text_is_matched_off_the_event_loop(make_rig):
    rig = make_rig(mappings=[regex("(.*a){150}")])
    threads = []
    apply = rig.p.mappings.apply

    def spy(token):
        threads.append(threading.current_thread())
        return apply(token)

    rig.p.mappings.apply = spy
    await rig.p.run_token(Token(text="b" * (INLINE_MATCH_TEXT + 1) + "a" * 150, source="api"))
    await rig.p.run_token(Token(text="a" * 150, source="api"))
    assert threads[0] is not threading.main_thread() and threads[1] is threading.main_thread()
    assert rig.fw.launched == ["mapped", "mapped"]


async def test_the_event_loop_keeps_running_while_a_long_text_is_matched(make_rig):
    """The regex's worst case over MAX_MATCH_TEXT (~0.1 s) runs in a thread: the loop ticks on meanwhile."""
    rig = make_rig(mappings=[regex("(.*a){180}")])
    ticks, stop = [], False

    async def ticker():
        while not stop:
            ticks.append(time.monotonic())
            await asyncio.sleep(0.005)

    task = asyncio.ensure_future(ticker())
    await asyncio.sleep(0.01)
    started = time.monotonic()
    for _ in range(3):
        await rig.p.run_token(Token(text="ab" * (MAX_MATCH_TEXT // 2), source="api"))
    took = time.monotonic() - started
    stop = True
    await task
    gaps = [b - a for a, b in zip(ticks, ticks[1:])]
    assert max(gaps) < 0.6 * took / 3, (max(gaps), took)  # on the loop, one gap would be a whole match


async def test_a_tap_after_a_slow_match_is_forwarded_after_it(make_rig):
    rig = make_rig(mappings=[regex("^b+a", "slow"), Mapping.build(type="text", match="exact", pattern="quick",
                                                                   override="fast")])
    rig.fw.delay = 0
    slow = rig.p._spawn(rig.p._launch(Token(text="b" * (MAX_MATCH_TEXT - 1) + "a", source="api")))
    quick = rig.p._spawn(rig.p._launch(Token(text="quick", source="api")))
    await asyncio.gather(slow, quick)
    assert rig.fw.launched == ["slow", "fast"]


def test_a_too_complex_regex_stored_by_an_older_tagd_is_skipped_not_a_failed_start(tmp_path):
    from tagd.daemon.store import Store

    store = Store(tmp_path / "tagd.db")
    store._db.execute("INSERT INTO mappings (added_ns, type, match, pattern, override) "
                      "VALUES (1, 'text', 'regex', '(.*a){1000}', 'old')")
    store.add_mapping(type="text", match="exact", pattern="zelda", override="z")
    table = MappingTable.from_sources(store.mappings())
    assert table.apply(Token(text="zelda")).text == "z" and table.match(Token(text="a" * 1000)) is None
    store.close()
