"""End-to-end flows of IotDevice/DeviceClient against the emulator (real Mosquitto, real sockets)."""
from __future__ import annotations

import json
import threading


from iot_device_sdk_python import (AbstractService, CommandListener, CommandRsp, DeviceEvent, DeviceMessage,
                                   DeviceMessageListener, DeviceShadowListener, IotResult, Property,
                                   PropertyListener, RawDeviceMessageListener, RawMessage, ServiceProperty,
                                   command)
from iot_device_sdk_python.client.request.device_base_info import DeviceBaseInfo
from iot_device_sdk_python.protocol import codec, topics
from tests.sdk.helpers import Recorder, wait_until


class Smoke(AbstractService):
    alarm = Property(1, prop_name="alarm")
    concentration = Property(12.5, prop_name="smokeConcentration", writeable=False)

    def __init__(self):
        super().__init__()
        self.rings = []
        self.event_threads = []
        self.events = []

    @command("ringAlarm")
    def ring(self, paras):
        self.rings.append(paras)
        return CommandRsp(0, "ring", {"result": "rang", "duration": paras.get("duration")})

    @command("broken")
    def broken(self, paras):
        return None

    @command("explode")
    def explode(self, paras):
        raise RuntimeError("boom")

    def on_event(self, device_event):
        self.events.append(device_event)
        self.event_threads.append(threading.current_thread().name)


class UpstreamStyle(AbstractService):
    """Maps filled by hand, getters/setters by naming convention (upstream demo style)."""

    def __init__(self):
        super().__init__()
        self.temperature = Property(val=20, field_name="temperature", prop_name="temp", writeable=True)
        self.humidity = Property(val=40, field_name="humidity", prop_name="humidity", writeable=False)
        for p in (self.temperature, self.humidity):
            self._readable_prop2field[p.prop_name] = p.field_name
            if p.writeable:
                self._writeable_prop2field[p.prop_name] = p.field_name
        self._command2method = {"reset": "do_reset"}

    def get_temperature(self):
        return self.temperature.val

    def set_temperature(self, value):
        if not isinstance(value, (int, float)):
            raise ValueError("temperature must be a number")
        self.temperature.val = value

    def get_humidity(self):
        return self.humidity.val

    def do_reset(self, paras):
        self.temperature.val = 0
        return CommandRsp(0, "reset", {})


def _up(emulator, device_id, kind):
    return [e for e in emulator.trace(device_id, "up", kind)]


def test_connect_report_properties_updates_shadow(emulator, make_device):
    device = make_device()
    did = device.get_device_id()
    assert emulator.is_online(did)
    handle = device.get_client().report_properties([ServiceProperty("smoke", {"alarm": 1, "smokeConcentration": 3})])
    assert isinstance(handle.result(5), int)
    shadow = wait_until(lambda: [s for s in emulator.shadow(did) if s["service_id"] == "smoke"
                                 and s["reported"]["properties"].get("alarm") == 1])
    assert shadow[0]["reported"]["properties"]["smokeConcentration"] == 3


def test_service_commands_and_properties(emulator, make_device):
    device = make_device()
    did = device.get_device_id()
    smoke = Smoke()
    device.add_service("smoke", smoke)
    device.add_service("legacy", UpstreamStyle())

    rsp = emulator.send_command(did, "smoke", "ringAlarm", {"duration": 3})
    assert rsp["result_code"] == 0 and rsp["paras"] == {"result": "rang", "duration": 3}
    assert smoke.rings == [{"duration": 3}]
    # errors are answered, never left to time out
    assert emulator.send_command(did, "nope", "x", {})["result_code"] != 0
    assert "command not found" in emulator.send_command(did, "smoke", "unknownCmd", {})["paras"]["error"]
    assert "no response" in emulator.send_command(did, "smoke", "broken", {})["paras"]["error"]
    assert "boom" in emulator.send_command(did, "smoke", "explode", {})["paras"]["error"]
    assert emulator.send_command(did, "legacy", "reset", {})["result_code"] == 0

    ok = emulator.set_properties(did, [{"service_id": "smoke", "properties": {"alarm": 0}}])
    assert ok["result_code"] == 0 and smoke.alarm == 0
    ro = emulator.set_properties(did, [{"service_id": "smoke", "properties": {"smokeConcentration": 1}}])
    assert ro["result_code"] != 0 and "smokeConcentration" in ro["result_desc"]
    unknown = emulator.set_properties(did, [{"service_id": "ghost", "properties": {"a": 1}}])
    assert unknown["result_code"] != 0 and "ghost" in unknown["result_desc"]
    # a failing setter rolls back the earlier writes of the same request
    legacy = device.get_service("legacy")
    legacy.temperature.val = 5
    bad = emulator.set_properties(did, [{"service_id": "legacy", "properties": {"temp": 7}},
                                        {"service_id": "legacy", "properties": {"temp": "hot"}}])
    assert bad["result_code"] != 0
    assert legacy.temperature.val == 7  # first service entry succeeded on its own, second refused

    got = emulator.get_properties(did, "smoke")
    assert got["services"] == [{"service_id": "smoke", "properties": {"alarm": 0, "smokeConcentration": 12.5}}]
    every = emulator.get_properties(did)
    assert sorted(s["service_id"] for s in every["services"]) == ["legacy", "smoke"]


