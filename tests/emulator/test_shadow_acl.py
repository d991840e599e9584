"""Shadow semantics (doc/protocol.md §6.3), gateway children, and the broker's per-device ACL."""
from __future__ import annotations

import json
import queue

from iot_device_sdk_python.protocol import topics
from tests.emulator.helpers import online_device, wait_until


def _next_of_kind(dev, kind, timeout=5):
    while True:
        m = dev.next_message(timeout)
        if topics.classify(m.topic).kind == kind:
            return m


def test_report_updates_reported_and_version(emulator, device_record):
    did = device_record["device_id"]
    dev = online_device(emulator, device_record)
    try:
        dev.publish(topics.properties_report(did), {"services": [
            {"service_id": "env", "properties": {"t": 1, "h": 2}, "event_time": "20250101T000000Z"}]})
        sh = wait_until(lambda: emulator.shadow(did))
        assert sh[0]["reported"] == {"properties": {"t": 1, "h": 2}, "event_time": "20250101T000000Z"}
        v1 = sh[0]["version"]
        dev.publish(topics.properties_report(did), {"services": [{"service_id": "env", "properties": {"t": 5}}]})
        sh = wait_until(lambda: [s for s in emulator.shadow(did) if s["version"] > v1])
        assert sh[0]["reported"]["properties"] == {"t": 5, "h": 2}
        assert sh[0]["version"] > v1
    finally:
        dev.close()


def test_desired_pushed_on_connect_and_after_report_until_equal(emulator, device_record):
    did = device_record["device_id"]
    version = emulator.set_desired(did, "env", {"target": 22})
    assert version >= 1
    dev = online_device(emulator, device_record)
    try:
        m = _next_of_kind(dev, topics.PROPERTIES_SET)
        assert json.loads(m.payload) == {"services": [{"service_id": "env", "properties": {"target": 22}}]}
        rid = topics.classify(m.topic).request_id
        dev.publish(topics.properties_set_response(did, rid), {"result_code": 0})
        # a report that still differs triggers another delivery
        dev.publish(topics.properties_report(did), {"services": [{"service_id": "env", "properties": {"target": 20}}]})
        m = _next_of_kind(dev, topics.PROPERTIES_SET)
        dev.publish(topics.properties_set_response(did, topics.classify(m.topic).request_id), {"result_code": 0})
        # once reported equals desired, nothing more is pushed
        dev.publish(topics.properties_report(did), {"services": [{"service_id": "env", "properties": {"target": 22}}]})
        # the PUBACK comes from the broker: wait until the core applied the report, then watch for a push
        sh = wait_until(lambda: [s for s in emulator.shadow(did)
                                 if s["reported"].get("properties", {}).get("target") == 22])[0]
        assert dev.no_message(0.7)
        assert sh["desired"]["properties"] == {"target": 22} and sh["reported"]["properties"] == {"target": 22}
        # set_desired while online pushes at once
        emulator.set_desired(did, "env", {"target": 30})
        m = _next_of_kind(dev, topics.PROPERTIES_SET)
        assert json.loads(m.payload)["services"][0]["properties"] == {"target": 30}
    finally:
        dev.close()


def test_report_made_while_a_desired_push_is_unanswered_gets_its_own_push(emulator, device_record):
    """A differing report that arrives while the previous push is still waiting for its answer is not
    dropped: once that answer is in, the platform compares again and pushes once more."""
    did = device_record["device_id"]
    emulator.set_desired(did, "env", {"target": 22})
    dev = online_device(emulator, device_record)
    try:
        first = _next_of_kind(dev, topics.PROPERTIES_SET)           # in flight: not answered yet
        dev.publish(topics.properties_report(did), {"services": [{"service_id": "env", "properties": {"target": 20}}]})
        wait_until(lambda: [s for s in emulator.shadow(did)
                            if s["reported"].get("properties", {}).get("target") == 20])
        dev.publish(topics.properties_set_response(did, topics.classify(first.topic).request_id), {"result_code": 0})
        second = _next_of_kind(dev, topics.PROPERTIES_SET, timeout=10)
        assert json.loads(second.payload)["services"][0]["properties"] == {"target": 22}
        assert topics.classify(second.topic).request_id != topics.classify(first.topic).request_id
        dev.publish(topics.properties_set_response(did, topics.classify(second.topic).request_id), {"result_code": 0})
        assert dev.no_message(0.7)   # nothing asked again since: one push, not a loop
    finally:
        dev.close()


