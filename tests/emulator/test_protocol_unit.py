"""Unit tests of ``iotda_emulator.protocol`` (topics, codec, rules) against IoTDA's documented forms.

The expected topic strings are spelled out by hand from ``doc/protocol.md`` §2.1, not produced by any
builder, so a typo in the catalogue fails here.
"""
from __future__ import annotations

import copy
import datetime as _dt
import json

import pytest

from iotda_emulator.protocol import codec, rules, topics

DEV = "dev_01-A"
RID = "5f0c2e4a-rid"

# (§2.1 row, builder name, takes a request id, expected topic, kind, direction)
CATALOGUE = [
    (1, "messages_up", False, f"$oc/devices/{DEV}/sys/messages/up", topics.MESSAGES_UP, "up"),
    (2, "messages_down", False, f"$oc/devices/{DEV}/sys/messages/down", topics.MESSAGES_DOWN, "down"),
    (3, "command", True, f"$oc/devices/{DEV}/sys/commands/request_id={RID}", topics.COMMAND, "down"),
    (4, "command_response", True, f"$oc/devices/{DEV}/sys/commands/response/request_id={RID}",
     topics.COMMAND_RESPONSE, "up"),
    (5, "properties_report", False, f"$oc/devices/{DEV}/sys/properties/report", topics.PROPERTIES_REPORT, "up"),
    (6, "gateway_properties_report", False, f"$oc/devices/{DEV}/sys/gateway/sub_devices/properties/report",
     topics.GATEWAY_PROPERTIES_REPORT, "up"),
    (7, "properties_set", True, f"$oc/devices/{DEV}/sys/properties/set/request_id={RID}",
     topics.PROPERTIES_SET, "down"),
    (8, "properties_set_response", True, f"$oc/devices/{DEV}/sys/properties/set/response/request_id={RID}",
     topics.PROPERTIES_SET_RESPONSE, "up"),
    (9, "properties_get", True, f"$oc/devices/{DEV}/sys/properties/get/request_id={RID}",
     topics.PROPERTIES_GET, "down"),
    (10, "properties_get_response", True, f"$oc/devices/{DEV}/sys/properties/get/response/request_id={RID}",
     topics.PROPERTIES_GET_RESPONSE, "up"),
    (11, "shadow_get", True, f"$oc/devices/{DEV}/sys/shadow/get/request_id={RID}", topics.SHADOW_GET, "up"),
    (12, "shadow_get_response", True, f"$oc/devices/{DEV}/sys/shadow/get/response/request_id={RID}",
     topics.SHADOW_GET_RESPONSE, "down"),
    (13, "events_up", False, f"$oc/devices/{DEV}/sys/events/up", topics.EVENTS_UP, "up"),
    (14, "events_down", False, f"$oc/devices/{DEV}/sys/events/down", topics.EVENTS_DOWN, "down"),
    (15, "bootstrap_up", False, f"$oc/devices/{DEV}/sys/bootstrap/up", topics.BOOTSTRAP_UP, "up"),
    (16, "bootstrap_down", False, f"$oc/devices/{DEV}/sys/bootstrap/down", topics.BOOTSTRAP_DOWN, "down"),
]


# ==== topics ==========================================================================================

@pytest.mark.parametrize("row,builder,with_rid,expected,kind,direction", CATALOGUE,
                         ids=[c[1] for c in CATALOGUE])
def test_every_system_topic_builds_and_classifies_back(row, builder, with_rid, expected, kind, direction):
    fn = getattr(topics, builder)
    built = fn(DEV, RID) if with_rid else fn(DEV)
    assert built == expected
    assert topics.build(kind, DEV, RID if with_rid else None) == expected
    info = topics.classify(built)
    assert (info.kind, info.device_id, info.request_id) == (kind, DEV, RID if with_rid else None)
    assert kind in (topics.UPLINK_KINDS if direction == "up" else topics.DOWNLINK_KINDS)
    assert (kind in topics.REQUEST_ID_KINDS) == with_rid


def test_the_sdk_builds_the_same_literal_topics():
    # the cross-check the independence is for: one table of literals, checked against both sides
    from iot_device_sdk_python.protocol import topics as sdk_topics

    for _, builder, with_rid, expected, _, _ in CATALOGUE:
        fn = getattr(sdk_topics, builder)
        assert (fn(DEV, RID) if with_rid else fn(DEV)) == expected


