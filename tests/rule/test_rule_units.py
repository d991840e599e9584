"""Unit tests of the rule engine's pure parts: time ranges, operators, parsing, and the service's state
machine driven with a controllable clock (a recording stand-in for the DeviceClient: no network here;
the end-to-end tests against the emulator are in test_rule_e2e.py)."""
from __future__ import annotations

import datetime as _dt
import logging

import pytest

from iot_device_sdk_python.client.request.device_event import DeviceEvent
from iot_device_sdk_python.client.request.service_property import ServiceProperty
from iot_device_sdk_python.rule.model.condition_execute import ConditionExecute
from iot_device_sdk_python.rule.model.connditions import Condition
from iot_device_sdk_python.rule.model.device_info import DeviceInfo
from iot_device_sdk_python.rule.model.time_range import TimeRange
from iot_device_sdk_python.rule.rule_manage_service import RuleManageService
from iot_device_sdk_python.rule.rule_parser import RuleParseError, parse_rule
from iot_device_sdk_python.rule.util.time_util import check_time_range, get_rule_week, platform_weekday
from tests.rule._helpers import FakeClock, at, cmd_action, daily_cond, data_cond, rule, simple_cond

# 2024-06-02 is a Sunday; so 2024-06-02 + k days has platform day k+1 (1 = Sunday ... 7 = Saturday)
SUNDAY = (2024, 6, 2)


def day(platform_day: int, h: int = 0, mi: int = 0, s: int = 0) -> _dt.datetime:
    return at(*SUNDAY, h, mi, s) + _dt.timedelta(days=platform_day - 1)


def tr(start: str, end: str, days: str = "") -> TimeRange:
    t = TimeRange()
    t.start_time, t.end_time, t.days_of_week = start, end, days
    return t


# ---- time ranges ---------------------------------------------------------------------------------

@pytest.mark.parametrize("iso,expected", [(1, 2), (2, 3), (3, 4), (4, 5), (5, 6), (6, 7), (7, 1), ("6", 7)])
def test_get_rule_week_maps_iso_days_to_platform_days(iso, expected):
    assert get_rule_week(iso) == expected


@pytest.mark.parametrize("platform_day", range(1, 8))
def test_each_weekday_including_saturday(platform_day):
    moment = day(platform_day, 12, 0)
    assert platform_weekday(moment) == platform_day
    assert check_time_range(tr("11:00", "13:00", str(platform_day)), moment)
    other = platform_day % 7 + 1
    assert not check_time_range(tr("11:00", "13:00", str(other)), moment)


def test_plain_window_bounds_inclusive_to_the_minute():
    w = tr("08:30", "17:45")
    assert not check_time_range(w, day(3, 8, 29, 59))
    assert check_time_range(w, day(3, 8, 30, 0))
    assert check_time_range(w, day(3, 17, 45, 59))
    assert not check_time_range(w, day(3, 17, 46, 0))


def test_window_across_midnight_uses_the_start_day():
    w = tr("22:00", "02:00", "7")  # Saturday night into Sunday morning
    assert check_time_range(w, day(7, 23, 0))          # Saturday 23:00
    assert check_time_range(w, day(8, 1, 30))          # Sunday 01:30 belongs to Saturday's window
    assert not check_time_range(w, day(8, 23, 0))      # Sunday 23:00: Sunday not listed
    assert not check_time_range(w, day(7, 1, 30))      # Saturday 01:30 belongs to Friday's window
    assert not check_time_range(w, day(7, 12, 0))      # outside the window


def test_no_range_always_and_bad_range_never():
    assert check_time_range(None, day(1))
    assert not check_time_range(tr("25:00", "02:00"), day(1, 1))
    assert not check_time_range(tr("10:00", "11:00", "8"), day(1, 10, 30))


def test_naive_datetimes_are_taken_as_utc():
    assert check_time_range(tr("10:00", "11:00", "1"), _dt.datetime(2024, 6, 2, 10, 30))


# ---- operators ---------------------------------------------------------------------------------------

def cond(path, op, value="", in_values=None, device_id=""):
    c = Condition()
    c.type, c.operator, c.value, c.in_values = "DEVICE_DATA", op, value, in_values or []
    c.device_info = DeviceInfo()
    c.device_info.path, c.device_info.device_id = path, device_id
    return c


PROPS = [ServiceProperty("sensor", {"temp": 25, "mode": "eco", "nested": {"level": 3}, "text": "12.5"})]


