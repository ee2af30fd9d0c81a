"""tagd's own methods against the Zaparoo Core API document (seeds/001): result shapes (exact keys, JSON types),
notification payloads (SPEC §5), and how params of the wrong type or unknown params are handled.

A regression that renames, drops or retypes a field the Zaparoo App reads fails here. Where SPEC §5 records
Core's real behaviour over the document (``{}`` rather than null on success), SPEC wins.
"""

from __future__ import annotations

import asyncio
import json
import re
import time

import pytest

from test_api import Client, daemon, wait_for  # noqa: F401  (daemon is a fixture)
from tagd.readers.base import Capability, ReaderAdded, ReaderInfo, ReaderLost

RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?(Z|[+-]\d\d:\d\d)$")
TOKEN_KEYS = {"type", "uid", "text", "data", "scanTime"}  # + readerId, optional
LAUNCH_ENTRY_KEYS = {"data", "success", "text", "time", "type", "uid"}
SETTINGS_KEYS = {"runZapScript", "debugLogging", "audioScanFeedback", "readersAutoDetect", "readersScanMode",
                 "readersScanExitDelay", "readersScanIgnoreSystems", "errorReporting", "readersConnect",
                 "systemDefaults"}
NEW_MAPPING = {"label": "m", "enabled": True, "type": "text", "match": "exact", "pattern": "p", "override": "@SNES/x"}


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
    assert set(m) == {"id", "added", "label", "enabled", "type", "match", "pattern", "override", "source", "readOnly"}
    assert_types(m, {"id": str, "added": str, "label": str, "enabled": bool, "type": str, "match": str,
                     "pattern": str, "override": str, "source": str, "readOnly": bool})  # + Core 2.15's two
    assert RFC3339.match(m["added"])


async def test_settings_has_every_required_key_with_its_type(client):
    s = (await client.call("settings"))["result"]
    assert_types(s, {"runZapScript": bool, "debugLogging": bool, "audioScanFeedback": bool,
                     "readersAutoDetect": bool, "readersScanMode": str, "readersScanExitDelay": (int, float),
                     "readersScanIgnoreSystems": list, "errorReporting": bool, "readersConnect": list,
                     "systemDefaults": list})


async def test_settings_update_of_a_fixed_setting_to_its_value_is_accepted_and_to_another_says_why(client):
    assert (await client.call("settings.update", {"systemDefaults": []}))["result"] == {}
    err = (await client.call("settings.update", {"systemDefaults": [{"system": "SNES", "launcher": "x"}]}))["error"]
    assert err["code"] == 1 and "systemDefaults" in err["message"] and "core" in err["message"]


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
                                            ("readers.write.cancel", {"readerId": None, "extra": True}),
                                            ("mappings.new", dict(NEW_MAPPING, somethingNew=1)),
                                            ("mappings.reload", {"extra": 1}),
                                            ("stop", {"extra": 1})])
async def test_unknown_extra_params_are_ignored_as_zaparoo_does(client, method, params):
    assert (await client.call(method, params))["result"] == {}

async def value_of(fetch, timeout=3.0):
    """Poll ``fetch`` until it returns something truthy; that value (None after ``timeout``)."""
    for _ in range(int(timeout / 0.05)):
        result = await fetch()
        if result:
            return result
        await asyncio.sleep(0.05)
    return None


async def history(client):
    return (await client.call("tokens.history"))["result"]["entries"]


def is_number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def assert_token(t, reader: bool):
    # Tokens › tokens › Token object
    assert set(t) == TOKEN_KEYS | ({"readerId"} if reader else set())
    assert all(isinstance(t[k], str) for k in t)
    assert RFC3339.match(t["scanTime"])


def error_of(resp):
    assert "result" not in resp, resp
    return resp["error"]


# --- more shapes and behaviours that are right: pinned ------------------------------------------------------------------------------


async def test_a_run_token_has_no_reader_id(client):
    # Tokens › tokens › Token object: readerId Required No — an API run has no reader
    assert (await client.call("run", {"text": "**launch.random:snes"}))["result"] == {}
    last = (await client.call("tokens"))["result"]["last"]
    assert_token(last, reader=False)


