"""MQTT 5 end to end (issue 19 item 2): SDK devices with ``protocol_version = MQTT_V5`` on the emulator.

Checked: the IoTDA flows work on MQTT 5 (implicit subscription included), refusals carry MQTT 5 reason codes into
``ConnectRefusedError``/``PublishError``, user properties / content type / response topic / correlation data travel
device -> front -> broker -> front -> device unchanged, topic aliases are used within the server's maximum, and the
access front applies its topic rules to publishes that name their topic by alias alone.
"""
from __future__ import annotations

import queue
import threading
import time

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from iot_device_sdk_python import ConnectRefusedError, MqttConnectConf
from iot_device_sdk_python.client.listener.command_listener import CommandListener
from iot_device_sdk_python.client.mqtt_v5_data import MqttV5Data
from iot_device_sdk_python.client.request.command_response import CommandRsp
from iot_device_sdk_python.client.request.device_message import DeviceMessage
from iot_device_sdk_python.client.request.service_property import ServiceProperty
from iot_device_sdk_python.transport.publish_handle import PublishError
from iot_device_sdk_python.transport.raw_message import RawMessage
from iot_device_sdk_python.transport.raw_message_listener import RawMessageListener
from iotda_emulator.access_front import hmac_password
from tests.waiting import wait_until

V5 = MqttConnectConf.MQTT_V5
#: the Topic Alias Maximum the emulator's CONNACK carries: Mosquitto's default ``max_topic_alias`` (doc/emulator.md)
SERVER_TOPIC_ALIAS_MAXIMUM = 10


class Inbox(RawMessageListener):
    def __init__(self) -> None:
        self.messages: "queue.Queue[RawMessage]" = queue.Queue()

    def on_message_received(self, message: RawMessage) -> None:
        self.messages.put(message)


def test_iotda_flows_work_on_mqtt5(emulator, make_device):
    device = make_device(protocol_version=V5)
    did = device.get_device_id()
    client = device.get_client()

    class Echo(CommandListener):
        def on_command(self, request_id, service_id, command_name, paras):
            client.respond_command(request_id, CommandRsp(0, "ok", {"echo": paras}))

    client.set_command_listener(Echo())
    client.report_properties([ServiceProperty("svc", {"t": 21})]).result(5)
    assert wait_until(lambda: any(s["service_id"] == "svc" and s["reported"]["properties"] == {"t": 21}
                                  for s in emulator.shadow(did)))
    assert emulator.send_command(did, "svc", "ping", {"n": 1})["paras"] == {"echo": {"n": 1}}


def test_implicit_subscription_delivers_to_an_mqtt5_device_that_never_subscribes(emulator, device_record):
    did, secret = device_record["device_id"], device_record["secret"]
    got: "queue.Queue[mqtt.MQTTMessage]" = queue.Queue()
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"{did}_0_0_2026010100", protocol=mqtt.MQTTv5)
    c.username_pw_set(did, hmac_password(secret, "2026010100"))
    c.on_message = lambda cl, ud, msg: got.put(msg)
    c.connect(emulator.host, emulator.mqtt_port, 60, clean_start=True)
    c.loop_start()
    try:
        assert emulator.wait_online(did)
        emulator.send_message(did, b"hello v5")
        msg = got.get(timeout=5)
        assert msg.topic == f"$oc/devices/{did}/sys/messages/down" and msg.payload == b"hello v5"
    finally:
        c.disconnect()
        c.loop_stop()


@pytest.mark.parametrize("version", [MqttConnectConf.MQTT_V311, V5])
def test_a_refused_connect_carries_the_mqtt5_reason_code(emulator, make_device, device_record, version):
    record = dict(device_record, secret="wrong-secret-123")
    device = make_device(record=record, connect=False, protocol_version=version, reconnect_on_failure=False)
    with pytest.raises(ConnectRefusedError) as info:
        device.connect(raise_on_failure=True)
    assert info.value.code == 4
    assert info.value.reason_code == 0x86 and info.value.reason_name == "Bad user name or password"
    assert "0x86" in str(info.value)


