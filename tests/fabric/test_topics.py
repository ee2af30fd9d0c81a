"""The fabric's wire, sans-I/O: topics, payloads, parsing of what a hub receives, dedupe, HA discovery, Core's filter."""

from __future__ import annotations

import json

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from tagd.daemon.fabric import topics as fab
from tagd.daemon.fabric.topics import hub_prefix, parse_mqtt_path
from tagd.token import Token


@pytest.mark.parametrize("path, expected", [
    ("localhost:1883/zaparoo/tokens", ("localhost", 1883, "zaparoo/tokens", False)),
    ("mqtt.example.com:8883/home/zaparoo", ("mqtt.example.com", 8883, "home/zaparoo", False)),
    ("mqtt://broker:1884/t", ("broker", 1884, "t", False)),
    ("mqtts://broker/t", ("broker", 8883, "t", True)),
    ("ssl://broker:8884/a/b", ("broker", 8884, "a/b", True)),
    ("broker/tagd/+", ("broker", 1883, "tagd/+", False)),
])
def test_connect_paths_parse_as_core_parses_them(path, expected) -> None:
    assert parse_mqtt_path(path) == expected


@pytest.mark.parametrize("path, why", [("", "empty"), ("localhost:1883", "topic is required"),
                                       ("localhost:1883/", "topic is required"), (":1883/t", "host is required"),
                                       ("http://h/t", "scheme"), ("h:notaport/t", "port")])
def test_bad_connect_paths_are_refused_naming_what_is_missing(path, why) -> None:
    with pytest.raises(ValueError, match=why):
        parse_mqtt_path(path)


def test_hub_mode_is_a_topic_ending_in_plus() -> None:
    assert hub_prefix("tagd/+") == "tagd" and hub_prefix("house/tagd/+") == "house/tagd"
    assert hub_prefix("zaparoo/tokens") is None and hub_prefix("a/+/b/+") is None and hub_prefix("tagd/#") is None


def test_a_plain_payload_is_zapscript_with_a_fresh_uid_per_message() -> None:
    a, b = fab.parse_plain_scan(b"**launch.system:snes"), fab.parse_plain_scan(b"**launch.system:snes")
    assert a.type == "mqtt" and a.text == "**launch.system:snes" and a.uid and a.uid != b.uid


def test_a_token_json_payload_is_that_token() -> None:
    t = fab.parse_plain_scan(json.dumps({"type": "NTAG", "uid": "04aabb", "text": "@SNES/Zelda", "data": "d1",
                                         "readerId": "pn532-abcdefgh"}).encode())
    assert (t.type, t.uid, t.text, t.data, t.reader_id) == ("NTAG", "04aabb", "@SNES/Zelda", "d1", "pn532-abcdefgh")


def test_deeply_nested_json_on_a_core_topic_is_text_not_a_crash() -> None:
    assert fab.parse_plain_scan(b"{" + b"[" * 100_000).text.startswith("{[[")


def test_json_that_is_not_a_token_is_text() -> None:
    assert fab.parse_plain_scan(b'{"hello": 1}').text == '{"hello": 1}'
    assert fab.parse_plain_scan(b"{not json").text == "{not json"


def test_an_event_round_trips_through_the_hub_parser() -> None:
    topics = fab.Topics("kitchen")
    token = Token(type="NTAG", uid="04a1", text="**launch:x", data="00", reader_id="pn532-zzzzzzzz")
    msg = fab.parse_message(topics.events, fab.event_payload("pn532-zzzzzzzz", "tag", token, now=100.0, event_id="e1"))
    assert msg == fab.SatelliteEvent("kitchen", "e1", 100.0, "pn532-zzzzzzzz", "tag", msg.token)
    assert (msg.token.uid, msg.token.text, msg.token.data, msg.token.scan_ns) == ("04a1", "**launch:x", "00",
                                                                                  token.scan_ns)
    gone = fab.parse_message(topics.events, fab.event_payload("pn532-zzzzzzzz", "removed", event_id="e2"))
    assert gone.kind == "removed" and gone.token is None


def test_reader_state_and_node_state_parse() -> None:
    topics = fab.Topics("den")
    state = fab.parse_message(topics.reader("acr122-x"), fab.reader_payload("acr122-x", "acr122", "ACR122", "ACR", True,
                                                                            True))
    assert state == fab.ReaderState("den", "acr122-x", "acr122", "ACR122", "ACR", True, True)
    assert fab.parse_message(topics.reader("acr122-x"), b"") == fab.ReaderState("den", "acr122-x", connected=False)
    assert fab.parse_message(topics.state, b"online") == fab.NodeState("den", True)
    assert fab.parse_message(topics.state, b"offline") == fab.NodeState("den", False)
    assert fab.parse_message("other/den/state", b"online") is None


@pytest.mark.parametrize("payload, why", [(b"\xff", "not JSON"), (b"[1]", "JSON object"),
                                          (b'{"kind": "tag", "time": 1, "id": "x", "readerId": "r", "token": 5}',
                                           "JSON object"),
                                          (b'{"kind": "boom", "time": 1, "id": "x", "readerId": "r"}', "kind"),
                                          (b'{"kind": "removed", "time": "x", "id": "x", "readerId": "r"}', "time"),
                                          (b'{"kind": "removed", "time": 1, "id": 5, "readerId": "r"}', "'id'")])
