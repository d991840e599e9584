"""The rule engine end to end: rules created on the emulator reach a real device through the
``$device_rule`` property set and the config request/response events, then fire on reported data,
on timers (a controllable clock, and one real-time SIMPLE_TIMER), and run their actions through an
ActionHandler, a CommandListener or a profile service's command method."""
from __future__ import annotations

import datetime as _dt
import threading

import pytest

from iot_device_sdk_python.client.listener.command_listener import CommandListener
from iot_device_sdk_python.client.request.command_response import CommandRsp
from iot_device_sdk_python.client.request.service_property import ServiceProperty
from iot_device_sdk_python.rule.model.action_handler import ActionHandler
from iot_device_sdk_python.service.abstract_service import AbstractService, command
from tests.rule._helpers import FakeClock, at, cmd_action, daily_cond, data_cond, rule, simple_cond
from tests.waiting import wait_until  # noqa: F401 (re-exported to the tests of this folder)


class Recorder(ActionHandler):
    """ActionHandler that records (command_name, paras) of every fired action."""

    def __init__(self):
        self.calls = []
        self.cond = threading.Condition()

    def handle_rule_action(self, action):
        with self.cond:
            self.calls.extend((a.command.command_name, a.command.paras) for a in action)
            self.cond.notify_all()

    def names(self):
        with self.cond:
            return [c[0] for c in self.calls]

    def wait_for(self, name, timeout=10.0):
        with self.cond:
            if not self.cond.wait_for(lambda: any(c[0] == name for c in self.calls), timeout):
                raise AssertionError(f"action {name} not fired; got {self.calls}")


def flush(device):
    """Wait until the device's dispatcher ran everything queued so far (actions are dispatched there)."""
    done = threading.Event()
    device.get_client().get_dispatcher().submit(done.set)
    assert done.wait(10)


@pytest.fixture
def rules(emulator):
    return emulator.service("$device_rule")


@pytest.fixture
def rule_device(make_device, rules):
    device = make_device(enable_rule_manage=True)
    yield device


def install(device, rules, *rule_dicts):
    """Create the rules on the emulator and wait until the device runs them."""
    device_id = device.get_device_id()
    svc = device.get_rule_manage_service()
    ids = [rules.create_rule(device_id, r) for r in rule_dicts]
    wait_until(lambda: all(svc.get_rule(i) is not None for i in ids))
    return ids


def report(device, **props):
    device.get_client().report_properties([ServiceProperty("sensor", props)])


def test_rules_reach_the_device_and_data_rules_fire(rule_device, rules):
    handler = Recorder()
    rule_device.get_client().set_rule_action_handler(handler)
    install(rule_device, rules,
            rule("hot", [data_cond("sensor/t", ">", "30")], [cmd_action("cool", body={"to": 20})]),
            rule("both", [data_cond("sensor/t", ">=", "30"), data_cond("sensor/h", "between", "40,60")],
                 [cmd_action("both")], logic="and"),
            rule("either", [data_cond("sensor/t", "<", "0"), data_cond("sensor/mode", "in", in_values=["eco"])],
                 [cmd_action("either")], logic="or"))
    req = rules.wait_for_request(lambda r: r["device_id"] == rule_device.get_device_id())
    assert set(req["ruleIds"]) <= {r["ruleId"] for r in rules.list_rules(rule_device.get_device_id())}
    report(rule_device, t=31, h=10, mode="max")
    handler.wait_for("cool")
    report(rule_device, t=30, h=50, mode="eco")
    handler.wait_for("both")
    handler.wait_for("either")
    flush(rule_device)
    assert sorted(handler.names()) == ["both", "cool", "either"]
    assert ("cool", {"to": 20}) in handler.calls


def test_deleted_inactive_and_bad_rules(rule_device, rules):
    handler = Recorder()
    rule_device.get_client().set_rule_action_handler(handler)
    device_id = rule_device.get_device_id()
    svc = rule_device.get_rule_manage_service()
    gone, off, sentinel = install(rule_device, rules,
                                  rule("gone", [data_cond("sensor/t", ">", "0")], [cmd_action("gone")]),
                                  rule("off", [data_cond("sensor/t", ">", "0")], [cmd_action("off")]),
                                  rule("sentinel", [data_cond("sensor/t", ">", "0")], [cmd_action("sentinel")]))
    bad = rules.create_rule(device_id, rule("bad", [data_cond("sensor/t", "~", "0")], [cmd_action("bad")]))
    rules.delete_rule(device_id, gone)
    rules.deactivate_rule(device_id, off)
    wait_until(lambda: svc.get_rule(gone) is None and svc.get_rule(off) is None)
    rules.wait_for_request(lambda r: r["device_id"] == device_id and bad in r["ruleIds"])
    rules.wait_for_request(lambda r: r["device_id"] == device_id and gone in r["delIds"])
    report(rule_device, t=5)
    handler.wait_for("sentinel")
    flush(rule_device)
    assert handler.names() == ["sentinel"]
    assert svc.get_rule(bad) is None
    rules.activate_rule(device_id, off)  # reactivated with a newer version: runs again
    wait_until(lambda: svc.get_rule(off) is not None)
    report(rule_device, t=5)
    handler.wait_for("off")


