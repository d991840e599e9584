"""Implicit subscription (IoTDA subscribes each device to its system downlinks) as the access front does it.

Devices here are bare paho clients that never send SUBSCRIBE unless a test says so.
"""
from __future__ import annotations

import json
import threading

import pytest

from iotda_emulator.protocol import topics
from tests.emulator.bare_device import RecordingDevice as BareDevice


@pytest.fixture
def bare(emulator):
    devices = []

    def make(**kwargs) -> BareDevice:
        dev = BareDevice(emulator, emulator.create_device(), **kwargs).connect()
        devices.append(dev)
        return dev
    yield make
    for dev in devices:
        dev.close()
        emulator.delete_device(dev.device_id)


def _answer_requests(emulator, dev: BareDevice, count: int) -> threading.Thread:
    """Answer ``count`` commands / property requests on a thread; the messages go to ``dev.seen``."""
    dev.seen = []

    def run():
        for _ in range(count):
            m = dev.next_message(10)
            dev.seen.append(m)
            info = topics.classify(m.topic)
            answer = {topics.COMMAND: topics.command_response, topics.PROPERTIES_SET: topics.properties_set_response,
                      topics.PROPERTIES_GET: topics.properties_get_response}[info.kind]
            body = {"services": []} if info.kind == topics.PROPERTIES_GET else {"result_code": 0}
            dev.c.publish(answer(dev.device_id, info.request_id), json.dumps(body), qos=1)
    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def test_system_downlinks_arrive_without_subscribe_at_qos0(emulator, bare):
    dev = bare()
    did = dev.device_id
    emulator.send_message(did, "hello", qos=1)
    m = dev.next_message()
    assert (m.topic, m.payload, m.qos) == (topics.messages_down(did), b"hello", 0)
    emulator.send_event(did, "$time_sync", "time_sync_response", {"device_send_time": 1})
    m = dev.next_message()
    assert m.topic == topics.events_down(did) and m.qos == 0
    t = _answer_requests(emulator, dev, 3)
    assert emulator.send_command(did, "s", "c", {"x": 1})["result_code"] == 0
    assert emulator.set_properties(did, [{"service_id": "s", "properties": {"p": 1}}])["result_code"] == 0
    assert "services" in emulator.get_properties(did, "s")
    t.join(10)
    assert [topics.classify(m.topic).kind for m in dev.seen] == [topics.COMMAND, topics.PROPERTIES_SET,
                                                                  topics.PROPERTIES_GET]
    assert {m.qos for m in dev.seen} == {0}
    dev.c.publish(topics.shadow_get(did, "r1"), b"{}", qos=1)
    m = dev.next_message()
    assert m.topic == topics.shadow_get_response(did, "r1") and m.qos == 0
    assert json.loads(m.payload)["object_device_id"] == did


def test_explicit_wildcard_subscription_keeps_its_qos_and_each_message_arrives_once(emulator, bare):
    dev = bare()
    did = dev.device_id
    assert dev.subscribe((topics.device_root(did) + "sys/#", 1)) == [1]
    emulator.send_message(did, "one", qos=1)
    emulator.send_event(did, "$time_sync", "time_sync_response", {"device_send_time": 1})
    got = [dev.next_message(), dev.next_message()]
    t = _answer_requests(emulator, dev, 1)
    emulator.send_command(did, "s", "c", {})
    t.join(10)
    got += dev.seen + dev.drain(0.7)
    assert [(m.topic, m.qos) for m in got] == [(topics.messages_down(did), 1), (topics.events_down(did), 1),
                                               (dev.seen[0].topic, 1)]
    # the device's own command response matched its "sys/#" but is not echoed back to it
    assert not [m for m in got if topics.classify(m.topic).kind in topics.UPLINK_KINDS]


def test_explicit_subscription_to_the_same_filter_then_unsubscribe_keeps_the_implicit_one(emulator, bare):
    dev = bare()
    did = dev.device_id
    flt = topics.device_root(did) + "sys/messages/down"
    assert dev.subscribe((flt, 1)) == [1]
    emulator.send_message(did, "at-1", qos=1)
    assert dev.next_message().qos == 1
    dev.unsubscribe(flt)
    emulator.send_message(did, "at-0", qos=1)
    m = dev.next_message()
    assert (m.payload, m.qos) == (b"at-0", 0)
    assert dev.drain(0.5) == []


def test_overlapping_explicit_filters_get_one_copy(emulator, bare):
    dev = bare()
    did = dev.device_id
    assert dev.subscribe((topics.device_root(did) + "#", 1), (topics.messages_down(did), 0)) == [1, 0]
    emulator.send_message(did, "once", qos=1)
    first = dev.next_message()
    assert first.payload == b"once" and first.qos == 1
    assert dev.drain(0.7) == []


def test_broadcast_needs_an_explicit_subscription(emulator, bare):
    dev = bare()
    other = bare()
    assert dev.subscribe(("$oc/broadcast/news", 0)) == [0]
    emulator.core.publish("$oc/broadcast/news", b"to all", qos=0)
    assert dev.next_message().payload == b"to all"
    assert other.drain(0.5) == []


def test_ready_only_after_the_implicit_subscription(emulator):
    """A message sent the moment a device is accepted still reaches it (no SUBSCRIBE from the device)."""
    for _ in range(5):
        rec = emulator.create_device()
        got = threading.Event()
        online = threading.Event()
        dev = BareDevice(emulator, rec)
        dev.c.on_message = lambda c, u, m: got.set()
        sender = threading.Thread(target=lambda: (emulator.wait_online(rec["device_id"], 10), online.set(),
                                                  emulator.send_message(rec["device_id"], "first")))
        sender.start()
        dev.connect()
        sender.join(10)
        try:
            assert online.is_set() and got.wait(5)
        finally:
            dev.close()
            emulator.delete_device(rec["device_id"])
