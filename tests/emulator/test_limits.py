"""IoTDA publish limits at the access front (doc/protocol.md §1.5): QoS 2, RETAIN, 1 MB, upstream rate."""
from __future__ import annotations

import json
import queue
import socket

import paho.mqtt.client as mqtt
import pytest

from iot_device_sdk_python.protocol import codec, topics
from iotda_emulator import Emulator
from iotda_emulator import mqtt_packets as mp
from iotda_emulator.access_front import MAX_PUBLISH_PAYLOAD, hmac_password
from iotda_emulator.core import VIOLATION
from tests.emulator.helpers import online_device, wait_until

MB = 1024 * 1024


@pytest.fixture(scope="module")
def lenient():
    """An emulator with strict=False and a low upstream rate limit (no HTTP server: not needed)."""
    emu = Emulator(command_timeout=5.0, http=False, strict=False, rate_limit=5).start()
    try:
        yield emu
    finally:
        emu.stop()


def _violation(emu, device_id, timeout=10):
    entry = emu.wait_for_trace(lambda e: e.kind == VIOLATION and e.device_id == device_id, timeout)
    return json.loads(entry.payload)


def _uplinks(emu, device_id):
    return emu.trace(device_id=device_id, direction="up", kind=topics.MESSAGES_UP)


@pytest.mark.parametrize("qos, retain, reason", [(2, False, "qos_not_supported"), (1, True, "retain_not_supported"),
                                                  (0, True, "retain_not_supported")])
def test_qos2_and_retain_close_the_connection(emulator, qos, retain, reason):
    dev = online_device(emulator)
    did = dev.device_id
    try:
        dev.c.publish(topics.messages_up(did), b"forbidden", qos=qos, retain=retain)
        assert dev.disconnected.wait(10)
        assert emulator.wait_offline(did, 10)
        details = _violation(emulator, did)
        assert details["reason"] == reason and details["qos"] == qos and details["retain"] is retain
        assert _uplinks(emulator, did) == []  # never forwarded to the platform
    finally:
        dev.close()
        emulator.delete_device(did)


def test_mqtt5_device_is_told_why(emulator):
    dev = online_device(emulator, protocol=mqtt.MQTTv5)
    reasons: "queue.Queue" = queue.Queue()
    dev.c.on_disconnect = lambda c, u, f, rc, p: reasons.put(rc)
    try:
        dev.c.publish(topics.messages_up(dev.device_id), b"x", qos=2)
        rc = reasons.get(timeout=10)
        assert rc.value == mp.RC_QOS_NOT_SUPPORTED
    finally:
        dev.close()
        emulator.delete_device(dev.device_id)


def test_payload_of_1mb_passes_and_one_byte_more_closes(emulator):
    dev = online_device(emulator)
    did = dev.device_id
    try:
        dev.publish(topics.messages_up(did), b"a" * MAX_PUBLISH_PAYLOAD, qos=1)
        wait_until(lambda: _uplinks(emulator, did))
        assert len(_uplinks(emulator, did)[0].payload) == MAX_PUBLISH_PAYLOAD
        assert not dev.disconnected.is_set()
        dev.c.publish(topics.messages_up(did), b"b" * (MAX_PUBLISH_PAYLOAD + 1), qos=1)
        assert dev.disconnected.wait(10)
        details = _violation(emulator, did)
        assert details["reason"] == "payload_too_large" and details["size"] == MAX_PUBLISH_PAYLOAD + 1
        assert len(_uplinks(emulator, did)) == 1
    finally:
        dev.close()
        emulator.delete_device(did)


def test_huge_publish_is_refused_from_its_header(emulator, device_record):
    """A PUBLISH announcing 3 MB is refused before its body is read (raw socket)."""
    did = device_record["device_id"]
    ts = codec.utc_hour_stamp()
    info = mp.ConnectInfo("MQTT", 4, 0xC2, 60, f"{did}_0_0_{ts}", did,
                          hmac_password(device_record["secret"], ts).encode())
    with socket.create_connection((emulator.host, emulator.mqtt_port), timeout=10) as s:
        s.sendall(mp.encode_connect(info))
        assert s.recv(4) == bytes([0x20, 2, 0, 0])
        topic = topics.messages_up(did).encode()
        length = 2 + len(topic) + 3 * MB
        s.sendall(bytes([0x30]) + mp.encode_varint(length) + len(topic).to_bytes(2, "big") + topic + b"z" * 1000)
        details = _violation(emulator, did)
        assert details["reason"] == "payload_too_large" and details["size"] == length
        assert s.recv(10) == b""  # closed by the front


def test_non_strict_forwards_qos2_and_retain(lenient):
    dev = online_device(lenient)
    did = dev.device_id
    try:
        dev.publish(topics.messages_up(did), b"q2", qos=2)
        dev.c.publish(topics.messages_up(did), b"ret", qos=1, retain=True).wait_for_publish(10)
        wait_until(lambda: len(_uplinks(lenient, did)) == 2)
        assert [e.payload for e in _uplinks(lenient, did)] == [b"q2", b"ret"]
        assert not dev.disconnected.is_set()
        assert lenient.trace(device_id=did, kind=VIOLATION) == []
    finally:
        dev.close()
        lenient.delete_device(did)


def test_rate_limit_drops_and_counts_excess_publishes(lenient):
    dev = online_device(lenient)
    did = dev.device_id
    try:
        infos = [dev.c.publish(topics.messages_up(did), str(i).encode(), qos=1) for i in range(30)]
        for info in infos:  # every publish is acknowledged, dropped or not
            info.wait_for_publish(10)
            assert info.is_published()
        wait_until(lambda: len(_uplinks(lenient, did)) + lenient.throttled(did) == 30)
        assert lenient.throttled(did) > 0
        assert 0 < len(_uplinks(lenient, did)) < 30
        assert lenient.throttled() >= lenient.throttled(did)
        assert not dev.disconnected.is_set()
    finally:
        dev.close()
        lenient.delete_device(did)
