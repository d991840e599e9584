"""IoTDA's topic rules at the access front: a refused publish is never acknowledged and then dropped."""
from __future__ import annotations

import paho.mqtt.client as mqtt
import pytest

from iotda_emulator.protocol import topics
from iotda_emulator.device_policies import APP_ID, DevicePolicies
from iotda_emulator.store import Store
from iotda_emulator.topic_acl import TopicAuthorizer, filters_overlap
from tests.emulator.bare_device import RecordingDevice as BareDevice


@pytest.fixture
def device(emulator):
    rec = emulator.create_device()
    made = []

    def make(protocol=mqtt.MQTTv311) -> BareDevice:
        dev = BareDevice(emulator, rec, protocol=protocol).connect()
        made.append(dev)
        return dev
    yield make
    for dev in made:
        dev.close()
    emulator.delete_device(rec["device_id"])


@pytest.mark.parametrize("suffix", ["sys/unknown", "sys/messages/down", "sys/commands/request_id=1", "nothing"])
def test_publish_to_a_topic_iotda_refuses_closes_the_link_and_is_traced(emulator, device, suffix):
    dev = device()
    topic = topics.device_root(dev.device_id) + suffix
    since = emulator.core.last_trace_id
    dev.c.publish(topic, b"x", qos=1)
    assert dev.disconnected.wait(5), "an MQTT 3.1.1 device learns of the refusal by losing its connection"
    entry = emulator.wait_for_trace(lambda e: e.kind == "violation" and e.topic == topic, since_id=since)
    assert entry.device_id == dev.device_id and entry.json()["reason"] == "topic_not_allowed"
    assert not [e for e in emulator.trace(dev.device_id) if e.topic == topic and e.kind != "violation"]


def test_publish_as_another_device_closes_the_link(emulator, device):
    dev = device()
    other = emulator.create_device()
    try:
        dev.c.publish(topics.messages_up(other["device_id"]), b"spoof", qos=0)
        assert dev.disconnected.wait(5)
        assert not emulator.trace(other["device_id"])
    finally:
        emulator.delete_device(other["device_id"])


def test_mqtt5_refused_qos1_publish_gets_puback_0x87_and_keeps_the_link(emulator, device):
    dev = device(protocol=mqtt.MQTTv5)
    bad = topics.device_root(dev.device_id) + "sys/unknown"
    info = dev.c.publish(bad, b"x", qos=1)
    mid, code = dev.pubacks.get(timeout=5)
    assert (mid, code) == (info.mid, 0x87)
    good = dev.c.publish(topics.messages_up(dev.device_id), b"fine", qos=1)
    assert dev.pubacks.get(timeout=5) == (good.mid, 0)
    assert not dev.disconnected.is_set()
    emulator.wait_for_trace(lambda e: e.payload == b"fine" and e.device_id == dev.device_id)


def test_subscribe_mixes_granted_and_refused_filters(emulator, device):
    dev = device()
    other = emulator.create_device()
    try:
        codes = dev.subscribe((topics.device_root(other["device_id"]) + "#", 1),
                              (topics.messages_down(dev.device_id), 1),
                              ("$oc/devices/+/sys/#", 0))
        assert codes == [0x80, 1, 0x80]
        emulator.send_message(other["device_id"], "not yours")
        emulator.send_message(dev.device_id, "yours")
        m = dev.next_message()
        assert (m.payload, m.qos) == (b"yours", 1)
        assert dev.drain(0.5) == []
        assert not dev.disconnected.is_set()
    finally:
        emulator.delete_device(other["device_id"])


def test_topic_policy_grants_publish_and_subscribe(emulator, device):
    emulator.add_topic_policy("rules/%u/#")
    dev = device()
    mine = f"rules/{dev.device_id}/t"
    assert dev.subscribe((mine, 0), ("rules/someone_else/t", 0)) == [0, 0x80]
    dev.c.publish(mine, b"loop", qos=1)
    assert dev.next_message().payload == b"loop"
    dev.c.publish("rules/someone_else/t", b"no", qos=1)
    assert dev.disconnected.wait(5)


# ---- the rules as a unit ------------------------------------------------------------------------------