@pytest.mark.parametrize("op,value,expected", [
    (">", "24", True), (">", "25", False), (">=", "25", True), (">=", "25.1", False),
    ("<", "26", True), ("<", "25", False), ("<=", "25", True), ("<=", "24.9", False),
    ("=", "25", True), ("=", "25.0", True), ("=", "24", False),
    ("between", "20,25", True), ("between", "25,30", True), ("between", "26,30", False), ("between", "30,20", True),
])
def test_numeric_operators(op, value, expected):
    assert ConditionExecute("me").is_condition_satisfied(cond("sensor/temp", op, value), PROPS) is expected


def test_in_and_string_equality():
    ex = ConditionExecute("me")
    assert ex.is_condition_satisfied(cond("sensor/temp", "in", in_values=["1", "25"]), PROPS)
    assert not ex.is_condition_satisfied(cond("sensor/temp", "in", in_values=["1", "2"]), PROPS)
    assert ex.is_condition_satisfied(cond("sensor/mode", "in", in_values=["eco", "max"]), PROPS)
    assert ex.is_condition_satisfied(cond("sensor/mode", "=", "eco"), PROPS)
    assert not ex.is_condition_satisfied(cond("sensor/mode", "=", "max"), PROPS)
    assert ex.is_condition_satisfied(cond("sensor/text", ">", "12"), PROPS)  # numeric string


def test_missing_or_uncomparable_values_never_satisfy():
    ex = ConditionExecute("me")
    assert not ex.is_condition_satisfied(cond("sensor/absent", ">", "1"), PROPS)
    assert not ex.is_condition_satisfied(cond("other/temp", ">", "1"), PROPS)
    assert not ex.is_condition_satisfied(cond("sensor/mode", ">", "1"), PROPS)
    assert not ex.is_condition_satisfied(cond("sensor/temp", "between", "x,y"), PROPS)
    assert not ex.is_condition_satisfied(cond("sensor/temp", "~", "1"), PROPS)


def test_device_id_of_condition_is_honoured_and_nested_paths_work():
    ex = ConditionExecute("me")
    assert ex.is_condition_satisfied(cond("sensor/temp", ">", "1", device_id="me"), PROPS)
    assert not ex.is_condition_satisfied(cond("sensor/temp", ">", "1", device_id="someone_else"), PROPS)
    assert ex.is_condition_satisfied(cond("sensor/nested/level", "=", "3"), PROPS)


# ---- parsing -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("mutate,reason", [
    (lambda r: r.pop("ruleId"), "ruleId"),
    (lambda r: r.update(logic="xor"), "logic"),
    (lambda r: r.update(conditions=[]), "conditions"),
    (lambda r: r.update(conditions=[data_cond("temp", ">", "1")]), "path"),
    (lambda r: r.update(conditions=[data_cond("s/p", "~", "1")]), "operator"),
    (lambda r: r.update(conditions=[data_cond("s/p", ">", "abc")]), "number"),
    (lambda r: r.update(conditions=[data_cond("s/p", "between", "1")]), "between"),
    (lambda r: r.update(conditions=[data_cond("s/p", "in", in_values=[])]), "inValues"),
    (lambda r: r.update(conditions=[daily_cond("24:00")]), "range"),
    (lambda r: r.update(conditions=[daily_cond("10:00", "0,8")]), "daysOfWeek"),
    (lambda r: r.update(conditions=[simple_cond("tomorrow")]), "startTime"),
    (lambda r: r.update(conditions=[simple_cond("2024-01-01 00:00:00", 0, 3)]), "repeatInterval"),
    (lambda r: r.update(conditions=[daily_cond("10:00"), data_cond("s/p", ">", "1")]), "timer"),
    (lambda r: r.update(timeRange={"startTime": "10", "endTime": "11:00"}), "timeRange"),
    (lambda r: r.update(actions=[]), "actions"),
    (lambda r: r.update(actions=[{"type": "DEVICE_CMD", "command": "ring"}]), "command"),
    (lambda r: r.update(ruleVersionInShadow="v2"), "ruleVersionInShadow"),
    (lambda r: r.update(status="paused"), "status"),
])
def test_bad_rules_are_rejected_with_a_reason(mutate, reason):
    r = rule("r1", [data_cond("s/p", ">", "1")])
    mutate(r)
    with pytest.raises(RuleParseError, match=reason):
        parse_rule(r)


def test_good_rule_parses_every_field():
    r = rule("r9", [data_cond("s/p", "in", in_values=[1, "2"], device_id="me")],
             [cmd_action("ring", "alarm", {"level": 2}, device_id="me")], logic="OR",
             time_range={"startTime": "22:00", "endTime": "06:00", "daysOfWeek": "1,7"}, version="4")
    info = parse_rule(r)
    assert (info.rule_id, info.logic, info.rule_version_in_shadow, info.status) == ("r9", "or", 4, "active")
    assert info.conditions[0].in_values == ["1", "2"] and info.conditions[0].device_info.device_id == "me"
    assert info.time_range.days_of_week == "1,7"
    cmd = info.actions[0].command
    assert (cmd.service_id, cmd.command_name, cmd.paras) == ("alarm", "ring", {"level": 2})


