"""The SDK's protocol layer follows IoTDA's documented protocol exactly (doc/protocol.md §2, §3.8, §6.5).

Each test names the deviation it guards against: topics with a bad device id, request id or query
(§2, §2.1, §2.11), integers and JSON from untrusted text, the ``event_time`` shape (§6.5) and the
device-rule conditions (§3.8).
"""
from __future__ import annotations

import logging
import threading

import pytest

from iot_device_sdk_python import CommandListener, CommandRsp, PropertyListener
from iot_device_sdk_python.client.iot_result import IotResult
from iot_device_sdk_python.protocol import codec, topics
from iot_device_sdk_python.rule.rule_parser import RuleParseError, parse_rule
from iot_device_sdk_python.transport.raw_message import RawMessage
from tests.rule._helpers import daily_cond, data_cond, rule, simple_cond
from tests.waiting import wait_until

DEV = "prod_node-1"
ROOT = f"$oc/devices/{DEV}/sys/"


# ---- 1. topics.classify ------------------------------------------------------------------------------

@pytest.mark.parametrize("topic,kind,request_id", [
    (ROOT + "commands/request_id=c-1", topics.COMMAND, "c-1"),
    (ROOT + "properties/set/request_id=a=b&c", topics.PROPERTIES_SET, "a=b&c"),
    (ROOT + "shadow/get/response/request_id=9", topics.SHADOW_GET_RESPONSE, "9"),
    (ROOT + "messages/down", topics.MESSAGES_DOWN, None),
    (ROOT + "messages/up?request_id=t1", topics.MESSAGES_UP, "t1"),
    (ROOT + "properties/report?encoding=gzip", topics.PROPERTIES_REPORT, None),
    (ROOT + "gateway/sub_devices/properties/report?request_id=t2&encoding=gzip",
     topics.GATEWAY_PROPERTIES_REPORT, "t2"),
    (ROOT + "messages/up?encoding=gzip&request_id=t3", topics.MESSAGES_UP, "t3"),
])
def test_documented_topics_classify_with_their_request_id(topic, kind, request_id):
    info = topics.classify(topic)
    assert (info.kind, info.device_id, info.request_id) == (kind, DEV, request_id)
    assert topics.request_id_of(topic) == request_id


@pytest.mark.parametrize("topic", [
    # device ids IoTDA cannot allocate (§1.2: 1-128 of letters, digits, "_" and "-")
    "$oc/devices/bad id/sys/commands/request_id=1",
    "$oc/devices/dev.1/sys/messages/down",
    "$oc/devices/" + "d" * 129 + "/sys/events/down",
    "$oc/devices/dév/sys/properties/get/request_id=1",
    # request ids that are not exactly one topic level
    ROOT + "commands/request_id=",
    ROOT + "commands/request_id=a/b",
    ROOT + "properties/set/request_id=x/",
    ROOT + "properties/get/request_id=+",
    ROOT + "shadow/get/response/request_id=#",
    ROOT + "commands/request_id=a\x00b",
    # a query where IoTDA documents none (downlinks, request-id topics)
    ROOT + "commands/request_id=c1?request_id=c2",
    ROOT + "properties/set/request_id=s1?encoding=gzip",
    ROOT + "messages/down?request_id=1",
    ROOT + "events/down?encoding=gzip",
    # report queries other than request_id={id} and encoding=gzip, each once
    ROOT + "messages/up?foo=1",
    ROOT + "messages/up?request_id=",
    ROOT + "messages/up?request_id=a/b",
    ROOT + "messages/up?encoding=deflate",
    ROOT + "properties/report?request_id=1&request_id=2",
    ROOT + "properties/report?encoding=gzip&encoding=gzip",
    ROOT + "properties/report?",
    ROOT + "properties/report?request_id",
    ROOT + "messages/up?request_id=1&",
])
def test_malformed_topics_are_other_with_no_request_id(topic):
    info = topics.classify(topic)
    assert info.kind == topics.OTHER
    assert info.request_id is None
    assert topics.request_id_of(topic) is None


