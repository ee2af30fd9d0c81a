"""settings.update / settings.reload / mappings.reload take effect without a restart, and a broken mapping file
or config costs only itself: the in-process Daemon from test_api, with file readers."""

from __future__ import annotations

import asyncio
import sys

import aiohttp
import pytest

from test_api import Client, make_config, wait_for
from tagd.daemon.service import Daemon
from tagd.token import Token

CONFIG = """
[readers]
auto_detect = false
{readers}
[api]
listen = "127.0.0.1:0"

[[mappings.entry]]
token_key = "value"
match_pattern = "*mario*"
zapscript = "{zapscript}"
"""


def write_config(path, zapscript="@SNES/FIRST", readers=""):
    path.write_text(CONFIG.format(zapscript=zapscript, readers=readers))


@pytest.fixture
async def rig(tmp_path):
    """A daemon whose config file exists (so the reloads have something to read), and an API client."""
    from tagd.daemon.config import load_config

    config_file = tmp_path / "config.toml"
    write_config(config_file)
    config = load_config(config_file).model_copy(update={"database": tmp_path / "tagd.db"})
    d = Daemon(config, config_file)
    await d.start()
    async with aiohttp.ClientSession() as session:
        yield d, Client(session, d.api.port), tmp_path
    await d.stop()


def launched_text(daemon, text):
    return daemon.pipeline.mappings.apply(Token(text=text)).text


async def until_async(predicate, timeout=5.0):
    async def check():
        return predicate()
    return await wait_for(check, timeout)


async def test_readers_connect_from_settings_update_opens_and_closes_readers_at_once(rig):
    daemon, client, tmp = rig
    tag = tmp / "tag.txt"
    update = {"readersConnect": [{"driver": "file", "path": str(tag)}]}
    assert (await client.call("settings.update", update))["result"] == {}
    assert await until_async(lambda: len(daemon.reader_infos()) == 1)
    readers = (await client.call("readers"))["result"]["readers"]
    assert readers[0]["driver"] == "file" and readers[0]["id"] == str(tag)
    tag.write_text("**launch.system:nes")
    assert await until_async(lambda: daemon.pipeline.active)
    assert (await client.call("settings.update", {"readersConnect": []}))["result"] == {}
    assert await until_async(lambda: not daemon.reader_infos())
    assert daemon.pipeline.active == {}  # its token went with it


async def test_a_disabled_connect_entry_is_not_opened(rig):
    daemon, client, tmp = rig
    on, off = tmp / "on.txt", tmp / "off.txt"
    update = {"readersConnect": [{"driver": "file", "path": str(off), "enabled": False},
                                 {"driver": "file", "path": str(on)}]}
    assert (await client.call("settings.update", update))["result"] == {}
    assert await until_async(lambda: daemon.reader_infos())
    await asyncio.sleep(0.3)
    assert [i.path for i in daemon.reader_infos()] == [str(on)]


async def test_settings_reload_applies_the_readers_and_the_mappings_of_the_edited_file(rig):
    daemon, client, tmp = rig
    tag = tmp / "tag.txt"
    write_config(tmp / "config.toml", "@SNES/SECOND", readers=f'connect = [{{driver = "file", path = "{tag}"}}]')
    assert (await client.call("settings.reload"))["result"] == {}
    assert await until_async(lambda: len(daemon.reader_infos()) == 1)
    assert launched_text(daemon, "super mario") == "@SNES/SECOND"


async def test_mappings_reload_reads_the_config_files_entries_again(rig):
    daemon, client, tmp = rig
    assert launched_text(daemon, "super mario") == "@SNES/FIRST"
    write_config(tmp / "config.toml", "@SNES/SECOND")
    assert (await client.call("mappings.reload"))["result"] == {}
    assert launched_text(daemon, "super mario") == "@SNES/SECOND"


async def test_mappings_reload_with_a_broken_config_changes_nothing_and_says_why(rig):
    daemon, client, tmp = rig
    (tmp / "config.toml").write_text('[[mappings.entry]]\nmatch_pattern = "/a(b/"\nzapscript = "x"\n')
    err = (await client.call("mappings.reload"))["error"]
    assert err["code"] == 1 and "mappings.entry[0].match_pattern" in err["message"] and "missing )" in err["message"]
    assert launched_text(daemon, "super mario") == "@SNES/FIRST"


async def test_a_broken_mapping_file_is_skipped_named_and_the_others_load(rig):
    daemon, client, tmp = rig
    files = tmp / "mappings"
    files.mkdir()
    (files / "a.toml").write_text('[[mappings.entry]]\ntoken_key = "value"\nmatch_pattern = "*zelda*"\n'
                                  'zapscript = "@NES/Zelda"\n')
    (files / "b.toml").write_text('[[mappings.entry]]\ntoken_key = "value"\nmatch_pattern = "/a(b/"\n'
                                  'zapscript = "x"\n')
    err = (await client.call("mappings.reload"))["error"]
    assert "skipped" in err["message"] and "b.toml" in err["message"] and "invalid regex" in err["message"]
    assert launched_text(daemon, "zelda ii") == "@NES/Zelda"  # a.toml loaded
    assert launched_text(daemon, "super mario") == "@SNES/FIRST"  # and the config's entries
    inbox = (await client.call("inbox"))["result"]["messages"]
    assert any(m["category"] == "mappings" and m["severity"] == 2 for m in inbox)