@pytest.mark.parametrize("a,b,overlap", [
    ("$oc/devices/d/sys/#", "$oc/devices/d/sys/commands/+", True),
    ("$oc/devices/d/#", "$oc/devices/d", True),
    ("$oc/devices/d/sys/commands/request_id=1", "$oc/devices/d/sys/commands/+", True),
    ("$oc/devices/d/sys/messages/down", "$oc/devices/d/sys/commands/+", False),
    ("#", "$oc/devices/d/sys/messages/down", False),
    ("+/devices/d/sys/messages/down", "$oc/devices/d/sys/messages/down", False),
    ("a/+/c", "a/b/+", True),
    ("a/b", "a/b/c", False),
])
def test_filters_overlap(a, b, overlap):
    assert filters_overlap(a, b) is overlap
    assert filters_overlap(b, a) is overlap


def test_authorizer_rules(tmp_path):
    policies = DevicePolicies(Store(str(tmp_path / "policies.db")))
    policies.add_mqtt_pattern("p/%u/#", APP_ID)
    auth = TopicAuthorizer(policy_check=policies.topic_check(lambda d: None, lambda d: []))
    root = topics.device_root("d")
    assert auth.check_publish("d", root + "sys/messages/up") is None
    assert auth.check_publish("d", root + "sys/messages/up?request_id=7") is None
    assert auth.check_publish("d", root + "sys/events/up") is None
    assert auth.check_publish("d", root + "user/anything") is None            # no product check given
    assert auth.check_publish("d", "p/d/x") is None
    for refused in (root + "sys/events/down", root + "sys/x", "$oc/devices/e/sys/messages/up", "p/e/x",
                    "$oc/broadcast/x", "plain", "", root + "sys/messages/up/+"):
        assert auth.check_publish("d", refused), refused
    assert auth.check_subscribe("d", root + "#") is None
    assert auth.check_subscribe("d", "$oc/broadcast/#") is None
    assert auth.check_subscribe("d", "p/d/#") is None
    for refused in ("$oc/devices/e/#", "$oc/#", "p/e/x", "a/#/b", "a+/b", "#", "+/d/x"):
        assert auth.check_subscribe("d", refused), refused
    denied = TopicAuthorizer(custom_topic_check=lambda d, t, a: "not defined" if t.endswith("/no") else None)
    assert denied.check_publish("d", root + "user/no") == "not defined"
    assert denied.check_subscribe("d", root + "user/no") == "not defined"
    assert denied.check_publish("d", root + "user/yes") is None


def test_a_will_on_a_refused_topic_is_refused_at_connect(emulator):
    rec = emulator.create_device()
    try:
        for will, accepted in ((f"$oc/devices/{rec['device_id']}x/sys/messages/up", False),
                               (topics.messages_up(rec["device_id"]), True)):
            dev = BareDevice(emulator, rec)
            dev.c.will_set(will, b"gone", qos=0)
            codes = []
            dev.c.on_connect = lambda c, u, f, rc, p: (codes.append(rc), dev.connected.set())
            dev.c.connect(emulator.host, emulator.mqtt_port, 60)
            dev.c.loop_start()
            assert dev.connected.wait(5)
            dev.close()
            assert codes[0].is_failure is not accepted, (will, codes)
    finally:
        emulator.delete_device(rec["device_id"])


def test_a_top_level_wildcard_is_refused_without_a_policy_and_reads_nothing_of_other_devices(emulator, device):
    # IoTDA matches a SUBSCRIBE's filter against the device policies as a string: "#" is no policy topic
    emulator.add_topic_policy("rules/%u/#")
    dev = device()
    other_rec = emulator.create_device()
    other = BareDevice(emulator, other_rec).connect()
    try:
        assert dev.subscribe(("#", 1), ("+/+/+", 1)) == [0x80, 0x80]
        other.c.publish(f"rules/{other_rec['device_id']}/t", b"private", qos=1)
        other.c.publish(topics.messages_up(other_rec["device_id"]), b"private too", qos=1)
        emulator.send_message(other_rec["device_id"], "for the other one")
        emulator.wait_for_trace(lambda e: e.payload == b"private too")
        assert other.next_message().payload == b"for the other one"
        assert dev.drain(0.5) == []
    finally:
        other.close()
        emulator.delete_device(other_rec["device_id"])