# ---- the service state machine with a controllable clock --------------------------------------------------

class RecordingClient:
    """Stands in for DeviceClient: records what the rule service asks of it."""

    def __init__(self, enabled=True):
        self.enabled = enabled
        self.events = []
        self.fired = []

    def enable_rule_manage(self):
        return self.enabled

    def report_event(self, event, listener=None):
        self.events.append(event)

    def on_rule_action_handler(self, actions):
        self.fired.append([a.command.command_name if a.command else None for a in actions])


@pytest.fixture
def svc():
    client = RecordingClient()
    service = RuleManageService(client)
    clock = FakeClock(day(6, 9, 0))  # a Friday
    service.set_clock(clock)
    service.test_clock = clock
    service.test_client = client
    yield service
    service.close()


def install(service, *rules_):
    service.on_write({r["ruleId"]: {"version": int(r.get("ruleVersionInShadow") or 1)}
                      for r in rules_ if isinstance(r, dict)})
    ev = DeviceEvent()
    ev.service_id, ev.event_type = "$device_rule", "device_rule_config_response"
    ev.paras = {"rulesInfos": list(rules_)}
    service.on_event(ev)


def report(service, **props):
    service.handle_rule([ServiceProperty("sensor", props)])


def test_property_set_requests_rules_and_deletes(svc):
    svc.on_write({"a": {"version": 1}, "b": {"version": 2}})
    ev = svc.test_client.events[-1]
    assert (ev.service_id, ev.event_type) == ("$device_rule", "device_rule_config_request")
    assert sorted(ev.paras["ruleIds"]) == ["a", "b"] and ev.paras["delIds"] == []
    svc.on_write({"a": {"version": -1}, "junk": "x"})
    assert svc.test_client.events[-1].paras == {"ruleIds": ["b"], "delIds": ["a"]}


def test_data_rule_logic_and_or(svc):
    install(svc, rule("and", [data_cond("sensor/t", ">", "30"), data_cond("sensor/h", "<", "20")],
                      [cmd_action("both")], logic="and"),
            rule("or", [data_cond("sensor/t", ">", "30"), data_cond("sensor/h", "<", "20")],
                 [cmd_action("either")], logic="or"))
    report(svc, t=31, h=50)
    assert svc.test_client.fired == [["either"]]
    report(svc, t=31, h=10)
    assert sorted(svc.test_client.fired[1:]) == [["both"], ["either"]]
    report(svc, t=1, h=50)
    assert len(svc.test_client.fired) == 3


def test_data_rule_time_range_across_midnight(svc):
    install(svc, rule("night", [data_cond("sensor/t", ">", "0")],
                      time_range={"startTime": "22:00", "endTime": "02:00", "daysOfWeek": "7"}))
    clock = svc.test_clock
    for moment, expect in [(day(7, 21, 59), 0), (day(7, 22, 0), 1), (day(8, 1, 59), 2), (day(8, 2, 1), 2),
                           (day(8, 22, 30), 2)]:
        clock.set(moment)
        report(svc, t=5)
        assert len(svc.test_client.fired) == expect, moment


def test_out_of_window_rule_does_not_disable_later_rules(svc):
    install(svc, rule("closed", [data_cond("sensor/t", ">", "0")], [cmd_action("closed")],
                      time_range={"startTime": "00:00", "endTime": "00:01"}),
            rule("open", [data_cond("sensor/t", ">", "0")], [cmd_action("open")]))
    report(svc, t=1)
    assert svc.test_client.fired == [["open"]]


def test_daily_timer_fires_exactly_at_its_minute_on_saturday(svc):
    clock = svc.test_clock  # Friday 09:00
    install(svc, rule("sat", [daily_cond("10:00", "7")], [cmd_action("sat")]))
    assert svc.next_timer_fire_time() == day(7, 10, 0)
    clock.set(day(7, 9, 59, 59))
    assert svc.run_due_timers() == 0 and svc.test_client.fired == []
    clock.set(day(7, 10, 0))
    assert svc.run_due_timers() == 1 and svc.test_client.fired == [["sat"]]
    clock.set(day(14, 9, 0))  # next Saturday morning: nothing more during the week
    assert svc.run_due_timers() == 0
    clock.set(day(14, 10, 0))
    assert svc.run_due_timers() == 1 and len(svc.test_client.fired) == 2


