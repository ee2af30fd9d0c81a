"""Issue 13 items 1 and 8: a reload is all or nothing.

Item 1: with the config file missing, unreadable or half-written, SIGHUP, settings.reload and mappings.reload change
nothing — the reader stays open, the cores, API keys and origins stay — and say so in the log, the inbox and the
call's answer (it was: every default applied and "config reloaded" logged).
Item 8: deeply nested TOML is a config error naming the file (exit 2 at start, no traceback); in a mapping file it
is skipped like any broken one; a reload meeting it changes nothing (no RecursionError, nothing half-applied).
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys

import pytest

from test_api import wait_for
from tagd.daemon.config import load_config
from tagd.daemon.service import Daemon
from tagd.token import Token

NESTED = "[" * 600 + "]" * 600


def config_text(tmp, zapscript="@SNES/FIRST"):
    return f"""
database = "{tmp / 'tagd.db'}"
[readers]
auto_detect = false
connect = [{{driver = "file", path = "{tmp / 'tag.txt'}"}}]
[api]
listen = "127.0.0.1:0"
keys = ["sekrit-key-1"]
allowed_origins = ["https://example.test"]
[[core]]
type = "stdout"
[[mappings.entry]]
token_key = "value"
match_pattern = "*mario*"
zapscript = "{zapscript}"
"""


@pytest.fixture
async def running(tmp_path):
    """A daemon started from a config file that has a reader, a core, API keys, origins and a mapping."""
    path = tmp_path / "config.toml"
    path.write_text(config_text(tmp_path))
    d = Daemon(load_config(path), path)
    await d.start()
    async def reader_open():
        return d.reader_infos()
    assert await wait_for(reader_open)
    yield d, path
    await d.stop()


def state(d):
    return (d.config.readers.connect, d.config.readers.auto_detect, [fw.name for fw in d.forwarders],
            d.config.api.keys, d.config.api.allowed_origins, [i.path for i in d.reader_infos()],
            d.pipeline.mappings.apply(Token(text="super mario")).text)


async def call(d, method):
    return await d.api.dispatcher.handle_text(json.dumps({"jsonrpc": "2.0", "id": 1, "method": method}))


def break_file(path, how):
    if how == "missing":
        path.unlink()
    elif how == "unreadable":  # a directory where the file was: read fails (root ignores chmod 000)
        path.unlink()
        path.mkdir()
    elif how == "empty":  # an editor or a deploy script caught half way
        path.write_text("")
    elif how == "truncated":  # cut inside the reader's inline table: not TOML
        text = path.read_text()
        path.write_text(text[:text.index('path = "') + 10])
    elif how == "nested":
        path.write_text(f"x = {NESTED}\n")


HOWS = ["missing", "unreadable", "empty", "truncated", "nested"]


@pytest.mark.parametrize("how", HOWS)
@pytest.mark.parametrize("method", ["settings.reload", "mappings.reload"])
async def test_a_reload_with_the_config_file_missing_unreadable_or_half_written_changes_nothing(running, caplog,
                                                                                                 method, how):
    d, path = running
    before = state(d)
    break_file(path, how)
    with caplog.at_level(logging.INFO):
        answer = await call(d, method)
    message = answer["error"]["message"]
    assert str(path) in message and "RecursionError" not in message, message
    assert state(d) == before
    assert any("reload refused, nothing changed" in r.getMessage() and r.levelno == logging.ERROR
               for r in caplog.records)
    assert not any("config reloaded" in r.getMessage() for r in caplog.records)
    inbox = [m for m in (await call(d, "inbox"))["result"]["messages"] if m["category"] == "config"]
    assert len(inbox) == 1 and str(path) in inbox[0]["body"]


@pytest.mark.parametrize("how", HOWS)
async def test_sighup_with_the_config_file_missing_unreadable_or_half_written_changes_nothing(running, caplog, how):
    d, path = running
    before = state(d)
    break_file(path, how)
    with caplog.at_level(logging.INFO):
        await d.reload_on_hangup()
    assert state(d) == before
    messages = [r.getMessage() for r in caplog.records]
    assert any("reload refused, nothing changed" in m and str(path) in m for m in messages), messages
    assert not any("config reloaded" in m or "Traceback" in m for m in messages)
    assert not any(r.exc_info for r in caplog.records)
    assert [m.category for m in d.store.inbox()].count("config") == 1


async def test_a_repaired_config_file_reloads_again(running):
    d, path = running
    break_file(path, "missing")
    assert "error" in await call(d, "settings.reload")
    path.write_text(config_text(path.parent, zapscript="@SNES/SECOND"))
    assert (await call(d, "settings.reload"))["result"] == {}
    assert d.pipeline.mappings.apply(Token(text="super mario")).text == "@SNES/SECOND"


def test_tagd_run_with_deeply_nested_toml_exits_2_naming_the_file(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text(f"[readers]\nauto_detect = false\nx = {NESTED}\n")
    run = subprocess.run([sys.executable, "-m", "tagd", "run", "--config", str(path)], capture_output=True, text=True,
                         timeout=30)
    assert run.returncode == 2, run.stderr[-2000:]
    assert str(path) in run.stderr and "nested too deeply" in run.stderr and "Traceback" not in run.stderr


async def test_a_deeply_nested_mapping_file_is_skipped_at_start_and_the_others_load(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text(config_text(tmp_path))
    files = tmp_path / "mappings"
    files.mkdir()
    (files / "deep.toml").write_text(f"x = {NESTED}\n")
    (files / "good.toml").write_text('[[mappings.entry]]\ntoken_key = "value"\nmatch_pattern = "*zelda*"\n'
                                     'zapscript = "@NES/Zelda"\n')
    d = Daemon(load_config(path), path)
    await d.start()
    try:
        assert d.pipeline.mappings.apply(Token(text="zelda")).text == "@NES/Zelda"
        [message] = [m for m in d.store.inbox() if m.category == "mappings"]
        assert "deep.toml" in message.body and "nested too deeply" in message.body
        answer = await call(d, "mappings.reload")
        assert "deep.toml" in answer["error"]["message"] and "RecursionError" not in answer["error"]["message"]
    finally:
        await d.stop()
