"""Platform -> device requests, messages, events and trace, answered by raw paho devices."""
from __future__ import annotations

import json
import threading

import pytest

from iot_device_sdk_python.protocol import topics
from iotda_emulator import CommandTimeout, DeviceNotFound, DeviceOffline
from iotda_emulator.services.base import PlatformService
from tests.emulator.helpers import Responder, online_device


@pytest.fixture
def device(emulator):
    dev = online_device(emulator)
    yield dev
    dev.close()
    emulator.delete_device(dev.device_id)


def test_command_round_trip(emulator, device):
    r = Responder(device)
    try:
        resp = emulator.send_command(device.device_id, "smoke", "alarm", {"level": 3})
        assert resp == {"result_code": 0, "response_name": "ok", "paras": {"echo": {"level": 3}}}
        cmd = [m for m in r.received if topics.classify(m.topic).kind == topics.COMMAND][0]
        assert json.loads(cmd.payload) == {"service_id": "smoke", "command_name": "alarm", "paras": {"level": 3}}
    finally:
        r.stop()
    kinds = [e.kind for e in emulator.trace(device.device_id)]
    assert topics.COMMAND in kinds and topics.COMMAND_RESPONSE in kinds
    # the device never gets its own response back through its commands/# subscription
    assert not [m for m in r.received if topics.classify(m.topic).kind == topics.COMMAND_RESPONSE]


def test_command_timeout_and_late_response_ignored(emulator, device):
    with pytest.raises(CommandTimeout) as info:
        emulator.send_command(device.device_id, "s", "c", {}, timeout=0.5)
    assert isinstance(info.value, TimeoutError)
    cmd = device.next_message(5)
    rid = topics.classify(cmd.topic).request_id
    device.publish(topics.command_response(device.device_id, rid), {"result_code": 0})
    emulator.wait_for_trace(lambda e: e.kind == topics.COMMAND_RESPONSE and rid in e.topic)
    r = Responder(device)   # the core still answers afterwards
    try:
        assert emulator.send_command(device.device_id, "s", "c", {})["result_code"] == 0
    finally:
        r.stop()


def test_offline_and_unknown_devices(emulator):
    rec = emulator.create_device()
    with pytest.raises(DeviceOffline):
        emulator.send_command(rec["device_id"], "s", "c", {})
    with pytest.raises(DeviceNotFound):
        emulator.set_properties("nobody_here", [])


def test_property_set_and_get(emulator, device):
    r = Responder(device)
    try:
        assert emulator.set_properties(device.device_id, [{"service_id": "s", "properties": {"a": 1}}]) == \
            {"result_code": 0, "result_desc": "done"}
        assert emulator.get_properties(device.device_id, "s") == \
            {"services": [{"service_id": "s", "properties": {"temp": 21}}]}
        sets = [json.loads(m.payload) for m in r.received if topics.classify(m.topic).kind == topics.PROPERTIES_SET]
        assert sets == [{"services": [{"service_id": "s", "properties": {"a": 1}}]}]
    finally:
        r.stop()


def test_messages_down_raw_standard_and_user_topic(emulator, device):
    emulator.send_message(device.device_id, b"\x00\x01raw")
    m = device.next_message()
    assert m.topic == topics.messages_down(device.device_id) and m.payload == b"\x00\x01raw"
    mid = emulator.send_message(device.device_id, {"k": "v"}, standard=True, name="n")
    m = device.next_message()
    assert json.loads(m.payload) == {"name": "n", "id": mid, "content": {"k": "v"}}
    device.subscribe([topics.user_topic(device.device_id, "custom/#")])
    emulator.send_message(device.device_id, "hi", topic="custom/x", qos=0)
    m = device.next_message()
    assert m.topic == topics.user_topic(device.device_id, "custom/x") and m.payload == b"hi"


def test_messages_cached_while_offline(emulator):
    rec = emulator.create_device()
    emulator.send_message(rec["device_id"], "while you were away")
    dev = online_device(emulator, rec)
    try:
        m = dev.next_message()
        assert m.payload == b"while you were away"
    finally:
        dev.close()


class _Recorder(PlatformService):
    service_ids = ("$emu_test",)

    def __init__(self, core):
        super().__init__(core)
        self.events = []
        self.got = threading.Event()

    def on_event(self, device_id, object_device_id, event):
        self.events.append((device_id, object_device_id, event))
        # answer through the core, from the dispatcher thread
        self.core.send_event(device_id, "$emu_test", "pong", {"n": event["paras"]["n"]})
        self.got.set()


def test_events_dispatch_to_service_and_events_down(emulator, device):
    svc = _Recorder(emulator.core)
    emulator.core.services["$emu_test"] = svc
    try:
        device.publish(topics.events_up(device.device_id),
                       {"services": [{"service_id": "$emu_test", "event_type": "ping", "paras": {"n": 7}},
                                     {"service_id": "$nobody", "event_type": "x", "paras": {}}]})
        assert svc.got.wait(5)
        assert svc.events[0][0] == device.device_id and svc.events[0][2]["paras"] == {"n": 7}
        m = device.next_message()
        body = json.loads(m.payload)
        assert m.topic == topics.events_down(device.device_id)
        assert body["services"][0]["event_type"] == "pong" and body["services"][0]["paras"] == {"n": 7}
        assert body["services"][0]["event_id"]
    finally:
        del emulator.core.services["$emu_test"]


def test_blocking_call_from_worker_pool(emulator, device):
    r = Responder(device)
    try:
        fut = emulator.core.submit(emulator.core.send_command, device.device_id, "s", "c", {"w": 1})
        assert fut.result(10)["paras"] == {"echo": {"w": 1}}
    finally:
        r.stop()


def test_wait_for_trace_past_and_timeout(emulator, device):
    device.publish(topics.messages_up(device.device_id), b"trace me")
    e = emulator.wait_for_trace(lambda e: e.device_id == device.device_id and e.payload == b"trace me")
    assert e.direction == "up" and e.kind == topics.MESSAGES_UP
    assert emulator.trace(device.device_id, direction="up", kind=topics.MESSAGES_UP)[-1].payload == b"trace me"
    with pytest.raises(TimeoutError):
        emulator.wait_for_trace(lambda e: False, timeout=0.2)