def test_bad_events_are_named_errors(payload, why) -> None:
    with pytest.raises(fab.FabricError, match=why):
        fab.parse_message("tagd/n/events", payload)


@given(st.text(), st.binary(max_size=300))
@example("n/events", b"[" * 100_000)  # nesting deeper than the JSON parser's recursion
@example("n/events", b'{"kind": "tag", "time": ' + b"9" * 400 + b', "id": "x", "readerId": "r"}')  # too big a float
@example("n/events", b'{"kind": "removed", "time": 1e400, "id": "x", "readerId": "r"}')  # inf
@example("n/readers/r", b'{"readerId": []}')
def test_the_hub_parser_never_crashes(topic: str, payload: bytes) -> None:
    try:
        fab.parse_message("tagd/" + topic, payload)
    except fab.FabricError:
        pass


def test_redeliveries_are_seen_once_and_memory_is_bounded() -> None:
    d = fab.Dedupe(size=3)
    assert d.first_time("a") and not d.first_time("a")
    for key in "bcd":
        assert d.first_time(key)
    assert d.first_time("a")  # forgotten after 3 newer ones: bounded


@pytest.mark.parametrize("node", ["kitchen", "cab-01", "A_1"])
def test_node_names_are_topic_safe(node) -> None:
    assert fab.check_node(node) == node


@pytest.mark.parametrize("node", ["", "a/b", "a+", "#", "x" * 65, "ünï"])
def test_node_names_that_would_break_topics_are_refused(node) -> None:
    with pytest.raises(ValueError, match="topic level"):
        fab.check_node(node)


def test_core_publisher_filter_semantics() -> None:
    assert fab.matches_filter([], "tokens.added")
    assert fab.matches_filter(["media.started"], "media.started")
    assert not fab.matches_filter(["media.started"], "media.stopped")
    assert json.loads(fab.core_notification("media.started", {"mediaName": "Zelda"})) == {
        "method": "media.started", "params": {"mediaName": "Zelda"}}


# --- Home Assistant discovery, checked against HA's documented schema (SPEC §7) -----------------

HA_TAG_KEYS = {"topic", "value_template", "device"}  # MQTT tag scanner: topic is required
HA_ENTITY_REQUIRED = {"state_topic"}


def _device_ok(device: dict) -> None:
    assert isinstance(device["identifiers"], list) and device["identifiers"] and all(
        isinstance(i, str) for i in device["identifiers"])
    assert isinstance(device["name"], str)


def test_tag_scanner_discovery_follows_ha_schema() -> None:
    disc = fab.Discovery(fab.Topics("kitchen"), "0.2.0")
    topic, body = disc.tag_scanner("pn532-ujqixjv6")
    assert topic == "homeassistant/tag/tagd_kitchen_pn532-ujqixjv6/config"
    payload = json.loads(body)
    assert set(payload) == HA_TAG_KEYS
    assert payload["topic"] == "tagd/kitchen/ha/pn532-ujqixjv6" and "+" not in payload["topic"]
    assert payload["value_template"] == "{{ value_json.uid }}"
    _device_ok(payload["device"])
    # what HA renders from a tap on that topic is the tag id
    assert json.loads(fab.ha_tag_payload(Token(uid="04aabb", text="x")))["uid"] == "04aabb"


def test_sensor_discovery_has_stable_unique_ids_and_availability() -> None:
    a = fab.Discovery(fab.Topics("kitchen"), "0.2.0")
    b = fab.Discovery(fab.Topics("kitchen"), "9.9.9")  # another version, the same ids: stable across restarts
    msgs = a.node_sensors() + [a.reader_connected("pn532-ujqixjv6")]
    again = b.node_sensors() + [b.reader_connected("pn532-ujqixjv6")]
    ids = []
    for (topic, body), (topic2, body2) in zip(msgs, again):
        p, p2 = json.loads(body), json.loads(body2)
        component, object_id, config = topic.split("/")[1:]
        assert topic.startswith("homeassistant/") and config == "config" and component in ("sensor", "binary_sensor")
        assert p["unique_id"] == object_id == p2["unique_id"] and topic == topic2
        assert HA_ENTITY_REQUIRED <= set(p) and p["availability_topic"] == "tagd/kitchen/state"
        assert (p["payload_available"], p["payload_not_available"]) == ("online", "offline")
        _device_ok(p["device"])
        ids.append(p["unique_id"])
    assert len(set(ids)) == len(ids)


def test_a_bad_mqtt_reader_path_is_a_config_error_naming_the_key(tmp_path) -> None:
    from tagd.daemon.config import ConfigError, load_config

    cfg = tmp_path / "c.toml"
    cfg.write_text('[[readers.connect]]\ndriver = "mqtt"\npath = "broker:1883"\n')
    with pytest.raises(ConfigError) as info:
        load_config(cfg)
    assert info.value.key.startswith("readers.connect[0]") and "topic is required" in str(info.value)