async def test_tokens_history_entries_are_launch_entries(daemon, client):
    # Tokens › tokens.history › Launch entry object
    await client.call("run", {"text": "**launch.system:nes"})
    entries = await value_of(lambda: history(client))
    assert set((await client.call("tokens.history"))["result"]) == {"entries"}
    e = entries[0]
    assert set(e) == LAUNCH_ENTRY_KEYS  # an API run: tagd's optional readerId is absent
    assert isinstance(e["success"], bool)
    assert all(isinstance(e[k], str) for k in ("data", "text", "time", "type", "uid"))
    assert RFC3339.match(e["time"])


async def test_tokens_history_of_a_tap_adds_only_reader_id(daemon, client):
    # Tokens › tokens.history › Launch entry object (tagd adds readerId for a reader's launch, nothing else)
    await asyncio.sleep(0.3)
    daemon.tagfile.write_text("**launch.system:gb")
    e = (await value_of(lambda: history(client)))[0]
    assert set(e) - {"readerId"} == LAUNCH_ENTRY_KEYS and e["readerId"].startswith("file-")


async def test_mappings_update_and_delete_take_the_id_as_a_number(client):
    # Mappings › mappings.update / mappings.delete: id number
    await client.call("mappings.new", NEW_MAPPING)
    mid = int((await client.call("mappings"))["result"]["mappings"][0]["id"])
    assert (await client.call("mappings.update", {"id": mid, "enabled": False}))["result"] == {}
    assert (await client.call("mappings"))["result"]["mappings"][0]["enabled"] is False
    assert (await client.call("mappings.delete", {"id": mid}))["result"] == {}
    assert (await client.call("mappings"))["result"]["mappings"] == []


async def test_mapping_type_aliases_are_listed_by_their_api_names(client):
    # Mappings › Mapping object: type is uid, text or data
    await client.call("mappings.new", dict(NEW_MAPPING, type="id"))
    await client.call("mappings.new", dict(NEW_MAPPING, type="value"))
    rows = (await client.call("mappings"))["result"]["mappings"]
    assert [m["type"] for m in rows] == ["uid", "text"]


async def test_inbox_messages_have_number_ids_and_rfc3339_times(client, daemon):
    # Inbox › inbox › Inbox message object: body and category optional
    daemon.store.add_inbox("Reader lost", "readers", severity=1, body="unplugged")
    daemon.store.add_inbox("Plain")
    result = (await client.call("inbox"))["result"]
    assert set(result) == {"messages"}
    full, plain = result["messages"]
    assert set(full) == {"id", "title", "body", "severity", "category", "createdAt"}
    assert set(plain) == {"id", "title", "severity", "createdAt"}
    for m in (full, plain):
        assert is_number(m["id"]) and is_number(m["severity"]) and RFC3339.match(m["createdAt"])
    assert (await client.call("inbox.delete", {"id": full["id"]}))["result"] == {}


async def test_settings_types_match_the_document(client):
    # Settings › settings › Result, Reader connection object
    await client.call("settings.update", {"readersConnect": [{"driver": "file", "path": "/tmp/x"}]})
    s = (await client.call("settings"))["result"]
    for k in ("runZapScript", "debugLogging", "audioScanFeedback", "readersAutoDetect", "errorReporting"):
        assert isinstance(s[k], bool), k
    assert isinstance(s["readersScanMode"], str) and is_number(s["readersScanExitDelay"])
    assert isinstance(s["readersScanIgnoreSystems"], list) and isinstance(s["systemDefaults"], list)
    conn = s["readersConnect"][0]
    assert {"driver", "path"} <= set(conn) <= {"driver", "path", "idSource", "enabled"}
    assert conn["driver"] == "file" and conn["path"] == "/tmp/x" and conn.get("enabled", True) is True


async def test_reader_notifications_carry_driver_path_and_connected(daemon, client):
    # SPEC §5 Notifications: readers.added / readers.removed {driver, path, connected}
    info = ReaderInfo("pn532", "/dev/ttyUSB9", "1-2.3.1", "PN532", Capability.READ)
    await file_reader_up(daemon)
    async with client.session.ws_connect(f"ws://127.0.0.1:{client.port}/api") as ws:
        daemon.pipeline.submit(ReaderAdded(info))
        added = json.loads((await ws.receive(timeout=3)).data)
        daemon.pipeline.submit(ReaderLost(info.reader_id, "stopped"))
        removed = json.loads((await ws.receive(timeout=3)).data)
    assert added == {"jsonrpc": "2.0", "method": "readers.added",
                     "params": {"driver": "pn532", "path": "/dev/ttyUSB9", "connected": True}}
    assert removed == {"jsonrpc": "2.0", "method": "readers.removed",
                       "params": {"driver": "pn532", "path": "/dev/ttyUSB9", "connected": False}}


