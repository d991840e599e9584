"""Direct uplinks (issue 15): a device's own system uplinks go from the access front straight to the platform
core, not through Mosquitto. The same behaviour both ways: the representative tests run with the direct path
on (the default) and off (``Emulator(direct_uplinks=False)``); the others show which path a message took."""
from __future__ import annotations

import gzip
import json
import queue
import threading
import time

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.properties import Properties
from paho.mqtt.packettypes import PacketTypes

from iotda_emulator import Emulator
from iotda_emulator.protocol import topics
from tests.emulator.helpers import Responder, online_device, wait_until


@pytest.fixture(scope="module", params=[True, False], ids=["direct", "via-broker"])
def emu(request):
    e = Emulator(command_timeout=5.0, http=False, direct_uplinks=request.param).start()
    try:
        yield e
    finally:
        e.stop()


class BrokerSpy:
    """A client of Mosquitto itself (the service account, on the broker's private socket) that records what
    the broker routes on ``topic_filter``: what any other MQTT client could receive."""

    def __init__(self, emu: Emulator, topic_filter: str) -> None:
        self.got: "queue.Queue[mqtt.MQTTMessage]" = queue.Queue()
        subscribed = threading.Event()
        address = emu.broker_address()
        self.c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"spy-{time.monotonic_ns()}",
                             protocol=mqtt.MQTTv5, transport=address.transport)
        self.c.username_pw_set(emu.broker.service_account)
        self.c.on_message = lambda c, u, m: self.got.put(m)
        self.c.on_subscribe = lambda c, u, mid, rcs, p: subscribed.set()
        self.c.on_connect = lambda c, u, f, rc, p: c.subscribe(topic_filter, qos=1)
        host, port = (address.path, 1883) if address.path else (address.host, address.port)
        self.c.connect(host, port)
        self.c.loop_start()
        assert subscribed.wait(10), "the spy could not subscribe on the broker"

    def topics(self, within: float) -> list:
        out, deadline = [], time.monotonic() + within
        while True:
            try:
                out.append(self.got.get(timeout=max(0.0, deadline - time.monotonic())).topic)
            except queue.Empty:
                return out

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()


def _report(value: int, service: str = "s") -> dict:
    return {"services": [{"service_id": service, "properties": {"v": value}}]}


# ---- the same behaviour both ways ----------------------------------------------------------------------

def test_reports_reach_shadow_and_trace_in_order(emu):
    dev = online_device(emu)
    try:
        did = dev.device_id
        since = emu.core.last_trace_id
        # QoS 1 and 0 interleaved, not waited for; 18 QoS 1 ones stay within paho's inflight window (20), so
        # paho sends all in order
        for i in range(36):
            dev.c.publish(topics.properties_report(did), json.dumps(_report(i)), qos=i % 2)
        dev.publish(topics.messages_up(did), b"last", qos=1)   # waits for its PUBACK
        emu.wait_for_trace(lambda e: e.payload == b"last", 10, since_id=since)
        ups = [e for e in emu.trace(device_id=did, direction="up", since_id=since)]
        assert [e.kind for e in ups] == [topics.PROPERTIES_REPORT] * 36 + [topics.MESSAGES_UP]
        assert [json.loads(e.payload)["services"][0]["properties"]["v"] for e in ups[:36]] == list(range(36))
        assert wait_until(lambda: emu.shadow(did)[0]["reported"]["properties"] == {"v": 35}, 5)
    finally:
        dev.close()


def test_gzip_report_and_shadow_get_answered(emu):
    dev = online_device(emu)
    try:
        did = dev.device_id
        dev.publish(topics.properties_report(did) + "?encoding=gzip", gzip.compress(json.dumps(_report(7)).encode()))
        assert wait_until(lambda: emu.shadow(did) and emu.shadow(did)[0]["reported"]["properties"] == {"v": 7}, 5)
        dev.publish(topics.shadow_get(did, "r1"), {"service_id": "s"})
        msg = dev.next_message(5)
        assert msg.topic == topics.shadow_get_response(did, "r1")
        assert json.loads(msg.payload)["shadow"][0]["reported"]["properties"] == {"v": 7}
    finally:
        dev.close()


def test_command_round_trip_and_events(emu):
    dev = online_device(emu)
    responder = Responder(dev)
    try:
        did = dev.device_id
        answer = emu.send_command(did, "svc", "cmd", {"x": 1}, timeout=5)
        assert answer["result_code"] == 0 and answer["paras"] == {"echo": {"x": 1}}
        dev.publish(topics.events_up(did), {"services": [{"service_id": "$nobody", "event_type": "t",
                                                          "paras": {}}]})
        emu.wait_for_trace(lambda e: e.device_id == did and e.kind == topics.EVENTS_UP, 5)
    finally:
        responder.stop()
        dev.close()


def test_gateway_report_updates_a_child_shadow(emu):
    gw = online_device(emu)
    try:
        child = emu.create_device(gateway_id=gw.device_id)["device_id"]
        gw.publish(topics.gateway_properties_report(gw.device_id),
                   {"devices": [{"device_id": child, "services": _report(5)["services"]}]})
        assert wait_until(lambda: emu.shadow(child) and emu.shadow(child)[0]["reported"]["properties"] == {"v": 5}, 5)
    finally:
        gw.close()


