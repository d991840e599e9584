"""Device messages up and down (doc/protocol.md §2.2, §2.3), implicit and explicit subscription (§2).

The devices here never SUBSCRIBE to system topics, except where a test is about explicit subscription.
"""
from __future__ import annotations

import base64
import json

import pytest

from tests.conformance._device import new_id

NOTHING_MORE = 0.6   # how long a test listens for a duplicate that must not come


def _since(emu) -> int:
    entries = emu.trace(limit=1, newest=True)
    return entries[-1].id if entries else 0


# ---- messages/up -----------------------------------------------------------------------------------

def test_free_form_message_up_reaches_the_platform(emu, make_device):
    dev = make_device()
    since = _since(emu)
    topic = f"$oc/devices/{dev.id}/sys/messages/up"
    dev.publish(topic, b"\x00\x01 raw bytes \xff")
    entry = emu.wait_for_trace(lambda e: e.direction == "up" and e.topic == topic, 5, since)
    assert entry.device_id == dev.id and entry.payload == b"\x00\x01 raw bytes \xff"


def test_system_format_message_up_reaches_the_platform(emu, make_device):
    dev = make_device()
    since = _since(emu)
    topic = f"$oc/devices/{dev.id}/sys/messages/up"
    body = {"object_device_id": dev.id, "name": "alarm", "id": new_id("m"), "content": {"level": 3}}
    dev.publish(topic, body)
    entry = emu.wait_for_trace(lambda e: e.direction == "up" and e.topic == topic, 5, since)
    assert entry.json() == body


def test_message_up_with_request_id_suffix(emu, make_device):
    dev = make_device()
    since = _since(emu)
    rid = new_id("r")
    topic = f"$oc/devices/{dev.id}/sys/messages/up?request_id={rid}"
    dev.publish(topic, {"content": "hello"})
    entry = emu.wait_for_trace(lambda e: e.direction == "up" and e.topic == topic, 5, since)
    assert entry.device_id == dev.id and entry.json() == {"content": "hello"}
    assert dev.connack == 0 and not dev.disconnected.is_set()


# ---- messages/down ---------------------------------------------------------------------------------

def test_standard_message_down_without_subscribe_at_qos0(api, make_device):
    dev = make_device()
    rsp = api.post(f"/devices/{dev.id}/messages", {"message": {"text": "hi"}, "name": "greeting"})
    assert rsp.status_code == 201, rsp.text
    msg = dev.expect(f"$oc/devices/{dev.id}/sys/messages/down")
    assert msg.topic == f"$oc/devices/{dev.id}/sys/messages/down"
    assert msg.qos == 0 and not msg.retain
    body = msg.json()
    assert body["content"] == {"text": "hi"} and body["name"] == "greeting"
    assert body["id"] == rsp.json()["message_id"]
    assert rsp.json()["result"]["status"] == "DELIVERED"


def test_raw_message_down_is_delivered_unchanged(api, make_device):
    dev = make_device()
    payload = b"\x01\x02binary\xfe"
    rsp = api.post(f"/devices/{dev.id}/messages", {"message": base64.b64encode(payload).decode(),
                                                   "encoding": "base64", "payload_format": "raw"})
    assert rsp.status_code == 201, rsp.text
    assert dev.expect(f"$oc/devices/{dev.id}/sys/messages/down").payload == payload


def test_message_for_an_offline_device_is_pending_then_delivered_on_connect(emu, api, make_device):
    dev = make_device(connect=False)
    rsp = api.post(f"/devices/{dev.id}/messages", {"message": "while you were away"})
    assert rsp.status_code == 201, rsp.text
    assert rsp.json()["result"]["status"] == "PENDING"
    assert dev.connect() == 0
    msg = dev.expect(f"$oc/devices/{dev.id}/sys/messages/down")
    assert msg.json()["content"] == "while you were away"


def test_message_status_reflects_that_it_went_out_to_the_connected_device(emu, api, make_device):
    # Delivered means the device really got it: checked from the device side, not from the platform's word.
    dev = make_device()
    rsp = api.post(f"/devices/{dev.id}/messages", {"message": "m1"})
    assert rsp.json()["result"]["status"] == "DELIVERED"
    assert dev.expect(f"$oc/devices/{dev.id}/sys/messages/down").json()["content"] == "m1"


def test_message_to_a_user_topic_needs_the_devices_own_subscription(api, make_device):
    dev = make_device()
    topic = f"$oc/devices/{dev.id}/user/conformance/down"
    assert dev.subscribe(topic, qos=1) == [1]
    rsp = api.post(f"/devices/{dev.id}/messages", {"message": "to a user topic", "topic": "conformance/down"})
    assert rsp.status_code == 201, rsp.text
    assert dev.expect(topic).json()["content"] == "to a user topic"


def test_topic_full_name_is_passed_through_unchanged(emu, api, make_device):
    dev = make_device()
    emu.add_topic_policy("conformance/%u/#")
    topic = f"conformance/{dev.id}/cmd"
    assert dev.subscribe(topic, qos=1) == [1]
    rsp = api.post(f"/devices/{dev.id}/messages", {"message": "policy topic", "topic_full_name": topic})
    assert rsp.status_code == 201, rsp.text
    assert json.loads(dev.expect(topic).payload)["content"] == "policy topic"


# ---- explicit subscriptions -----------------------------------------------------------------------

