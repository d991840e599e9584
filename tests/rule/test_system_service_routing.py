"""Property sets and gets for system services (``$device_rule`` and any other ``$`` service) reach their
service whatever PropertyListener the application sets; the application's listener sees only its own
services. Upstream handed everything to the listener, so platform rules never reached the rule engine."""
from __future__ import annotations

import threading

from iot_device_sdk_python.client.iot_result import IotResult
from iot_device_sdk_python.client.listener.property_listener import PropertyListener
from iot_device_sdk_python.client.request.service_property import ServiceProperty
from tests.rule._helpers import cmd_action, data_cond, rule
from tests.waiting import wait_until


class AppListener(PropertyListener):
    """Answers its own services and records every service id it was shown."""

    def __init__(self, device):
        self.device = device
        self.seen_sets = []
        self.seen_gets = []
        self.lock = threading.Lock()

    def on_property_set(self, request_id, services):
        with self.lock:
            self.seen_sets.append([sp.service_id for sp in services])
        self.device.get_client().respond_properties_set(request_id, IotResult(0, "app ok"))

    def on_property_get(self, request_id, service_id):
        with self.lock:
            self.seen_gets.append(service_id)
        self.device.get_client().respond_properties_get(request_id, [ServiceProperty("app", {"v": 1})])


def _rule_device(make_device):
    device = make_device(enable_rule_manage=True, connect=False)
    listener = AppListener(device)
    device.get_client().set_properties_listener(listener)
    assert device.connect() == 0
    return device, listener


def test_platform_rules_reach_the_rule_engine_with_a_property_listener_set(emulator, make_device):
    device, listener = _rule_device(make_device)
    svc = device.get_rule_manage_service()
    rule_id = emulator.service("$device_rule").create_rule(
        device.get_device_id(), rule("hot", [data_cond("sensor/t", ">", "30")], [cmd_action("cool")]))
    wait_until(lambda: svc.get_rule(rule_id) is not None)
    with listener.lock:
        assert all("$device_rule" not in ids for ids in listener.seen_sets)


def test_a_mixed_property_set_splits_system_and_application_services(emulator, make_device):
    device, listener = _rule_device(make_device)
    svc = device.get_rule_manage_service()
    answer = emulator.set_properties(device.get_device_id(), [
        {"service_id": "$device_rule", "properties": {"r-mixed": {"version": 1}}},
        {"service_id": "app", "properties": {"v": 2}},
    ], timeout=10)
    assert answer.get("result_code") == 0, answer
    with listener.lock:
        assert listener.seen_sets == [["app"]]
    # the system part reached the rule engine: it asks the platform for rule r-mixed
    emulator.wait_for_trace(lambda e: e.direction == "up" and e.device_id == device.get_device_id()
                            and b"device_rule_config_request" in e.payload and b"r-mixed" in e.payload)
    assert svc.is_enabled()


def test_an_application_only_set_and_get_still_go_to_the_listener(emulator, make_device):
    device, listener = _rule_device(make_device)
    answer = emulator.set_properties(device.get_device_id(), [{"service_id": "app", "properties": {"v": 3}}],
                                     timeout=10)
    assert answer.get("result_code") == 0, answer
    got = emulator.get_properties(device.get_device_id(), "app", timeout=10)
    assert "app" in str(got), got
    with listener.lock:
        assert listener.seen_sets == [["app"]] and listener.seen_gets == ["app"]


def test_a_get_for_a_system_service_bypasses_the_listener(emulator, make_device):
    device, listener = _rule_device(make_device)
    emulator.get_properties(device.get_device_id(), "$device_rule", timeout=10)
    with listener.lock:
        assert listener.seen_gets == []