def test_shadow_get_response(emulator, device_record):
    did = device_record["device_id"]
    emulator.set_desired(did, "env", {"target": 1})
    emulator.set_desired(did, "other", {"x": "y"})
    dev = online_device(emulator, device_record)
    try:
        dev.publish(topics.shadow_get(did, "r-1"), {"service_id": "other"})
        m = _next_of_kind(dev, topics.SHADOW_GET_RESPONSE)
        assert m.topic == topics.shadow_get_response(did, "r-1")
        body = json.loads(m.payload)
        assert body["object_device_id"] == did
        assert [s["service_id"] for s in body["shadow"]] == ["other"]
        assert body["shadow"][0]["desired"]["properties"] == {"x": "y"}
        dev.publish(topics.shadow_get(did, "r-2"), b"")   # empty payload: every service
        body = json.loads(_next_of_kind(dev, topics.SHADOW_GET_RESPONSE).payload)
        assert sorted(s["service_id"] for s in body["shadow"]) == ["env", "other"]
    finally:
        dev.close()


def test_gateway_child_addressing_and_batch_report(emulator):
    gw = emulator.create_device()
    child = emulator.create_device(gateway_id=gw["device_id"])
    stranger = emulator.create_device()
    dev = online_device(emulator, gw)
    try:
        emulator.send_message(child["device_id"], "to child")
        m = _next_of_kind(dev, topics.MESSAGES_DOWN)
        assert json.loads(m.payload)["object_device_id"] == child["device_id"]
        eid = emulator.send_event(child["device_id"], "$x", "y", {})
        body = json.loads(_next_of_kind(dev, topics.EVENTS_DOWN).payload)
        assert body["object_device_id"] == child["device_id"] and body["services"][0]["event_id"] == eid
        dev.publish(topics.gateway_properties_report(gw["device_id"]), {"devices": [
            {"device_id": child["device_id"], "services": [{"service_id": "s", "properties": {"v": 9}}]},
            {"device_id": stranger["device_id"], "services": [{"service_id": "s", "properties": {"v": 1}}]}]})
        dev.publish(topics.shadow_get(gw["device_id"], "rq"), {"object_device_id": child["device_id"]})
        body = json.loads(_next_of_kind(dev, topics.SHADOW_GET_RESPONSE).payload)
        assert body["object_device_id"] == child["device_id"]
        assert body["shadow"][0]["reported"]["properties"] == {"v": 9}
        assert emulator.shadow(stranger["device_id"]) == []   # not this gateway's child
    finally:
        dev.close()


def test_acl_isolates_devices(emulator):
    a = online_device(emulator)
    b = online_device(emulator)
    try:
        # A's subscription to B's topics is refused (SUBACK 0x80): IoTDA confines a device to its own topics
        _, mid = a.c.subscribe(topics.device_root(b.device_id) + "#", 1)
        granted = a.subscribed.get(timeout=5)
        assert granted == mid
        emulator.send_message(b.device_id, "for b only")
        assert b.next_message().payload == b"for b only"
        try:
            m = a.next_message(0.5)
            assert m.payload != b"for b only", "device A received device B's message"
        except queue.Empty:
            pass
        # publishing as B is refused: A's link is closed (never acknowledged and silently dropped)
        a.c.publish(topics.messages_up(b.device_id), b"spoofed", qos=1)
        assert a.disconnected.wait(5)
        emulator.wait_for_trace(lambda e: e.kind == "violation" and e.device_id == a.device_id
                                and e.topic == topics.messages_up(b.device_id))
        assert not [e for e in emulator.trace(b.device_id) if e.payload == b"spoofed"]
    finally:
        a.close()
        b.close()