def test_a_frozen_device_gets_not_authorized(emulator, make_device):
    record = emulator.create_device()
    emulator.freeze_device(record["device_id"])
    device = make_device(record=record, connect=False, protocol_version=V5, reconnect_on_failure=False)
    with pytest.raises(ConnectRefusedError) as info:
        device.connect(raise_on_failure=True)
    assert (info.value.code, info.value.reason_code) == (5, 0x87)


def test_a_publish_the_platform_refuses_fails_with_its_puback_reason_and_the_link_stays(emulator, make_device):
    device = make_device(protocol_version=V5)
    other = emulator.create_device()
    handle = device.get_client().publish_raw_message(
        RawMessage(f"$oc/devices/{other['device_id']}/sys/messages/up", b"not mine", 1))
    with pytest.raises(PublishError) as info:
        handle.result(5)
    assert info.value.reason == PublishError.REASON_REFUSED and info.value.reason_code == 0x87
    assert device.get_client().is_connected()
    msg = DeviceMessage()
    msg.content = "still here"
    device.get_client().report_device_message(msg).result(5)


def test_v5_data_needs_an_mqtt5_connection(make_device):
    device = make_device()  # MQTT 3.1.1
    handle = device.get_client().publish_raw_message(
        RawMessage(f"$oc/devices/{device.get_device_id()}/sys/messages/up", b"x", 1, MqttV5Data([("k", "v")])))
    with pytest.raises(PublishError) as info:
        handle.result(5)
    assert info.value.reason == PublishError.REASON_INVALID and "MQTT_V5" in str(info.value)


def test_properties_travel_between_devices_unchanged(emulator, make_device):
    emulator.add_topic_policy("v5share/#")
    sender = make_device(protocol_version=V5)
    receiver = make_device(protocol_version=V5)
    inbox = Inbox()
    receiver.get_client().subscribe_topic("v5share/#", 1, inbox)
    data = MqttV5Data(user_properties=[("region", "A"), ("type", "JSON"), ("region", "B")],
                      content_type="application/json", response_topic="v5share/replies",
                      correlation_data=b"\x00\x01req-7")
    assert wait_until(lambda: receiver.get_device_id() in emulator.front.subscribers("v5share/x"))
    sender.get_client().publish_raw_message(RawMessage("v5share/x", b'{"a":1}', 1, data)).result(5)
    got = inbox.messages.get(timeout=5)
    assert got.payload == b'{"a":1}'
    assert got.v5_data == data  # order and the repeated key kept


def test_reports_carry_v5_data_and_a_plain_message_has_none(emulator, make_device):
    emulator.add_topic_policy("v5plain/#")
    sender = make_device(protocol_version=V5)
    receiver = make_device(protocol_version=V5)
    inbox = Inbox()
    receiver.get_client().subscribe_topic("v5plain/#", 1, inbox)
    assert wait_until(lambda: receiver.get_device_id() in emulator.front.subscribers("v5plain/x"))
    sender.get_client().publish_raw_message(RawMessage("v5plain/x", b"raw", 1)).result(5)
    assert inbox.messages.get(timeout=5).v5_data is None
    # a property report with v5 data reaches the platform like any other
    sender.get_client().report_properties([ServiceProperty("svc", {"v": 5})],
                                          v5_data=MqttV5Data(content_type="application/json")).result(5)
    did = sender.get_device_id()
    assert wait_until(lambda: any(s["service_id"] == "svc" for s in emulator.shadow(did)))