async def test_token_notifications_are_a_token_object_then_no_params(daemon, client):
    # SPEC §5 Notifications: tokens.added (token object), tokens.removed (no params)
    await file_reader_up(daemon)
    async with client.session.ws_connect(f"ws://127.0.0.1:{client.port}/api") as ws:
        daemon.tagfile.write_text("**launch.system:snes")
        added = json.loads((await ws.receive(timeout=3)).data)
        daemon.tagfile.write_text("")
        removed = json.loads((await ws.receive(timeout=3)).data)
    assert set(added) == {"jsonrpc", "method", "params"} and added["method"] == "tokens.added"
    assert_token(added["params"], reader=True)
    assert removed == {"jsonrpc": "2.0", "method": "tokens.removed"}


async def test_settings_result_key_set_is_exactly_the_documents(client):
    # Settings › settings › Result: runZapScript … systemDefaults, all Required: Yes; and the launch guard and
    # profile keys Core's SettingsResponse has too (the App's play-controls page reads them), and its encryption
    extra = {"launchGuardEnabled", "launchGuardTimeout", "launchGuardDelay", "launchGuardRequireConfirm",
             "profilesRequireForLaunch", "profilesSwapData", "encryption"}
    assert set((await client.call("settings"))["result"]) == SETTINGS_KEYS | extra


async def test_settings_update_accepts_zaparoo_keys_at_the_values_tagd_reports(client):
    # Settings › settings.update: runZapScript, debugLogging, audioScanFeedback, errorReporting, systemDefaults
    s = (await client.call("settings"))["result"]
    same = {k: s[k] for k in ("runZapScript", "debugLogging", "audioScanFeedback", "errorReporting", "systemDefaults")}
    assert (await client.call("settings.update", same))["result"] == {}


async def test_settings_update_refuses_a_zaparoo_key_tagd_cannot_change_and_writes_nothing(client, daemon):
    # Settings › settings.update: tagd cannot change systemDefaults over the API; the whole update is refused
    err = error_of(await client.call("settings.update", {"readersScanMode": "hold",
                                                         "systemDefaults": [{"system": "SNES", "launcher": "x"}]}))
    assert err["code"] == 1 and err["message"].startswith("invalid params: systemDefaults:")
    assert daemon.config.readers.scan.mode == "tap" and not daemon.config_path.exists()


# --- discrepancies fixed in methods.py (each failed before) ------------------------------------------------------------------------------


async def test_settings_update_ignores_keys_only_zaparoo_core_has(client, daemon):
    # Settings › settings.update: "An object containing any of the following optional keys"; Core's own further
    # settings (audio volume, update channel …) may come from the Zaparoo App and are ignored
    resp = await client.call("settings.update", {"readersScanMode": "hold", "updateChannel": "beta", "audioVolume": 50})
    assert resp["result"] == {}
    assert daemon.config.readers.scan.mode == "hold"


async def test_settings_update_refuses_a_key_nobody_knows(client, daemon):
    # a misspelt or invented key was a silent no-op ({"unknownKey": 1} → {}): it is refused, naming the key
    for params in ({"unknownKey": 1}, {"readersScanMode": "hold", "bogus": 1}):
        err = error_of(await client.call("settings.update", params))
        assert err["code"] == 1 and err["message"] == f"invalid params: {list(params)[-1]}: not a setting"
    assert daemon.config.readers.scan.mode == "tap" and not daemon.config_path.exists()  # nothing was changed


async def test_settings_update_with_an_empty_object_is_a_no_op(client, daemon):
    # Settings › settings.update: every key is optional, so {} is a valid request
    assert (await client.call("settings.update", {}))["result"] == {}
    assert not daemon.config_path.exists()  # nothing to write