def test_each_response_answers_a_request_in_the_other_direction():
    assert set(topics.REQUEST_OF_RESPONSE) | set(topics.REQUEST_OF_RESPONSE.values()) == topics.REQUEST_ID_KINDS
    for response, request in topics.REQUEST_OF_RESPONSE.items():
        assert (response in topics.UPLINK_KINDS) != (request in topics.UPLINK_KINDS)
        assert topics.build(response, DEV, RID).replace("/response/", "/") == topics.build(request, DEV, RID)


def test_kinds_are_partitioned_by_direction():
    assert topics.UPLINK_KINDS.isdisjoint(topics.DOWNLINK_KINDS)
    assert len(topics.UPLINK_KINDS | topics.DOWNLINK_KINDS) == len(CATALOGUE)


def test_custom_user_topic_row_17():
    assert topics.user_topic(DEV, "a/b") == f"$oc/devices/{DEV}/user/a/b"
    assert topics.user_topic(DEV, "/lead") == f"$oc/devices/{DEV}/user/lead"
    info = topics.classify(f"$oc/devices/{DEV}/user/floor/1/temp")
    assert (info.kind, info.device_id, info.rest) == (topics.USER, DEV, "floor/1/temp")
    for bad in ("", "/", "a/+", "a/#", "x\x00"):
        with pytest.raises(ValueError):
            topics.user_topic(DEV, bad)


def test_broadcast_row_18_and_bridges_row_19():
    assert topics.broadcast("news/today") == "$oc/broadcast/news/today"
    info = topics.classify("$oc/broadcast/news/today")
    assert (info.kind, info.device_id, info.rest) == (topics.BROADCAST, None, "news/today")
    with pytest.raises(ValueError):
        topics.broadcast("#")
    # bridges are SDK evidence only (§4.6): recognised as nothing in particular, never an exception
    bridge = f"$oc/bridges/b1/devices/{DEV}/sys/messages/up"
    assert topics.classify(bridge) == topics.TopicInfo(topics.OTHER, rest=bridge)


@pytest.mark.parametrize("suffix,request_id", [
    ("?request_id=abc", "abc"), ("?encoding=gzip", None), ("?request_id=r1&encoding=gzip", "r1"),
    ("?encoding=gzip&request_id=r2", "r2")])
@pytest.mark.parametrize("builder,kind", [("messages_up", topics.MESSAGES_UP),
                                          ("properties_report", topics.PROPERTIES_REPORT),
                                          ("gateway_properties_report", topics.GATEWAY_PROPERTIES_REPORT)])
def test_tracing_query_on_reports(builder, kind, suffix, request_id):
    info = topics.classify(getattr(topics, builder)(DEV) + suffix)
    assert (info.kind, info.device_id, info.request_id) == (kind, DEV, request_id)


HOSTILE = [
    "", "$oc", "$oc/devices/", "$oc/devices", f"$oc/devices/{DEV}", f"$oc/devices/{DEV}/",
    "$oc/devices//sys/messages/up",                                  # empty device id
    "$oc/devices/a b/sys/messages/up", "$oc/devices/d+/sys/messages/up", "$oc/devices/#/sys/events/up",
    "$oc/devices/" + "d" * 129 + "/sys/messages/up",                 # device id too long
    "$oc/devices/dév/sys/messages/up",                               # non-ASCII device id
    f"$oc/devices/{DEV}/sys/commands/request_id=",                   # empty request id
    f"$oc/devices/{DEV}/sys/commands/request_id=a/b",                # request id with a level separator
    f"$oc/devices/{DEV}/sys/commands/request_id=+",
    f"$oc/devices/{DEV}/sys/commands/request_id=x\x00y",
    f"$oc/devices/{DEV}/sys/commands/{RID}",                          # no "request_id=" mark
    f"$oc/devices/{DEV}/sys/commands",
    f"$oc/devices/{DEV}/sys/messages/up/extra",
    f"$oc/devices/{DEV}/sys/messages/up?",                            # empty query
    f"$oc/devices/{DEV}/sys/messages/up?request_id=",
    f"$oc/devices/{DEV}/sys/messages/up?request_id=a&request_id=b",
    f"$oc/devices/{DEV}/sys/messages/up?request_id=a/b",
    f"$oc/devices/{DEV}/sys/events/up?request_id=a",                  # events take no query
    f"$oc/devices/{DEV}/sys/messages/down?x=1",
    f"$oc/devices/{DEV}/SYS/messages/up",                             # topics are case-sensitive
    f"$oc/devices/{DEV}/user/", f"$oc/devices/{DEV}/user/a/+",
    "$oc/broadcast/", "$OC/devices/d/sys/messages/up", "/$oc/devices/d/sys/messages/up",
    "$oc/devices/d/sys/messages/up".replace("/", "//"), "a" * 70000,
]


