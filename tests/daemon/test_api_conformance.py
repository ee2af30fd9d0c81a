"""Result shapes pinned against the Zaparoo Core API document (seeds/001): exact keys and JSON types.

A regression that renames, drops or retypes a field the Zaparoo App reads fails here. Where SPEC §5 records
Core's real behaviour over the document (``{}`` rather than null on success), SPEC wins.
"""

from __future__ import annotations

import re

import pytest

from test_api import Client, daemon, wait_for  # noqa: F401  (daemon is a fixture)

RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?(Z|[+-]\d\d:\d\d)$")
TOKEN_KEYS = {"type", "uid", "text", "data", "scanTime"}  # + readerId, optional


@pytest.fixture
async def client(daemon):  # noqa: F811
    import aiohttp

    async with aiohttp.ClientSession() as session:
        yield Client(session, daemon.api.port)


def assert_types(obj: dict, types: dict) -> None:
    for key, kind in types.items():
        assert isinstance(obj[key], kind), f"{key}: {obj[key]!r} is not {kind}"


async def tap(daemon, client, text="**launch.system:snes"):
    daemon.tagfile.write_text(text)

    async def seen():
        return (await client.call("tokens"))["result"]["active"]
    assert await wait_for(seen)


async def test_tokens_before_any_scan_is_an_empty_active_list_and_null_last(client):
    # "last … Null if no token has been scanned yet"
    assert (await client.call("tokens"))["result"] == {"active": [], "last": None}


async def test_token_objects_have_the_documents_keys_and_types(daemon, client):
    await tap(daemon, client)
    result = (await client.call("tokens"))["result"]
    assert set(result) == {"active", "last"}
    for token in result["active"] + [result["last"]]:
        assert TOKEN_KEYS <= set(token) <= TOKEN_KEYS | {"readerId"}
        assert_types(token, dict.fromkeys(TOKEN_KEYS | {"readerId"}, str))
        assert RFC3339.match(token["scanTime"]), token["scanTime"]


async def test_history_entries_have_the_launch_entry_keys_and_types(daemon, client):
    await tap(daemon, client)

    async def entries():
        return (await client.call("tokens.history"))["result"]["entries"]
    assert await wait_for(entries)
    [entry] = await entries()
    assert {"data", "success", "text", "time", "type", "uid"} <= set(entry)
    assert_types(entry, {"data": str, "success": bool, "text": str, "time": str, "type": str, "uid": str})
    assert RFC3339.match(entry["time"])


async def test_reader_info_has_the_documents_keys_and_types(daemon, client):
    [reader] = (await client.call("readers"))["result"]["readers"]
    assert set(reader) == {"id", "readerId", "driver", "info", "connected", "capabilities"}
    assert_types(reader, {"id": str, "readerId": str, "driver": str, "info": str, "connected": bool,
                          "capabilities": list})
    assert re.match(r"^file-[a-z2-7]{8}$", reader["readerId"])  # {driver}-{hash}


async def test_mapping_objects_have_string_ids_and_rfc3339_added(client):
    await client.call("mappings.new", {"label": "L", "enabled": True, "type": "uid", "match": "exact",
                                       "pattern": "04aa", "override": "@SNES/x"})
    [m] = (await client.call("mappings"))["result"]["mappings"]
    assert set(m) == {"id", "added", "label", "enabled", "type", "match", "pattern", "override"}
    assert_types(m, {"id": str, "added": str, "label": str, "enabled": bool, "type": str, "match": str,
                     "pattern": str, "override": str})
    assert RFC3339.match(m["added"])


async def test_settings_has_every_required_key_with_its_type(client):
    s = (await client.call("settings"))["result"]
    assert_types(s, {"runZapScript": bool, "debugLogging": bool, "audioScanFeedback": bool,
                     "readersAutoDetect": bool, "readersScanMode": str, "readersScanExitDelay": (int, float),
                     "readersScanIgnoreSystems": list, "errorReporting": bool, "readersConnect": list,
                     "systemDefaults": list})


async def test_settings_update_of_a_fixed_setting_to_its_value_is_accepted_and_to_another_says_why(client):
    assert (await client.call("settings.update", {"runZapScript": True}))["result"] == {}
    err = (await client.call("settings.update", {"runZapScript": False}))["error"]
    assert err["code"] == 1 and "runZapScript" in err["message"] and "core decides" in err["message"]


async def test_version_and_health_shapes(client):
    v = (await client.call("version"))["result"]
    assert set(v) == {"platform", "version"} and v["platform"] == "tagd"
    assert (await client.call("health"))["result"] == {"status": "ok"}


async def test_inbox_messages_have_numeric_ids_severity_and_created_at(client, daemon):
    daemon.store.add_inbox("Reader lost", "readers")
    [m] = (await client.call("inbox"))["result"]["messages"]
    assert {"id", "title", "severity", "createdAt"} <= set(m)
    assert_types(m, {"id": int, "title": str, "severity": int, "createdAt": str})
    assert m["severity"] in (0, 1, 2) and RFC3339.match(m["createdAt"])


@pytest.mark.parametrize("method, params", [("run", {"text": "x", "somethingNew": 1}),
                                            ("readers.write.cancel", {"readerId": None, "extra": True})])
async def test_unknown_extra_params_are_ignored_as_zaparoo_does(client, method, params):
    assert (await client.call(method, params))["result"] == {}