@pytest.mark.parametrize("params, field", [
    ({"readersAutoDetect": "yes"}, "readersAutoDetect"),
    ({"readersAutoDetect": 1}, "readersAutoDetect"),
    ({"readersScanExitDelay": "2"}, "readersScanExitDelay"),
    ({"readersScanExitDelay": True}, "readersScanExitDelay"),
    ({"readersConnect": [{"driver": "file", "path": "/x", "enabled": "no"}]}, "readersConnect.0.enabled"),
])
async def test_settings_update_refuses_values_of_the_wrong_type(client, daemon, params, field):
    # Settings › settings.update: readersAutoDetect boolean, readersScanExitDelay number, enabled bool
    err = error_of(await client.call("settings.update", params))
    assert err["code"] == 1 and err["message"].startswith(f"invalid params: {field}")
    assert not daemon.config_path.exists()


@pytest.mark.parametrize("params, field", [
    ({"text": "**launch.random:snes", "unsafe": "yes"}, "unsafe"),
    ({"text": "**launch.random:snes", "unsafe": 1}, "unsafe"),
])
async def test_run_refuses_a_non_boolean_unsafe(client, params, field):
    # Launching › run › Parameters: unsafe boolean
    err = error_of(await client.call("run", params))
    assert err == {"code": 1, "message": f"invalid params: {field}: Input should be a valid boolean"}
    assert (await client.call("tokens"))["result"]["last"] is None  # nothing was run


@pytest.mark.parametrize("data", ["zz", "abc", "0x04"])
async def test_run_refuses_data_that_is_not_hexadecimal(client, data):
    # Launching › run › Parameters: data is "the raw data … converted to a hexadecimal string"
    err = error_of(await client.call("run", {"data": data}))
    assert err == {"code": 1, "message": "invalid params: data must be a hexadecimal string"}


async def test_run_data_is_normalised_to_lower_case_hex(client):
    # Launching › run › Parameters: data hex (Zaparoo strips spaces and lower-cases it, as tagd's readers write it)
    assert (await client.call("run", {"data": "04 AB cd"}))["result"] == {}
    entry = (await value_of(lambda: history(client)))[0]
    assert entry["data"] == "04abcd"


async def test_mappings_delete_refuses_a_boolean_id(client):
    # Mappings › mappings.delete › Parameters: id number (true is not 1)
    await client.call("mappings.new", NEW_MAPPING)
    err = error_of(await client.call("mappings.delete", {"id": True}))
    assert err == {"code": 1, "message": "invalid params: id: True is not an id"}
    assert len((await client.call("mappings"))["result"]["mappings"]) == 1


@pytest.mark.parametrize("method, params, field, kind", [
    ("mappings.new", dict(NEW_MAPPING, enabled="yes"), "enabled", "boolean"),
    ("mappings.new", dict(NEW_MAPPING, enabled=0), "enabled", "boolean"),
    ("mappings.update", {"id": 1, "enabled": "false"}, "enabled", "boolean"),
])
async def test_mapping_fields_of_the_wrong_type_are_refused(client, method, params, field, kind):
    # Mappings › mappings.new / mappings.update › Parameters: enabled boolean
    await client.call("mappings.new", NEW_MAPPING)
    err = error_of(await client.call(method, params))
    assert err == {"code": 1, "message": f"invalid params: {field}: Input should be a valid {kind}"}
    rows = (await client.call("mappings"))["result"]["mappings"]
    assert len(rows) == 1 and rows[0]["enabled"] is True and rows[0]["label"] == "m"


async def test_inbox_delete_refuses_a_boolean_id(client, daemon):
    # Inbox › inbox.delete › Parameters: id number
    daemon.store.add_inbox("Keep me")
    err = error_of(await client.call("inbox.delete", {"id": True}))
    assert err == {"code": 1, "message": "invalid params: id: True is not an id"}
    assert len((await client.call("inbox"))["result"]["messages"]) == 1


async def file_reader_up(daemon, timeout=5.0):
    """Wait until the daemon's file reader is connected, so its readers.added is not the next notification."""
    deadline = time.monotonic() + timeout
    while not daemon.reader_infos():
        assert time.monotonic() < deadline, "the file reader did not connect"
        await asyncio.sleep(0.02)