def test_topic_aliases_are_used_within_the_servers_maximum(emulator, make_device):
    emulator.add_topic_policy("alias/%u/#")
    device = make_device(protocol_version=V5, topic_alias_maximum=1000)
    did = device.get_device_id()
    client = device.get_client()
    conn = client._connection
    session = conn._get_paho_client().user_data_get().v5
    assert session.alias_max == SERVER_TOPIC_ALIAS_MAXIMUM  # min(1000, the server's Topic Alias Maximum)
    since = emulator.trace()[-1].id if emulator.trace() else 0
    topics_ = [f"alias/{did}/t{i}" for i in range(SERVER_TOPIC_ALIAS_MAXIMUM + 5)]
    for rounds in range(3):
        handles = [client.publish_raw_message(RawMessage(t, f"{t}#{rounds}".encode(), 1)) for t in topics_]
        for h in handles:
            h.result(5)
    assert len(conn.topic_aliases()) == SERVER_TOPIC_ALIAS_MAXIMUM
    assert session.alias_only_sent > 0  # later rounds sent the alias alone
    # the platform saw every message under its full topic: aliases were resolved to the right topics
    def seen():
        return [(e.topic, e.payload) for e in emulator.trace(did, direction="up", since_id=since)
                if e.topic.startswith(f"alias/{did}/")]
    want = {(t, f"{t}#{r}".encode()) for r in range(3) for t in topics_}
    assert wait_until(lambda: want <= set(seen()))


def test_the_front_checks_a_publish_that_names_its_topic_by_alias_only(emulator, device_record):
    did, secret = device_record["device_id"], device_record["secret"]
    acks: "queue.Queue[tuple]" = queue.Queue()
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"{did}_0_0_2026010100", protocol=mqtt.MQTTv5)
    c.username_pw_set(did, hmac_password(secret, "2026010100"))
    c.on_publish = lambda cl, ud, mid, rc, props: acks.put((mid, rc.value))
    lost = threading.Event()
    c.on_disconnect = lambda *a: lost.set()
    c.connect(emulator.host, emulator.mqtt_port, 60, clean_start=True)
    c.loop_start()
    try:
        assert emulator.wait_online(did)
        other = emulator.create_device()
        forbidden = f"$oc/devices/{other['device_id']}/sys/messages/up"
        props = Properties(PacketTypes.PUBLISH)
        props.TopicAlias = 1
        info = c.publish(forbidden, b"first", 1, properties=props)
        assert acks.get(timeout=5) == (info.mid, 0x87)
        info = c.publish("", b"again by alias", 1, properties=props)  # the same forbidden topic
        assert acks.get(timeout=5) == (info.mid, 0x87)
        time.sleep(0.2)
        assert not lost.is_set()  # refused one by one, the link stays
        own = f"$oc/devices/{did}/sys/messages/up"
        props2 = Properties(PacketTypes.PUBLISH)
        props2.TopicAlias = 2
        for payload, topic in ((b"named", own), (b"aliased", "")):
            info = c.publish(topic, payload, 1, properties=props2)
            assert acks.get(timeout=5) == (info.mid, 0)
        assert wait_until(lambda: [e.payload for e in emulator.trace(did, direction="up") if e.topic == own]
                          == [b"named", b"aliased"])
        assert not any(e.payload in (b"first", b"again by alias") for e in emulator.trace(direction="up"))
    finally:
        c.disconnect()
        c.loop_stop()


def test_a_refusing_puback_that_beats_the_registration_still_fails_the_message(make_device):
    # paho may read the PUBACK before publish() has returned and the SDK has registered the message
    from paho.mqtt.reasoncodes import ReasonCode

    from iot_device_sdk_python.transport.outbox import OutgoingMessage

    device = make_device(protocol_version=V5)
    conn = device.get_client()._connection
    client = conn._get_paho_client()
    refused = ReasonCode(PacketTypes.PUBACK, identifier=0x87)
    message = OutgoingMessage("t/x", b"x", 1, None, 10**9, None)
    conn._on_publish(client, client.user_data_get(), 65001, refused, None)  # the ack first
    conn._track(client, message, 65001)                                        # then the registration
    assert isinstance(message.exception(), PublishError)
    assert (message.exception().reason, message.exception().reason_code) == (PublishError.REASON_REFUSED, 0x87)