def test_listeners_take_priority(emulator, make_device):
    device = make_device()
    did = device.get_device_id()
    client = device.get_client()
    seen = {}

    class Cmd(CommandListener):
        def on_command(self, request_id, service_id, command_name, paras):
            seen["cmd"] = (service_id, command_name, paras, threading.current_thread().name)
            client.respond_command(request_id, CommandRsp(0, "ok", {"echo": paras}))

    class Props(PropertyListener):
        def on_property_set(self, request_id, services):
            seen["set"] = [s.to_dict() for s in services]
            client.respond_properties_set(request_id, IotResult(0, "Success"))

        def on_property_get(self, request_id, service_id):
            client.respond_properties_get(request_id, [ServiceProperty(service_id, {"v": 42})])

    client.set_command_listener(Cmd())
    client.set_properties_listener(Props())
    assert emulator.send_command(did, "s", "c", {"k": 1})["paras"] == {"echo": {"k": 1}}
    assert seen["cmd"][:3] == ("s", "c", {"k": 1})
    assert seen["cmd"][3].startswith("iot-dispatch-")
    assert emulator.set_properties(did, [{"service_id": "s", "properties": {"p": 1}}])["result_code"] == 0
    assert seen["set"][0]["properties"] == {"p": 1}
    assert emulator.get_properties(did, "s")["services"] == [{"service_id": "s", "properties": {"v": 42}}]


def test_messages_raw_and_system(emulator, make_device):
    device = make_device()
    did = device.get_device_id()
    raw, system = [], []

    class Raw(RawDeviceMessageListener):
        def on_raw_device_message(self, message):
            raw.append(message.payload)

    class Sys(DeviceMessageListener):
        def on_device_message(self, message):
            system.append(message)

    device.get_client().set_raw_device_msg_listener(Raw())
    device.get_client().set_device_msg_listener(Sys())
    payloads = [b"\x00\xffbinary", b"[1, 2]", b"123", b'"text"',
                json.dumps({"name": "n", "id": "i1", "content": "hello"}).encode()]
    for p in payloads:
        emulator.send_message(did, p)
    wait_until(lambda: len(raw) == len(payloads))
    assert raw == payloads  # every payload, in order, including binary and non-object JSON
    wait_until(lambda: system)
    assert len(system) == 1 and system[0].content == "hello" and system[0].id == "i1"


def test_report_message_event_and_device_info(emulator, make_device):
    device = make_device()
    did = device.get_device_id()
    client = device.get_client()
    msg = DeviceMessage()
    msg.content = "hello huawei"
    msg.name = "greeting"
    rec = Recorder()
    client.report_device_message(msg, rec).result(5)
    wait_until(lambda: rec.successes)
    assert rec.threads[0].startswith("iot-dispatch-")
    entry = emulator.wait_for_trace(lambda e: e.device_id == did and e.kind == topics.MESSAGES_UP, 5)
    assert entry.json() == {"name": "greeting", "content": "hello huawei"}

    ev = DeviceEvent()
    ev.service_id = "custom"
    ev.event_type = "ping"
    ev.paras = {"n": 1}
    client.report_event(ev).result(5)
    info = DeviceBaseInfo()
    info.fw_version, info.sw_version = "fw1", "sw1"
    client.report_device_info(info).result(5)
    wait_until(lambda: len(emulator.trace(did, "up", topics.EVENTS_UP)) >= 3)  # $log, ping, $sdk_info
    events = [e.json() for e in emulator.trace(did, "up", topics.EVENTS_UP)]
    ping = [e for e in events if e["services"][0]["event_type"] == "ping"][0]
    assert ping["object_device_id"] == did
    codec.parse_event_time(ping["services"][0]["event_time"])  # UTC IoTDA format
    sdk = [e for e in events if e["services"][0]["service_id"] == "$sdk_info"][0]["services"][0]["paras"]
    assert sdk["fw_version"] == "fw1" and sdk["sw_version"] == "sw1" and sdk["device_sdk_version"].startswith("Python_v")