def test_invalid_device_id_is_not_reported_as_a_device():
    assert topics.classify("$oc/devices/a b/user/x").device_id is None
    assert topics.classify("$oc/devices/a b/user/x").kind == topics.OTHER


def test_malformed_system_topic_is_logged_once_and_never_answered(make_device, caplog):
    """Straight into the client's router: the bad device id cannot come through a broker subscription."""
    device = make_device(connect=False)
    client = device.get_client()
    called = []

    class Cmd(CommandListener):
        def on_command(self, request_id, service_id, command_name, paras):
            called.append(request_id)

    client.set_command_listener(Cmd())
    bogus = ["$oc/devices/bad id/sys/commands/request_id=r1", ROOT + "commands/request_id=r/2"]
    with caplog.at_level(logging.DEBUG, logger="iot_device_sdk_python"):
        for topic in bogus:
            client.on_message_received(RawMessage(topic, b'{"paras":{}}'))
    assert called == []
    for topic in bogus:
        lines = [r for r in caplog.records if r.levelno >= logging.INFO and topic[-6:] in r.getMessage()]
        assert len(lines) == 1, [r.getMessage() for r in lines]
        assert lines[0].levelno == logging.WARNING


@pytest.mark.parametrize("bad,good,answer_kind", [
    ("commands/request_id=bogus-rid/extra", "commands/request_id=good-rid", topics.COMMAND_RESPONSE),
    ("commands/request_id=bogus-rid?x=1", "commands/request_id=good-rid", topics.COMMAND_RESPONSE),
    ("properties/set/request_id=bogus-rid?encoding=gzip", "properties/set/request_id=good-rid",
     topics.PROPERTIES_SET_RESPONSE),
    ("properties/get/request_id=bogus-rid/x", "properties/get/request_id=good-rid", topics.PROPERTIES_GET_RESPONSE),
])
def test_bogus_downlink_through_the_broker_gets_no_answer(emulator, make_device, caplog, bad, good, answer_kind):
    """End to end: the platform side publishes a malformed downlink and then a good one; the device acts on
    the good one only, and logs the bad one once."""
    device = make_device()
    did = device.get_device_id()
    client = device.get_client()
    seen = []

    class Listener(CommandListener, PropertyListener):
        def on_command(self, request_id, service_id, command_name, paras):
            seen.append(request_id)
            client.respond_command(request_id, CommandRsp(0, "ok", {}))

        def on_property_set(self, request_id, services):
            seen.append(request_id)
            client.respond_properties_set(request_id, IotResult(0, "Success"))

        def on_property_get(self, request_id, service_id):
            seen.append(request_id)
            client.respond_properties_get(request_id, [])

    client.set_command_listener(Listener())
    client.set_properties_listener(Listener())
    bad_rid, good_rid = "bogus-rid", "good-rid"
    bad, good = f"$oc/devices/{did}/sys/{bad}", f"$oc/devices/{did}/sys/{good}"
    body = b'{"paras":{},"services":[{"service_id":"s","properties":{"p":1}}],"service_id":"s"}'
    with caplog.at_level(logging.DEBUG, logger="iot_device_sdk_python"):
        emulator.core.publish(bad, body, 1)
        emulator.core.publish(good, body, 1)
        emulator.wait_for_trace(lambda e: e.device_id == did and e.kind == answer_kind
                                and e.topic.endswith(good_rid), 10)
        client.get_dispatcher().wait_idle(5)
    assert seen == [good_rid]
    assert not [e for e in emulator.trace(did, "up") if bad_rid in e.topic]
    assert emulator.is_online(did)
    about = [r for r in caplog.records if r.name.startswith("iot_device_sdk_python")
             and r.levelno >= logging.INFO and bad_rid in r.getMessage()]
    assert len(about) == 1, [r.getMessage() for r in about]


# ---- 2. codec.as_int -----------------------------------------------------------------------------------