def test_mqtt5_report_with_user_properties(emu):
    dev = online_device(emu, protocol=mqtt.MQTTv5)
    try:
        did = dev.device_id
        props = Properties(PacketTypes.PUBLISH)
        props.UserProperty = ("k", "v")
        dev.c.publish(topics.properties_report(did), json.dumps(_report(1)), qos=1, properties=props) \
            .wait_for_publish(5)
        dev.publish(topics.properties_report(did), _report(2))   # no properties
        assert wait_until(lambda: emu.shadow(did) and emu.shadow(did)[0]["reported"]["properties"] == {"v": 2}, 5)
        assert [json.loads(e.payload)["services"][0]["properties"]["v"]
                for e in emu.trace(device_id=did, direction="up")] == [1, 2]
    finally:
        dev.close()


def test_own_uplinks_are_not_echoed_to_a_sys_wildcard(emu):
    dev = online_device(emu, subscribe=False)
    try:
        did = dev.device_id
        dev.subscribe([topics.device_root(did) + "sys/#"])
        dev.publish(topics.messages_up(did), b"hello")
        emu.wait_for_trace(lambda e: e.device_id == did and e.payload == b"hello", 5)
        assert dev.no_message(0.5)
    finally:
        dev.close()


def test_custom_topic_reaches_subscribers_and_keeps_order(emu):
    emu.add_topic_policy("direct-test/%u/#")
    dev = online_device(emu)
    try:
        did = dev.device_id
        spy = BrokerSpy(emu, "direct-test/#")
        try:
            dev.publish(topics.properties_report(did), _report(1))
            dev.c.publish(f"direct-test/{did}/a", b"custom", qos=1)
            dev.c.publish(topics.properties_report(did), json.dumps(_report(2)), qos=1)
            dev.publish(topics.messages_up(did), b"end")
            assert spy.topics(1.0) == [f"direct-test/{did}/a"]   # other clients still get custom topics
        finally:
            spy.close()
        emu.wait_for_trace(lambda e: e.device_id == did and e.payload == b"end", 5)
        assert [e.kind for e in emu.trace(device_id=did, direction="up")] == [
            topics.PROPERTIES_REPORT, topics.OTHER, topics.PROPERTIES_REPORT, topics.MESSAGES_UP]
        assert emu.shadow(did)[0]["reported"]["properties"] == {"v": 2}
    finally:
        dev.close()


# ---- which path a message took -------------------------------------------------------------------------

def test_which_path_system_uplinks_take(emu):
    spy = BrokerSpy(emu, topics.PLATFORM_UPLINK_FILTER)
    dev = online_device(emu)
    try:
        did = dev.device_id
        direct, via_broker = emu.core.uplinks_direct, emu.core.uplinks_via_broker
        for i in range(5):
            dev.publish(topics.properties_report(did), _report(i))
        emu.wait_for_trace(lambda e: e.device_id == did and b'"v":4' in e.payload, 5)
        seen = [t for t in spy.topics(1.0) if t.startswith(topics.device_root(did))]
        if emu.direct_uplinks:
            assert seen == [] and emu.core.uplinks_direct - direct == 5 and emu.core.uplinks_via_broker == via_broker
        else:
            assert len(seen) == 5 and emu.core.uplinks_direct == direct == 0
    finally:
        spy.close()
        dev.close()


def test_fault_hooks_send_the_link_through_the_broker(emu):
    if not emu.direct_uplinks:
        pytest.skip("only the direct path changes route under fault hooks")
    dev = online_device(emu)
    try:
        did = dev.device_id
        dev.publish(topics.properties_report(did), _report(1))
        direct = emu.core.uplinks_direct
        emu.delay(did, 0.05)   # packets held in the front: the direct path would overtake them
        dev.publish(topics.properties_report(did), _report(2))
        emu.delay(did, 0)
        dev.publish(topics.properties_report(did), _report(3))
        emu.wait_for_trace(lambda e: e.device_id == did and b'"v":3' in e.payload, 5)
        assert emu.core.uplinks_direct == direct   # the link stays on the broker from then on
        assert [json.loads(e.payload)["services"][0]["properties"]["v"]
                for e in emu.trace(device_id=did, direction="up")] == [1, 2, 3]
    finally:
        dev.close()


def test_front_keeps_the_broker_link_alive_and_hides_its_pings(emu):
    if not emu.direct_uplinks:
        pytest.skip("only the direct path leaves the broker link silent")
    dev = online_device(emu)
    try:
        did = dev.device_id
        front = emu.front

        def _shorten():
            link = front._links[did]
            link.ping_every = 0.05
            return link, link.pinged_at
        link, pinged_at = front._call(_shorten)
        for i in range(4):
            dev.publish(topics.properties_report(did), _report(i))
            time.sleep(0.08)
        assert link.pinged_at > pinged_at   # the front pinged the broker for the silent link ...
        assert wait_until(lambda: link.own_pings == 0, 5)   # ... and swallowed every PINGRESP
        assert dev.no_message(0.3) and emu.is_online(did)
    finally:
        dev.close()
