"""An action's ``status`` is ``enable``/``disable`` (doc/protocol.md §3.8), distinct from the rule's own
``active``/``inactive``: only enabled actions run, and an action without a status counts as enabled."""
from __future__ import annotations

import datetime as _dt

import pytest

from iot_device_sdk_python.client.request.device_event import DeviceEvent
from iot_device_sdk_python.client.request.service_property import ServiceProperty
from iot_device_sdk_python.rule.model.actions import Action
from iot_device_sdk_python.rule.rule_manage_service import RuleManageService
from iot_device_sdk_python.rule.rule_parser import parse_rule
from tests.rule._helpers import FakeClock, cmd_action, data_cond, rule


class _Client:
    """Records the actions the rule service hands to the device client (no network)."""

    def __init__(self) -> None:
        self.fired = []

    def enable_rule_manage(self) -> bool:
        return True

    def report_event(self, event, listener=None) -> None:
        pass

    def on_rule_action_handler(self, actions) -> None:
        self.fired.append([a.command.command_name for a in actions])


@pytest.fixture
def svc():
    client = _Client()
    service = RuleManageService(client)
    service.set_clock(FakeClock(_dt.datetime(2024, 6, 7, 9, 0, tzinfo=_dt.timezone.utc)))
    service.client = client
    yield service
    service.close()


def _install(service, *rules) -> None:
    service.on_write({r["ruleId"]: {"version": 1} for r in rules})
    event = DeviceEvent()
    event.service_id, event.event_type = "$device_rule", "device_rule_config_response"
    event.paras = {"rulesInfos": list(rules)}
    service.on_event(event)


def _action(name: str, status):
    action = cmd_action(name)
    if status is None:
        del action["status"]
    else:
        action["status"] = status
    return action


@pytest.mark.parametrize("status,runs", [("enable", True), (None, True), ("", True), ("disable", False),
                                         ("active", False), ("ENABLE", False)])
def test_action_is_enabled(status, runs):
    action = Action()
    action.status = status
    assert action.is_enabled() is runs


def test_only_enabled_actions_run(svc):
    _install(svc, rule("r1", [data_cond("sensor/t", ">", "30")],
                       [_action("on", "enable"), _action("off", "disable"), _action("plain", None)]))
    svc.handle_rule([ServiceProperty("sensor", {"t": 31})])
    assert svc.client.fired == [["on", "plain"]]


def test_rule_with_only_disabled_actions_runs_nothing(svc):
    _install(svc, rule("r2", [data_cond("sensor/t", ">", "30")], [_action("off", "disable")]))
    svc.handle_rule([ServiceProperty("sensor", {"t": 31})])
    assert svc.client.fired == []


def test_inactive_rule_with_enabled_action_does_not_run(svc):
    _install(svc, rule("r3", [data_cond("sensor/t", ">", "30")], [_action("on", "enable")], status="inactive"))
    svc.handle_rule([ServiceProperty("sensor", {"t": 31})])
    assert svc.client.fired == []


def test_parser_keeps_the_action_status():
    info = parse_rule(rule("r4", [data_cond("sensor/t", ">", "1")], [_action("a", "disable"), _action("b", None)]))
    assert [a.status for a in info.actions] == ["disable", ""]
    assert [a.is_enabled() for a in info.actions] == [False, True]