@pytest.mark.parametrize("value,expected", [
    (5, 5), (-5, -5), (7.0, 7), ("12", 12), ("-12", -12), ("+3", 3), (" 42 ", 42),
    ("9" * codec.MAX_INT_DIGITS, int("9" * codec.MAX_INT_DIGITS)),
])
def test_as_int_reads_integers(value, expected):
    assert codec.as_int(value) == expected


@pytest.mark.parametrize("value", [
    "--5", "-", "+-1", "1-", "", " ", "1.5", "1.0", "1e3", "0x10", "1_000", "٣", "²", "12a", "nan", "inf",
    "9" * (codec.MAX_INT_DIGITS + 1), "1" * 5000, True, False, 1.5, float("nan"), float("inf"), float("-inf"),
    None, [1], {"a": 1}, b"12",
])
def test_as_int_returns_none_for_anything_else(value):
    assert codec.as_int(value) is None


# ---- 3. codec.loads_object -----------------------------------------------------------------------------

@pytest.mark.parametrize("payload", [
    b'{"v": NaN}', b'{"v": Infinity}', b'{"v": -Infinity}', '{"paras": {"x": [1, NaN]}}',
])
def test_loads_object_refuses_nan_and_infinity(payload):
    with pytest.raises(ValueError, match="not JSON"):
        codec.loads_object(payload)


def test_loads_object_turns_oversized_integers_into_value_error():
    with pytest.raises(ValueError, match="not usable JSON|not JSON"):
        codec.loads_object(b'{"v": ' + b"1" * 5000 + b"}")


def test_nan_command_gets_the_malformed_payload_answer(emulator, make_device):
    """End to end: a command whose JSON has NaN is answered with a failure, like any malformed payload."""
    device = make_device()
    did = device.get_device_id()
    called = threading.Event()

    class Cmd(CommandListener):
        def on_command(self, request_id, service_id, command_name, paras):
            called.set()

    device.get_client().set_command_listener(Cmd())
    emulator.core.publish(topics.command(did, "nan-1"), b'{"paras": {"level": NaN}}', 1)
    entry = emulator.wait_for_trace(lambda e: e.device_id == did and e.kind == topics.COMMAND_RESPONSE
                                    and e.topic.endswith("nan-1"), 10)
    assert entry.json()["result_code"] != 0
    assert not called.is_set()


# ---- 4. codec.parse_event_time -------------------------------------------------------------------------

@pytest.mark.parametrize("text,expected", [
    ("20251212T121212Z", (2025, 12, 12, 12, 12, 12, 0)),
    ("2025-12-12T12:12:12.345Z", (2025, 12, 12, 12, 12, 12, 345000)),  # the HTTPS API's shape, on purpose
])
def test_parse_event_time_reads_the_documented_shapes(text, expected):
    t = codec.parse_event_time(text)
    assert (t.year, t.month, t.day, t.hour, t.minute, t.second, t.microsecond) == expected
    assert t.utcoffset().total_seconds() == 0


@pytest.mark.parametrize("text", [
    "2025121T1212Z", "20251212T12121Z", "20251212 121212Z", "20251212T121212", "20251212T121212z",
    "20251212T121212+0800", " 20251212T121212Z", "20251212T121212Z ", "20251312T121212Z", "20250230T000000Z",
    "2025-12-12T12:12:12Z", "2025-12-12T12:12:12.3Z", "2025-12-12T12:12:12.345678Z", "2025-12-12 12:12:12",
    "2025-1-2T3:4:5.000Z", "", 20251212, None,
])
def test_parse_event_time_refuses_other_shapes(text):
    with pytest.raises(ValueError):
        codec.parse_event_time(text)


def test_event_time_round_trips():
    assert codec.event_time(codec.parse_event_time("20300102T030405Z").timestamp()) == "20300102T030405Z"


# ---- 5. device-rule conditions (§3.8) ------------------------------------------------------------------