def test_rule_command_reaches_command_listener(rule_device, rules):
    got = []
    done = threading.Event()

    class Listener(CommandListener):
        def on_command(self, request_id, service_id, command_name, paras):
            got.append((service_id, command_name, paras))
            done.set()

    rule_device.get_client().set_command_listener(Listener())
    install(rule_device, rules, rule("c", [data_cond("sensor/t", "=", "7")],
                                     [cmd_action("ring", "alarm", {"level": 3})]))
    report(rule_device, t=7)
    assert done.wait(10)
    assert got == [("alarm", "ring", {"level": 3})]


class AlarmService(AbstractService):
    def __init__(self):
        super().__init__()
        self.rung = []
        self.event = threading.Event()

    @command("ring")
    def ring(self, paras):
        self.rung.append(paras)
        self.event.set()
        return CommandRsp(0, "ring", {"ok": True})


def test_rule_command_reaches_profile_service(rule_device, rules):
    alarm = AlarmService()
    rule_device.add_service("alarm", alarm)
    install(rule_device, rules, rule("p", [data_cond("sensor/t", "<=", "-5")],
                                     [cmd_action("ring", "alarm", {"level": 1}),
                                      cmd_action("ring", "alarm", {"level": 9}, device_id="another_device")]))
    report(rule_device, t=-10)
    assert alarm.event.wait(10)
    flush(rule_device)
    assert alarm.rung == [{"level": 1}]  # the action for another device is not run here


def test_timer_rules_with_controllable_clock(rule_device, rules):
    handler = Recorder()
    rule_device.get_client().set_rule_action_handler(handler)
    svc = rule_device.get_rule_manage_service()
    clock = FakeClock(at(2024, 6, 7, 9, 0))  # Friday
    svc.set_clock(clock)
    install(rule_device, rules,
            rule("sat", [daily_cond("10:00", "7")], [cmd_action("sat")]),
            rule("burst", [simple_cond("2024-06-07 09:30:00", 60, 2)], [cmd_action("burst")]))
    clock.set(at(2024, 6, 7, 9, 30))
    assert svc.run_due_timers() == 1
    handler.wait_for("burst")
    clock.set(at(2024, 6, 8, 9, 59))
    assert svc.run_due_timers() == 1  # the second burst at 09:31 only
    clock.set(at(2024, 6, 8, 10, 0))
    assert svc.run_due_timers() == 1
    handler.wait_for("sat")
    flush(rule_device)
    assert sorted(handler.names()) == ["burst", "burst", "sat"]
    rules.delete_rule(rule_device.get_device_id(), "sat")
    wait_until(lambda: svc.get_rule("sat") is None)
    clock.set(at(2024, 6, 15, 10, 0))
    assert svc.run_due_timers() == 0


def test_simple_timer_fires_in_real_time(rule_device, rules):
    handler = Recorder()
    rule_device.get_client().set_rule_action_handler(handler)
    start = (_dt.datetime.now(_dt.timezone.utc) + _dt.timedelta(seconds=2)).strftime("%Y-%m-%d %H:%M:%S")
    install(rule_device, rules, rule("rt", [simple_cond(start)], [cmd_action("now")]))
    handler.wait_for("now", timeout=15)
    assert handler.names() == ["now"]


def test_rules_arrive_when_the_device_connects(make_device, emulator, rules):
    record = emulator.create_device()
    rid = rules.create_rule(record["device_id"], rule("early", [data_cond("sensor/t", ">", "0")]))
    device = make_device(emulator, record, enable_rule_manage=True)
    wait_until(lambda: device.get_rule_manage_service().get_rule(rid) is not None)


def test_disabled_engine_ignores_rules(make_device, emulator, rules):
    device = make_device()
    rid = rules.create_rule(device.get_device_id(), rule("x", [data_cond("sensor/t", ">", "0")]))
    # the property set is still answered (SUCCESS) but no rule is requested
    emulator.wait_for_trace(lambda e: e.device_id == device.get_device_id() and e.kind == "properties_set_response")
    flush(device)
    assert device.get_rule_manage_service().get_rule(rid) is None
    assert all(r["device_id"] != device.get_device_id() for r in rules.requests)
