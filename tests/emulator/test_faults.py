"""Fault hooks of the access front and broker restarts, plus malformed uplinks that must not hurt the core."""
from __future__ import annotations

import json
import threading
import time

import pytest

from iot_device_sdk_python.protocol import topics
from tests.emulator.helpers import RawDevice, online_device


def test_pause_holds_traffic_without_closing_then_resume_delivers(emulator):
    dev = online_device(emulator)
    try:
        assert emulator.pause(dev.device_id)
        emulator.send_message(dev.device_id, "held")
        dev.c.publish(topics.messages_up(dev.device_id), b"held-up", qos=0)
        assert dev.no_message(0.6)
        assert not dev.disconnected.is_set() and emulator.is_online(dev.device_id)
        assert not [e for e in emulator.trace(dev.device_id) if e.payload == b"held-up"]
        assert emulator.resume(dev.device_id)
        assert dev.next_message(5).payload == b"held"
        emulator.wait_for_trace(lambda e: e.payload == b"held-up", timeout=5)
    finally:
        dev.close()


def test_cut_closes_both_sides(emulator):
    dev = online_device(emulator, subscribe=False)
    assert emulator.cut(dev.device_id)
    assert dev.disconnected.wait(5)
    assert emulator.wait_offline(dev.device_id, 5)
    dev.close()
    assert not emulator.cut(dev.device_id)


def test_delay_adds_latency_to_each_packet(emulator):
    dev = online_device(emulator)
    try:
        emulator.delay(dev.device_id, 0.4)
        t0 = time.monotonic()
        emulator.send_message(dev.device_id, "slow")
        assert dev.next_message(5).payload == b"slow"
        assert time.monotonic() - t0 >= 0.35
        emulator.delay(dev.device_id, 0)
        emulator.send_message(dev.device_id, "fast")
        assert dev.next_message(5).payload == b"fast"
    finally:
        emulator.delay(dev.device_id, 0)
        dev.close()


MALFORMED = [b"", b"{", b"\xff\xfe\x00binary", b"[1,2]", b"null", b'"str"', b'{"services": 5}',
             b'{"services": [1, {"service_id": 5}, {"service_id": "s", "properties": []}]}',
             b'{"devices": {"a": 1}}', b'{"devices": [{"device_id": 1}, 7]}',
             b'{"services": [{"service_id": "s", "properties": {"a.b": 1}}]}',
             b'{"object_device_id": 3, "service_id": []}', b'{"services": [{"service_id": "$ota", "paras": null}]}']


def test_malformed_uplinks_are_traced_and_core_keeps_working(emulator):
    dev = online_device(emulator)
    did = dev.device_id
    uplinks = [topics.messages_up(did), topics.properties_report(did), topics.gateway_properties_report(did),
               topics.events_up(did), topics.shadow_get(did, "bad"), topics.command_response(did, "nope"),
               topics.properties_set_response(did, "nope"), topics.properties_get_response(did, "nope"),
               topics.user_topic(did, "x"), topics.bootstrap_up(did)]
    # (a topic IoTDA does not know, such as ".../sys/unknown", closes the link: tests/emulator/test_topic_rules.py)
    try:
        for topic in uplinks:
            for payload in MALFORMED:
                dev.c.publish(topic, payload, qos=0)
        marker = b"after-the-garbage"
        dev.publish(topics.messages_up(did), marker)
        emulator.wait_for_trace(lambda e: e.payload == marker, timeout=10)
        traced = {(e.topic, e.payload) for e in emulator.trace(did, direction="up")}
        assert all((t, p) in traced for t in uplinks for p in MALFORMED)
        # the shadow get with garbage still got answers (an empty/own shadow), and the core still answers
        dev.publish(topics.shadow_get(did, "good"), {})
        while True:
            m = dev.next_message(5)
            if m.topic == topics.shadow_get_response(did, "good"):
                assert json.loads(m.payload)["object_device_id"] == did
                break
        answered = threading.Event()

        def answer():
            while True:
                m = dev.next_message(5)
                info = topics.classify(m.topic)
                if info.kind == topics.COMMAND:
                    dev.publish(topics.command_response(did, info.request_id), b"not json")
                    answered.set()
                    return
        t = threading.Thread(target=answer, daemon=True)
        t.start()
        from iotda_emulator import EmulatorError
        with pytest.raises(EmulatorError, match="malformed"):
            emulator.send_command(did, "s", "c", {})
        t.join(5)
        assert answered.is_set()
        assert emulator.core._dispatcher.is_alive()
    finally:
        dev.close()


def test_broker_kill_and_restart(fresh_emulator):
    emu = fresh_emulator
    dev = online_device(emu, subscribe=False)
    address = emu.broker.address
    emu.kill_broker()
    assert dev.disconnected.wait(5)
    assert emu.wait_offline(dev.device_id, 5)
    # while the broker is down the front answers CONNACK 3 (server unavailable)
    rec = emu.get_device(dev.device_id)
    down = RawDevice(emu, rec["device_id"], rec["secret"])
    assert down.connect() == "Server unavailable"
    emu.restart_broker()
    assert emu.broker.address == address and emu.core.connected
    dev2 = online_device(emu, rec)
    try:
        emu.send_message(rec["device_id"], "back")
        assert dev2.next_message(5).payload == b"back"
    finally:
        dev2.close()
        dev.close()