def test_explicit_qos1_subscription_gets_qos1_exactly_once(api, make_device):
    dev = make_device()
    topic = f"$oc/devices/{dev.id}/sys/messages/down"
    assert dev.subscribe(topic, qos=1) == [1]
    for i in range(3):
        assert api.post(f"/devices/{dev.id}/messages", {"message": f"n{i}"}).status_code == 201
    got = [dev.expect(topic) for _ in range(3)]
    assert [m.json()["content"] for m in got] == ["n0", "n1", "n2"]
    assert all(m.qos == 1 for m in got)
    with pytest.raises(TimeoutError):
        dev.expect(topic, timeout=NOTHING_MORE)


def test_implicit_and_overlapping_explicit_wildcard_deliver_each_message_once(api, make_device):
    dev = make_device()
    assert dev.subscribe(f"$oc/devices/{dev.id}/sys/#", qos=1) == [1]
    assert api.post(f"/devices/{dev.id}/messages", {"message": "once"}).status_code == 201
    topic = f"$oc/devices/{dev.id}/sys/messages/down"
    dev.expect(topic)
    with pytest.raises(TimeoutError):
        dev.expect(topic, timeout=NOTHING_MORE)


def test_the_device_never_gets_its_own_uplink_back(make_device):
    dev = make_device()
    assert dev.subscribe(f"$oc/devices/{dev.id}/sys/#", qos=1) == [1]
    dev.publish(f"$oc/devices/{dev.id}/sys/messages/up", {"content": "echo?"})
    with pytest.raises(TimeoutError):
        dev.expect(f"$oc/devices/{dev.id}/sys/messages/up", timeout=NOTHING_MORE)


def test_offline_cache_keeps_the_newest_20_messages(api, make_device):
    dev = make_device(connect=False)
    for i in range(22):
        assert api.post(f"/devices/{dev.id}/messages", {"message": f"c{i}"}).status_code == 201
    assert dev.connect() == 0
    topic = f"$oc/devices/{dev.id}/sys/messages/down"
    got = [dev.expect(topic).json()["content"] for _ in range(20)]
    assert got == [f"c{i}" for i in range(2, 22)]
    with pytest.raises(TimeoutError):
        dev.expect(topic, timeout=NOTHING_MORE)


# ---- custom ($oc/devices/{id}/user/...) topics, checked against the product's definitions -------------

def test_publish_on_a_defined_custom_topic_reaches_the_platform(emu, make_device):
    dev = make_device()
    since = _since(emu)
    topic = f"$oc/devices/{dev.id}/user/conformance/up"
    dev.publish(topic, b"custom payload")
    entry = emu.wait_for_trace(lambda e: e.direction == "up" and e.topic == topic, 5, since)
    assert entry.payload == b"custom payload" and not dev.disconnected.is_set()


@pytest.mark.parametrize("name", ["conformance/undefined", "conformance/down"],
                         ids=["undefined", "subscribe-only"])
def test_publish_on_a_custom_topic_the_product_does_not_allow_closes_the_link(emu, make_device, name):
    dev = make_device()
    since = _since(emu)
    dev.client.publish(f"$oc/devices/{dev.id}/user/{name}", b"not allowed", qos=1)
    assert dev.wait_disconnected(5)
    entry = emu.wait_for_trace(lambda e: e.device_id == dev.id and e.kind == "violation", 5, since)
    assert entry.topic.endswith(name)


def test_subscribe_to_a_custom_topic_the_product_does_not_allow_is_refused(make_device):
    dev = make_device()
    codes = dev.subscribe(f"$oc/devices/{dev.id}/user/conformance/up", qos=1)   # publish-only
    assert codes[0] >= 0x80 or dev.wait_disconnected(2)


def test_device_may_subscribe_to_broadcast_topics(make_device):
    dev = make_device()
    assert dev.subscribe("$oc/broadcast/conformance", qos=1) == [1]


def test_unsubscribing_the_explicit_filter_keeps_the_implicit_subscription(api, make_device):
    dev = make_device()
    topic = f"$oc/devices/{dev.id}/sys/messages/down"
    assert dev.subscribe(topic, qos=1) == [1]
    rc, mid = dev.client.unsubscribe(topic)
    assert rc == 0
    dev.publish(f"$oc/devices/{dev.id}/sys/messages/up", b"barrier")   # the UNSUBSCRIBE went out before this
    assert api.post(f"/devices/{dev.id}/messages", {"message": "still here"}).status_code == 201
    msg = dev.expect(topic)
    assert msg.json()["content"] == "still here" and msg.qos == 0


def test_mqtt5_device_gets_system_downlinks_without_subscribe(emu, api):
    import paho.mqtt.client as mqtt
    from tests.conformance._device import Device
    rec = api.add_device()
    dev = Device(emu.host, emu.mqtt_port, rec["device_id"], rec["secret"], protocol=mqtt.MQTTv5)
    try:
        assert dev.connect() == 0
        assert api.post(f"/devices/{dev.id}/messages", {"message": "v5"}).status_code == 201
        assert dev.expect(f"$oc/devices/{dev.id}/sys/messages/down").json()["content"] == "v5"
    finally:
        dev.close()


def test_message_with_ttl_0_for_an_offline_device_is_not_cached(api, make_device):
    dev = make_device(connect=False)
    rsp = api.post(f"/devices/{dev.id}/messages", {"message": "now or never", "ttl": 0})
    assert rsp.status_code == 201, rsp.text
    assert rsp.json()["result"]["status"] == "TIMEOUT"
    assert dev.connect() == 0
    with pytest.raises(TimeoutError):
        dev.expect(f"$oc/devices/{dev.id}/sys/messages/down", timeout=NOTHING_MORE)