def test_auto_report_device_info_on_connect(emulator, make_device):
    device = make_device(auto_report_device_info=True)
    did = device.get_device_id()
    emulator.wait_for_trace(lambda e: e.device_id == did and e.kind == topics.EVENTS_UP
                            and b"$sdk_info" in e.payload, 5)


def test_events_reach_services_on_dispatcher(emulator, make_device):
    device = make_device()
    smoke = Smoke()
    device.add_service("smoke", smoke)
    emulator.send_event(device.get_device_id(), "smoke", "custom_event", {"x": 1})
    wait_until(lambda: smoke.events)
    assert smoke.events[0].event_type == "custom_event" and smoke.events[0].paras == {"x": 1}
    assert smoke.event_threads[0].startswith("iot-dispatch-")


def test_shadow_get(emulator, make_device):
    device = make_device()
    did = device.get_device_id()
    emulator.set_desired(did, "smoke", {"alarm": 1})
    got = []

    class Shadow(DeviceShadowListener):
        def on_shadow_get(self, request_id, object_device_id, shadow):
            got.append((request_id, object_device_id, shadow))

    device.get_client().set_device_shadow_listener(Shadow())
    device.get_client().get_device_shadow("req-1", "smoke").result(5)
    wait_until(lambda: got)
    rid, obj, shadow = got[0]
    assert rid == "req-1" and obj == did
    assert shadow[0].service_id == "smoke" and shadow[0].desired.properties == {"alarm": 1}


def test_custom_topics_with_wildcards_before_connect(emulator, make_device):
    device = make_device(connect=False)
    did = device.get_device_id()
    got = []

    class L:
        def on_message_received(self, message):
            got.append((message.topic, message.payload))

    client = device.get_client()
    client.subscribe_topic(topics.user_topic(did, "down/#"), 1, L())
    assert device.connect() == 0
    emulator.send_message(did, b"one", topic=topics.user_topic(did, "down/a/b"))
    wait_until(lambda: got)
    assert got == [(topics.user_topic(did, "down/a/b"), b"one")]
    client.publish_raw_message(RawMessage(topics.user_topic(did, "up/x"), b"\x01\x02", 1)).result(5)
    entry = emulator.wait_for_trace(lambda e: e.device_id == did and e.topic.endswith("/user/up/x"), 5)
    assert entry.payload == b"\x01\x02"


def test_malformed_downlinks_are_answered(emulator, make_device):
    device = make_device()
    did = device.get_device_id()
    core = emulator.core
    core.publish(topics.command(did, "bad-cmd"), b"not json", 1)
    core.publish(topics.properties_set(did, "bad-set"), b'{"services": 5}', 1)
    core.publish(topics.properties_get(did, "bad-get"), b"\xff", 1)
    core.publish(topics.events_down(did), b"[]", 1)  # logged, no answer exists for events
    cmd = emulator.wait_for_trace(lambda e: e.device_id == did and e.kind == topics.COMMAND_RESPONSE
                                  and e.topic.endswith("bad-cmd"), 5)
    assert cmd.json()["result_code"] != 0
    pset = emulator.wait_for_trace(lambda e: e.device_id == did and e.kind == topics.PROPERTIES_SET_RESPONSE
                                   and e.topic.endswith("bad-set"), 5)
    assert pset.json()["result_code"] != 0
    pget = emulator.wait_for_trace(lambda e: e.device_id == did and e.kind == topics.PROPERTIES_GET_RESPONSE
                                   and e.topic.endswith("bad-get"), 5)
    assert pget.json() == {"services": []}
    # and the device still works afterwards
    device.add_service("smoke", Smoke())
    assert emulator.send_command(did, "smoke", "ringAlarm", {})["result_code"] == 0


def test_auto_report_on_device_scheduler(emulator, make_device):
    device = make_device()
    did = device.get_device_id()
    smoke = Smoke()
    device.add_service("smoke", smoke)
    smoke.enable_auto_report(1)
    wait_until(lambda: len([e for e in emulator.trace(did, "up", topics.PROPERTIES_REPORT)]) >= 2, 10)
    smoke.disable_auto_report()
    assert not smoke._auto_report