@pytest.mark.parametrize("topic", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_topics_are_other_and_never_raise(topic):
    info = topics.classify(topic)
    assert info.kind == topics.OTHER
    assert info.request_id is None
    assert info.device_id is None or topics.is_valid_device_id(info.device_id)


@pytest.mark.parametrize("value", [None, 5, b"$oc/devices/d/sys/messages/up", ["x"]])
def test_non_string_topics_are_other(value):
    assert topics.classify(value).kind == topics.OTHER


def test_other_topic_under_a_device_keeps_the_device():
    topic = f"$oc/devices/{DEV}/sys/unknown/thing"
    assert topics.classify(topic) == topics.TopicInfo(topics.OTHER, DEV, rest=topic)


def test_builders_refuse_ids_that_are_not_one_level():
    for bad in ("", "a/b", "a+", "#", "n\x00", None, 3):
        with pytest.raises(ValueError):
            topics.messages_down(bad)
        with pytest.raises(ValueError):
            topics.command(DEV, bad)
    with pytest.raises(ValueError):
        topics.build(topics.EVENTS_DOWN, DEV, "r")        # no request id in that topic
    with pytest.raises(ValueError):
        topics.build("nonsense", DEV)


def test_device_id_rule():
    assert topics.is_valid_device_id("a" * 128) and topics.is_valid_device_id("A_b-9")
    for bad in ("", "a" * 129, "a b", "a/b", "a.b", "dév", None, 7):
        assert not topics.is_valid_device_id(bad)
    assert topics.device_root(DEV) == f"$oc/devices/{DEV}/"


def test_implicit_subscriptions_cover_every_system_downlink_but_bootstrap():
    filters = topics.implicit_subscriptions(DEV)
    covered = {kind for _, _, _, expected, kind, _ in CATALOGUE
               if any(topics.topic_matches(f, expected) for f in filters)}
    downlinks = topics.DOWNLINK_KINDS - {topics.BOOTSTRAP_DOWN}
    # exactly the downlinks: never the device's own ".../commands/response/..." and other uplinks
    assert covered == downlinks


@pytest.mark.parametrize("flt,topic,expected", [
    ("a/b", "a/b", True), ("a/+", "a/b", True), ("a/+", "a/b/c", False), ("a/#", "a/b/c", True),
    ("a/#", "a", True), ("#", "a/b", True), ("+/b", "a/b", True), ("+", "a", True), ("+", "a/b", False),
    ("a/+/c", "a//c", True), ("a/b", "a/b/", False), ("#", "$oc/devices/d/sys/messages/up", False),
    ("+/devices/d/sys/messages/up", "$oc/devices/d/sys/messages/up", False),
    (topics.PLATFORM_UPLINK_FILTER, f"$oc/devices/{DEV}/sys/events/up", True),
    (topics.PLATFORM_UPLINK_FILTER, f"$oc/devices/{DEV}/user/x", False),
    (topics.PLATFORM_USER_FILTER, f"$oc/devices/{DEV}/user/x/y", True),
    ("a/#/c", "a/b/c", False),           # '#' not last: not a valid filter, matches nothing
])
def test_topic_matches(flt, topic, expected):
    assert topics.topic_matches(flt, topic) is expected


@pytest.mark.parametrize("pattern,topic,expected", [
    ("policy/%u/#", "policy/dev1/a/b", "dev1"), ("policy/%u/#", "policy/dev1", "dev1"),
    ("policy/%u/+", "policy/dev1/x", "dev1"), ("policy/%u/+", "policy/dev1/x/y", None),
    ("policy/%u", "other/dev1", None), ("policy/#", "policy/dev1", None), ("policy/%u", "policy/", None),
])
def test_policy_device_id(pattern, topic, expected):
    assert topics.policy_device_id(pattern, topic) == expected


# ==== codec ===========================================================================================

def test_dumps_is_compact_and_keeps_unicode():
    obj = {"a": [1, 2.5, None, True], "名": "温度"}
    assert codec.dumps(obj) == '{"a":[1,2.5,null,true],"名":"温度"}'
    assert codec.dumps_bytes(obj) == codec.dumps(obj).encode("utf-8")
    assert json.loads(codec.dumps_bytes(obj)) == obj


@pytest.mark.parametrize("payload", [b'{"a":1}', '{"a":1}', bytearray(b'{"a":1}'), memoryview(b' {"a":1} ')])
def test_loads_object_accepts_bytes_and_text(payload):
    assert codec.loads_object(payload) == {"a": 1}


@pytest.mark.parametrize("payload,why", [
    (b"", "empty"), (b"   ", "empty"), (b"\xff\xfe{}", "UTF-8"), (b"{", "not JSON"), (b"[1]", "array"),
    (b'"x"', "string"), (b"1", "number"), (b"null", "null"), (b"true", "boolean"),
    (b'{"a":NaN}', "NaN"), (b'{"a":-Infinity}', "Infinity"), (b"[" * 100_000, "deep"),
    (b'{"a":' * 100_000, "deep"), (b'{"a":' + b"9" * 5000 + b"}", "usable"), (12, "int"),
])
def test_loads_object_raises_only_payload_error(payload, why):
    with pytest.raises(codec.PayloadError) as info:
        codec.loads_object(payload)
    assert isinstance(info.value, ValueError)
    assert why.lower() in str(info.value).lower() or why == "deep" and "deep" in str(info.value)


def test_payload_error_never_quotes_the_payload():
    secret = "s3cr3t-token-value"
    with pytest.raises(codec.PayloadError) as info:
        codec.loads_object(f'{{"token": "{secret}"'.encode())
    assert secret not in str(info.value)


def test_loads_keeps_any_json_value():
    assert codec.loads(b"[1,2]") == [1, 2]
    assert codec.loads_object('{"x":{"y":[{"z":1}]}}') == {"x": {"y": [{"z": 1}]}}


@pytest.mark.parametrize("value,expected", [
    (5, 5), (-3, -3), (7.0, 7), ("12", 12), (" -12 ", -12), ("+4", 4), (True, None), (False, None),
    (7.5, None), (float("nan"), None), (float("inf"), None), ("1.5", None), ("--5", None), ("²", None),
    ("", None), ("1e3", None), (None, None), ([], None), ("9" * 40, None),
])
def test_as_int(value, expected):
    assert codec.as_int(value) == expected


def test_event_time_format():
    assert codec.event_time(0) == "19700101T000000Z"
    assert codec.event_time(1449922332) == "20151212T121212Z"     # the docs' example, §2.5
    now = codec.event_time()
    assert len(now) == 16 and now[8] == "T" and now.endswith("Z")
    assert codec.utc_hour_stamp(1449922332) == "2015121212"


@pytest.mark.parametrize("text,expected", [
    ("20151212T121212Z", _dt.datetime(2015, 12, 12, 12, 12, 12, tzinfo=_dt.timezone.utc)),
    ("2015-12-12T12:12:12.345Z", _dt.datetime(2015, 12, 12, 12, 12, 12, 345000, tzinfo=_dt.timezone.utc)),
    ("2015-12-12T12:12:12Z", _dt.datetime(2015, 12, 12, 12, 12, 12, tzinfo=_dt.timezone.utc)),
])
def test_parse_event_time_accepts_documented_forms(text, expected):
    assert codec.parse_event_time(text) == expected
    assert codec.parse_event_time(codec.event_time(expected.timestamp())) == expected.replace(microsecond=0)


@pytest.mark.parametrize("text", [
    "2015121T121212Z", "20151312T121212Z", "20151212T246000Z", "20151212 121212Z", "20151212T121212",
    "20151212t121212z", "２０１５1212T121212Z", "", None, 20151212, "2015-12-12 12:12:12",
])
def test_parse_event_time_refuses_the_rest(text):
    with pytest.raises(ValueError):
        codec.parse_event_time(text)


def test_rule_start_time_round_trip():
    moment = _dt.datetime(2030, 1, 2, 3, 4, 5, tzinfo=_dt.timezone(_dt.timedelta(hours=8)))
    assert codec.rule_start_time(moment) == "2030-01-01 19:04:05"
    assert codec.parse_rule_start_time("2030-01-01 19:04:05") == moment
    for bad in ("2030-01-01T19:04:05", "2030-13-01 00:00:00", "", None):
        with pytest.raises(ValueError):
            codec.parse_rule_start_time(bad)


# ==== rules ===========================================================================================

def _rule(**overrides):
    base = {
        "ruleId": "r1", "ruleName": "hot", "logic": "and", "status": "active", "ruleVersionInShadow": 1,
        "timeRange": {"startTime": "08:00", "endTime": "20:00", "daysOfWeek": "1,2,3"},
        "conditions": [{"type": "DEVICE_DATA", "operator": ">", "value": "30",
                        "deviceInfo": {"deviceId": DEV, "path": "sensor/temp"}}],
        "actions": [{"type": "DEVICE_CMD", "status": "enable", "deviceId": DEV,
                     "command": {"serviceId": "fan", "commandName": "on", "commandBody": {"speed": 2}}}],
    }
    base.update(overrides)
    return base


def _data(op, value="", in_values=None, path="s/p"):
    cond = {"type": "DEVICE_DATA", "operator": op, "value": value, "deviceInfo": {"deviceId": DEV, "path": path}}
    if in_values is not None:
        cond["inValues"] = in_values
    return cond


ACCEPTED = [
    _rule(),
    _rule(status="inactive"),
    _rule(logic="or", timeRange=None, ruleVersionInShadow=None, ruleName=None),
    _rule(timeRange={}),
    _rule(conditions=[_data(">=", 1.5), _data("<", "-2"), _data("<=", "3e2"), _data("=", "on"),
                      _data("between", "1,5"), _data("between", "-5,-5"), _data("in", in_values=["a", 2])]),
    _rule(conditions=[{"type": "DAILY_TIMER", "time": "23:59", "daysOfWeek": "1,7"}]),
    _rule(conditions=[{"type": "DAILY_TIMER", "time": "00:00"}]),
    _rule(conditions=[{"type": "SIMPLE_TIMER", "startTime": "2030-01-02 03:04:05", "repeatInterval": 60,
                       "repeatCount": 3}]),
    _rule(conditions=[{"type": "SIMPLE_TIMER", "startTime": "2030-01-02 03:04:05"}]),
    _rule(logic="or", conditions=[{"type": "DAILY_TIMER", "time": "07:30"}, _data(">", "1")]),
    _rule(actions=[{"type": "DEVICE_CMD", "status": "disable", "deviceId": "",
                    "command": {"commandName": "c"}}]),
]


@pytest.mark.parametrize("rule", ACCEPTED, ids=range(len(ACCEPTED)))
def test_valid_rules_are_accepted_unchanged(rule):
    before = copy.deepcopy(rule)
    assert rules.validate_rule(rule) is rule
    assert rule == before


def _without(key):
    r = _rule()
    del r[key]
    return r


REJECTED = [
    ("x", "", "JSON object"),
    (_rule(ruleId=""), "ruleId", "empty"),
    (_without("ruleId"), "ruleId", "missing"),
    (_rule(ruleId=5), "ruleId", "string"),
    (_without("status"), "status", "active"),
    (_rule(status="enable"), "status", "active"),
    (_rule(ruleVersionInShadow=-1), "ruleVersionInShadow", ">= 0"),
    (_rule(ruleVersionInShadow="2"), "ruleVersionInShadow", "integer"),
    (_rule(logic="xor"), "logic", "'and' or 'or'"),
    (_rule(timeRange="08:00-20:00"), "timeRange", "object"),
    (_rule(timeRange={"startTime": "8:00", "endTime": "20:00"}), "timeRange.startTime", "HH:MM"),
    (_rule(timeRange={"startTime": "08:00", "endTime": "24:00"}), "timeRange.endTime", "HH:MM"),
    (_rule(timeRange={"startTime": "08:00"}), "timeRange.endTime", "missing"),
    (_rule(timeRange={"startTime": "08:00", "endTime": "09:00", "daysOfWeek": "0,8"}), "timeRange.daysOfWeek",
     "1 (Sunday)"),
    (_rule(conditions=[]), "conditions", "non-empty"),
    (_rule(conditions={"a": 1}), "conditions", "non-empty"),
    (_rule(conditions=["x"]), "conditions[0]", "object"),
    (_rule(conditions=[{"type": "DEVICE_LINKAGE"}]), "conditions[0].type", "DEVICE_DATA"),
    (_rule(conditions=[{"type": "DEVICE_DATA", "operator": ">", "value": "1"}]), "conditions[0].deviceInfo",
     "object"),
    (_rule(conditions=[_data(">", "1", path="temp")]), "conditions[0].deviceInfo.path", "service_id/property"),
    (_rule(conditions=[_data(">", "1", path="s/a/b")]), "conditions[0].deviceInfo.path", "service_id/property"),
    (_rule(conditions=[_data("!=", "1")]), "conditions[0].operator", "one of"),
    (_rule(conditions=[_data(">", "warm")]), "conditions[0].value", "number"),
    (_rule(conditions=[_data(">", "nan")]), "conditions[0].value", "number"),
    (_rule(conditions=[_data("<", True)]), "conditions[0].value", "string or a number"),
    (_rule(conditions=[_data("between", "oops")]), "conditions[0].value", "min,max"),
    (_rule(conditions=[_data("between", "1,2,3")]), "conditions[0].value", "min,max"),
    (_rule(conditions=[_data("between", "5,1")]), "conditions[0].value", "min <= max"),
    (_rule(conditions=[_data("in")]), "conditions[0].inValues", "empty"),
    (_rule(conditions=[_data("in", in_values="a,b")]), "conditions[0].inValues", "list"),
    (_rule(conditions=[{"type": "DAILY_TIMER", "time": "7:30"}]), "conditions[0].time", "HH:MM"),
    (_rule(conditions=[{"type": "DAILY_TIMER", "time": "07:30", "daysOfWeek": 3}]), "conditions[0].daysOfWeek",
     "1 (Sunday)"),
    (_rule(conditions=[{"type": "SIMPLE_TIMER", "startTime": "20300102T030405Z"}]), "conditions[0].startTime",
     "YYYY-MM-DD"),
    (_rule(conditions=[{"type": "SIMPLE_TIMER", "startTime": "2030-01-02 03:04:05", "repeatCount": 3}]),
     "conditions[0].repeatInterval", "> 0"),
    (_rule(conditions=[{"type": "SIMPLE_TIMER", "startTime": "2030-01-02 03:04:05", "repeatInterval": -1}]),
     "conditions[0].repeatInterval", ">= 0"),
    (_rule(conditions=[{"type": "SIMPLE_TIMER", "startTime": "2030-01-02 03:04:05", "repeatCount": "2"}]),
     "conditions[0].repeatCount", "integer"),
    (_rule(conditions=[{"type": "DAILY_TIMER", "time": "07:30"}, _data(">", "1")]), "logic", "only under 'or'"),
    (_rule(actions=[]), "actions", "non-empty"),
    (_rule(actions=[{"type": "DEVICE_CMD", "status": "active", "deviceId": DEV, "command": {"commandName": "c"}}]),
     "actions[0].status", "'enable' or 'disable'"),
    (_rule(actions=[{"type": "DEVICE_CMD", "deviceId": DEV, "command": {"commandName": "c"}}]),
     "actions[0].status", "'enable' or 'disable'"),
    (_rule(actions=[{"type": "SMS", "status": "enable", "deviceId": DEV, "command": {"commandName": "c"}}]),
     "actions[0].type", "DEVICE_CMD"),
    (_rule(actions=[{"type": "DEVICE_CMD", "status": "enable", "deviceId": DEV}]), "actions[0].command", "object"),
    (_rule(actions=[{"type": "DEVICE_CMD", "status": "enable", "deviceId": DEV, "command": {"commandName": ""}}]),
     "actions[0].command.commandName", "empty"),
    (_rule(actions=[{"type": "DEVICE_CMD", "status": "enable", "deviceId": DEV,
                     "command": {"commandName": "c", "commandBody": "{}"}}]),
     "actions[0].command.commandBody", "object"),
]


@pytest.mark.parametrize("rule,field,reason", REJECTED, ids=[r[1] or "root" for r in REJECTED])
def test_invalid_rules_are_refused_with_the_field_named(rule, field, reason):
    with pytest.raises(rules.RuleError) as info:
        rules.validate_rule(rule)
    assert info.value.field == field
    assert str(info.value).startswith(f"{field}: " if field else "")
    assert reason in str(info.value)
    assert isinstance(info.value, ValueError)