@pytest.mark.parametrize("platform_day", range(1, 8))
def test_daily_timer_each_weekday(svc, platform_day):
    svc.test_clock.set(day(1, 0, 0) - _dt.timedelta(minutes=1))  # Saturday 23:59 before the week
    install(svc, rule("d", [daily_cond("06:15", str(platform_day))]))
    assert svc.next_timer_fire_time() == day(platform_day, 6, 15)


def test_simple_timer_repeats_count_times(svc):
    clock = svc.test_clock
    start = day(6, 9, 0, 10)
    install(svc, rule("s", [simple_cond(start.strftime("%Y-%m-%d %H:%M:%S"), 5, 3)], [cmd_action("tick")]))
    clock.set(start - _dt.timedelta(seconds=1))
    assert svc.run_due_timers() == 0
    clock.set(start + _dt.timedelta(seconds=7))
    assert svc.run_due_timers() == 2           # at +0 and +5
    clock.set(start + _dt.timedelta(hours=1))
    assert svc.run_due_timers() == 1           # +10 is the third and last
    assert svc.test_client.fired == [["tick"]] * 3


def test_timer_respects_time_range(svc):
    clock = svc.test_clock
    install(svc, rule("r", [daily_cond("23:30")], logic="or",
                      time_range={"startTime": "23:00", "endTime": "01:00", "daysOfWeek": "6"}))  # Friday nights
    clock.set(day(7, 0, 0))
    assert svc.run_due_timers() == 1 and len(svc.test_client.fired) == 1  # Friday 23:30 fired
    clock.set(day(8, 0, 0))
    assert svc.run_due_timers() == 1 and len(svc.test_client.fired) == 1  # Saturday 23:30 outside


def test_deleted_and_inactive_rules_stop(svc):
    clock = svc.test_clock
    install(svc, rule("del", [daily_cond("10:00")], [cmd_action("del")]),
            rule("off", [daily_cond("10:00")], [cmd_action("off")]),
            rule("data", [data_cond("sensor/t", ">", "0")], [cmd_action("data")]))
    svc.on_write({"del": {"version": -1}})
    inactive = rule("off", [daily_cond("10:00")], status="inactive", version=2)
    install(svc, inactive)
    install(svc, rule("data", [data_cond("sensor/t", ">", "0")], status="inactive", version=2))
    assert svc._timer_rule_dict == {} and svc.get_rules() == {}
    clock.set(day(9, 0, 0))
    assert svc.run_due_timers() == 0
    report(svc, t=5)
    assert svc.test_client.fired == []


def test_bad_rule_rejected_once_others_keep_running(svc, caplog):
    caplog.set_level(logging.WARNING, logger="iot_device_sdk_python.rule")
    bad = rule("bad", [data_cond("sensor/t", "~", "0")])
    install(svc, bad, rule("good", [data_cond("sensor/t", ">", "0")], [cmd_action("good")]), "not a rule")
    rejected = [r for r in caplog.records if "rejected" in r.getMessage()]
    assert len(rejected) == 2 and "'bad'" in rejected[0].getMessage()
    report(svc, t=1)
    assert svc.test_client.fired == [["good"]]


def test_versions_compared_safely(svc):
    install(svc, rule("v", [data_cond("sensor/t", ">", "0")], [cmd_action("v3")], version=3))
    install(svc, rule("v", [data_cond("sensor/t", ">", "0")], [cmd_action("v2")], version=2))  # older: ignored
    install(svc, rule("v", [data_cond("sensor/t", ">", "0")], [cmd_action("v3b")], version="3"))  # same: ignored
    report(svc, t=1)
    assert svc.test_client.fired == [["v3"]]
    install(svc, rule("v", [data_cond("sensor/t", ">", "0")], [cmd_action("v4")], version=4))
    install(svc, rule("w", [data_cond("sensor/t", ">", "0")], [cmd_action("noversion")], version=None))
    report(svc, t=1)
    assert sorted(svc.test_client.fired[1:][0] + svc.test_client.fired[1:][1]) == ["noversion", "v4"]


def test_unannounced_rule_ignored_and_disabled_engine_does_nothing():
    client = RecordingClient(enabled=False)
    service = RuleManageService(client)
    try:
        assert service.on_write({"a": {"version": 1}}).result_code == 0
        assert client.events == []
        client.enabled = True
        ev = DeviceEvent()
        ev.service_id, ev.event_type = "$device_rule", "device_rule_config_response"
        ev.paras = {"rulesInfos": [rule("a", [data_cond("sensor/t", ">", "0")])]}
        service.on_event(ev)  # "a" was never announced while enabled
        assert service.get_rules() == {}
    finally:
        service.close()