@pytest.mark.parametrize("condition,reason", [
    (data_cond("s/p", "between", "50,10"), "min <= max"),
    (data_cond("s/p", "between", "1,x"), "between"),
    (data_cond("s/p", "in", in_values=[True]), "inValues"),
    (data_cond("s/p", "in", in_values=[{"a": 1}]), "inValues"),
    (data_cond("s/p", "in", in_values=[None]), "inValues"),
    (dict(data_cond("s/p", "="), inValues={}), "inValues"),
    (dict(data_cond("s/p", "="), inValues="1,2"), "inValues"),
    (daily_cond("7:05"), "HH:MM"),
    (daily_cond(" 07:05"), "HH:MM"),
    (daily_cond("10:00", "1,,2"), "daysOfWeek"),
    (simple_cond("2030-01-02T03:04:05Z"), "startTime"),
    (simple_cond("2030-01-02 03:04"), "startTime"),
    (simple_cond("2030-1-2 3:4:5"), "startTime"),
    (simple_cond("2030-02-30 00:00:00"), "startTime"),
    (simple_cond("2030-01-02 03:04:05", "--5", 1), "repeatInterval"),
    (simple_cond("2030-01-02 03:04:05", "1_000", 2), "repeatInterval"),
    (simple_cond("2030-01-02 03:04:05", 60, 2.5), "repeatCount"),
    (simple_cond("2030-01-02 03:04:05", 60, True), "repeatCount"),
    (simple_cond("2030-01-02 03:04:05", 10 ** 15, 10 ** 6), "year 9999"),
])
def test_rule_conditions_outside_the_protocol_are_refused(condition, reason):
    with pytest.raises(RuleParseError, match=reason):
        parse_rule(rule("r1", [condition]))


def test_time_range_needs_two_digit_times():
    with pytest.raises(RuleParseError, match="timeRange"):
        parse_rule(rule("r1", [data_cond("s/p", ">", "1")], time_range={"startTime": "9:00", "endTime": "10:00"}))


@pytest.mark.parametrize("condition", [
    data_cond("s/p", "between", "10,50"),
    data_cond("s/p", "between", "5,5"),
    data_cond("s/p", "between", "-3.5, 2"),
    data_cond("s/p", "in", in_values=["a", 1, 2.5]),
    daily_cond("07:05", ""),
    simple_cond("2030-01-02 03:04:05", "60", "3"),
])
def test_rule_conditions_of_the_protocol_still_parse(condition):
    assert parse_rule(rule("r1", [condition])).conditions[0].type == condition["type"]


def test_backwards_between_from_the_platform_is_rejected_and_the_other_rule_runs(emulator, make_device, caplog):
    """End to end: the emulator itself refuses such a rule (iotda_emulator/protocol/rules.py), so the platform
    side is played by hand: announce two rule versions, then answer with one good and one backwards rule."""
    device = make_device(enable_rule_manage=True)
    did = device.get_device_id()
    svc = device.get_rule_manage_service()
    good = rule("good-rule", [data_cond("s/p", "between", "10,50")])
    bad = rule("bad-rule", [data_cond("s/p", "between", "50,10")])
    announce = {"services": [{"service_id": "$device_rule",
                              "properties": {"good-rule": {"version": 1}, "bad-rule": {"version": 1}}}]}
    with caplog.at_level(logging.DEBUG, logger="iot_device_sdk_python"):
        emulator.core.publish(topics.properties_set(did, "announce-1"), codec.dumps_bytes(announce), 1)
        emulator.wait_for_trace(lambda e: e.device_id == did and e.kind == topics.EVENTS_UP
                                and b"device_rule_config_request" in e.payload, 10)
        answer = {"object_device_id": did, "services": [{
            "service_id": "$device_rule", "event_type": "device_rule_config_response",
            "event_time": codec.event_time(), "paras": {"rulesInfos": [bad, good]}}]}
        emulator.core.publish(topics.events_down(did), codec.dumps_bytes(answer), 1)
        wait_until(lambda: svc.get_rule("good-rule") is not None)
        device.get_client().get_dispatcher().wait_idle(5)
    assert svc.get_rule("good-rule") is not None
    assert svc.get_rule("bad-rule") is None
    about = [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO and "bad-rule" in r.getMessage()]
    assert len(about) == 1 and "min <= max" in about[0], about