async def test_a_broken_mapping_file_at_start_is_reported_not_fatal(tmp_path):
    files = tmp_path / "mappings"
    files.mkdir()
    (files / "bad.toml").write_text("this is not toml")
    d = Daemon(make_config(tmp_path), tmp_path / "config.toml")
    await d.start()
    try:
        [message] = d.store.inbox()
        assert message.category == "mappings" and "bad.toml" in message.body
    finally:
        await d.stop()


def record_core(out) -> str:
    """An exec [[core]] that appends each launched text to ``out`` (argv, no shell)."""
    return (f'[[core]]\ntype = "exec"\nargv = ["{sys.executable}", "-c", '
            f'"import os, sys; open(sys.argv[1], \'a\').write(os.environ[\'TAGD_TEXT\'] + chr(10))", "{out}"]\n')


async def test_settings_reload_applies_new_cores_and_api_keys(rig):
    daemon, client, tmp = rig
    out = tmp / "launched.txt"
    (tmp / "config.toml").write_text(f'database = "{tmp / "tagd.db"}"\n[api]\nlisten = "127.0.0.1:0"\n'
                                     f'keys = ["sesame"]\n{record_core(out)}')
    assert (await client.call("settings.reload"))["result"] == {}
    assert [fw.name for fw in daemon.forwarders] == ["exec"] and daemon.pipeline.forwarders == daemon.forwarders
    assert daemon.api.keys == {"sesame"}
    assert (await client.call("run", {"text": "**launch.system:pce"}))["result"] == {}
    assert await until_async(lambda: out.exists() and out.read_text() == "**launch.system:pce\n")
    (tmp / "config.toml").write_text(f'database = "{tmp / "tagd.db"}"\n[api]\nlisten = "127.0.0.1:0"\n')
    assert (await client.call("settings.reload"))["result"] == {}
    assert daemon.forwarders == [] and daemon.api.keys == set()


async def test_a_reload_that_changes_listen_or_database_says_they_wait_for_a_restart(rig):
    daemon, client, tmp = rig
    (tmp / "config.toml").write_text(f'database = "{tmp / "other.db"}"\n[api]\nlisten = "127.0.0.1:0"\n')
    assert (await client.call("settings.reload"))["result"] == {}
    inbox = (await client.call("inbox"))["result"]["messages"]
    [msg] = [m for m in inbox if m["category"] == "config"]
    assert "database" in msg["body"] and "listen" not in msg["body"] and "restart" in msg["title"].lower()
    assert str(daemon.store.path) == str(tmp / "tagd.db")  # still the open one


async def test_settings_update_edits_the_file_on_disk_keeping_its_comments_and_other_edits(rig):
    daemon, client, tmp = rig
    config_file = tmp / "config.toml"
    by_hand = config_file.read_text().replace("[readers]", "# my readers\n[readers]  # keep this") + (
        '\n[[mappings.entry]]\ntoken_key = "value"\nmatch_pattern = "*zelda*"\nzapscript = "@NES/Zelda"\n')
    config_file.write_text(by_hand)  # edited since the daemon read it, not reloaded
    assert (await client.call("settings.update", {"readersScanMode": "hold"}))["result"] == {}
    text = config_file.read_text()
    assert "# my readers" in text and "# keep this" in text and "*zelda*" in text
    assert 'mode = "hold"' in text
    assert text.replace('\n[readers.scan]\nmode = "hold"\n', "\n") in (by_hand, by_hand + "\n")  # nothing else
    assert daemon.config.readers.scan.mode == "hold"


async def test_settings_update_does_not_overwrite_a_broken_file(rig):
    daemon, client, tmp = rig
    config_file = tmp / "config.toml"
    config_file.write_text("[readers\nauto_detect = false\n")
    err = (await client.call("settings.update", {"readersScanMode": "hold"}))["error"]
    assert err["code"] == 1 and "config.toml" in err["message"] and "did not write it" in err["message"]
    assert config_file.read_text() == "[readers\nauto_detect = false\n"
    assert daemon.config.readers.scan.mode == "tap"


async def test_putting_listen_and_database_back_needs_no_restart(rig):
    daemon, client, tmp = rig
    config_file = tmp / "config.toml"
    config_file.write_text(f'database = "{tmp / "other.db"}"\n[api]\nlisten = "127.0.0.1:0"\n')
    assert (await client.call("settings.reload"))["result"] == {}
    assert (await client.call("inbox.clear"))["result"] == {}
    config_file.write_text(f'database = "{tmp / "tagd.db"}"\n[api]\nlisten = "127.0.0.1:0"\n')  # what is open
    assert (await client.call("settings.reload"))["result"] == {}
    assert [m for m in (await client.call("inbox"))["result"]["messages"] if m["category"] == "config"] == []
