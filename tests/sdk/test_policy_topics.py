"""Custom policy topics (topics outside ``$oc`` allowed by an IoTDA topic policy): wildcard listeners, survival
across reconnects, and uplink seen by the platform under the device's id."""
import uuid

import pytest

from iot_device_sdk_python.protocol import topics
from iot_device_sdk_python.transport.raw_message import RawMessage
from iot_device_sdk_python.transport.raw_message_listener import RawMessageListener
from tests.waiting import wait_until


class Collect(RawMessageListener):
    def __init__(self):
        self.got = []

    def on_message_received(self, message):
        self.got.append((message.topic, bytes(message.payload)))


@pytest.fixture(scope="module")
def policy_emulator(emulator):
    emulator.add_topic_policy("policy/%u/#")
    return emulator


def test_policy_topic_down_up_and_after_reconnect(policy_emulator, make_device):
    emu = policy_emulator
    device = make_device(emu, connect=False)
    dev_id = device.get_device_id()
    listener = Collect()
    client = device.get_client()
    client.subscribe_topic(f"policy/{dev_id}/down/+", 1, listener)     # before connect, with a wildcard
    assert device.connect() == 0

    emu.core.publish(f"policy/{dev_id}/down/a", b"first")
    wait_until(lambda: listener.got, timeout=10)
    assert listener.got == [(f"policy/{dev_id}/down/a", b"first")]

    client.publish_raw_message(RawMessage(f"policy/{dev_id}/up", b"\x00\x01binary", 1)).result(10)
    entry = emu.wait_for_trace(lambda e: e.topic == f"policy/{dev_id}/up", timeout=10)
    assert entry.device_id == dev_id and entry.payload == b"\x00\x01binary" and entry.direction == "up"

    emu.cut(dev_id)                                                      # the subscription must be restored
    wait_until(lambda: emu.is_online(dev_id) and client._get_connection().is_connected(), timeout=20)
    wait_until(lambda: _try(lambda: _round_trip(emu, dev_id, listener, "down/b")), timeout=15)


def test_other_devices_policy_topics_are_out_of_reach(policy_emulator, make_device):
    emu = policy_emulator
    a, b = make_device(emu), make_device(emu)
    spy = Collect()
    a.get_client().subscribe_topic(f"policy/{b.get_device_id()}/#", 1, spy)   # b's scope, not a's
    b.get_client().publish_raw_message(RawMessage(f"policy/{b.get_device_id()}/up", b"private", 1)).result(10)
    emu.wait_for_trace(lambda e: e.topic == f"policy/{b.get_device_id()}/up", timeout=10)
    # IoTDA refuses the forged publish: a's link is closed (never acknowledged and dropped), a reconnects
    a.get_client().publish_raw_message(RawMessage(f"policy/{b.get_device_id()}/up", b"forged", 0))
    emu.wait_for_trace(lambda e: e.kind == "violation" and e.device_id == a.get_device_id()
                       and e.topic == f"policy/{b.get_device_id()}/up", timeout=10)
    emu.core.publish(f"policy/{b.get_device_id()}/down/x", b"for b")
    emu.wait_for_trace(lambda e: e.topic == f"policy/{b.get_device_id()}/down/x", timeout=10)
    # the marker round trip on a's own topic proves a's link is alive and ordered after the above
    mine = Collect()
    a.get_client().subscribe_topic(f"policy/{a.get_device_id()}/down/#", 1, mine)
    wait_until(lambda: _try(lambda: _round_trip(emu, a.get_device_id(), mine, "down/ping")), timeout=15)
    assert spy.got == []
    assert not [e for e in emu.trace() if e.topic == f"policy/{b.get_device_id()}/up" and e.payload == b"forged"]


def test_topic_policy_pattern_is_validated(emulator):
    for bad in ("$oc/devices/%u/x", "", "a/#/b", "a/b+/c", "a/%x/b"):
        with pytest.raises(ValueError):
            emulator.add_topic_policy(bad)


def test_policy_device_id_unit():
    assert topics.policy_device_id("policy/%u/#", "policy/d1/x/y") == "d1"
    assert topics.policy_device_id("policy/%u/up", "policy/d1/up") == "d1"
    assert topics.policy_device_id("policy/%u/up", "policy/d1/down") is None
    assert topics.policy_device_id("policy/+/x", "policy/d1/x") is None
    assert topics.policy_device_id("a/%u", "a") is None


def _round_trip(emu, dev_id, listener, suffix: str) -> bool:
    """Publish a fresh token on the device's policy topic and wait (briefly) until the listener got it."""
    token = uuid.uuid4().hex.encode()
    topic = f"policy/{dev_id}/{suffix}"
    emu.core.publish(topic, token)
    return bool(wait_until(lambda: (topic, token) in listener.got, timeout=2))


def _try(fn) -> bool:
    try:
        return bool(fn())
    except AssertionError:
        return False
