"""MQTT CONNECT rules and per-connection limits (doc/protocol.md §1.2, §1.4, §1.5).

CONNACK codes are read from the raw packet (3.1.1 return codes, as the docs give them).
"""
from __future__ import annotations

import paho.mqtt.client as mqtt
import pytest

from tests.conformance._device import Device, hour_stamp, new_id, password, raw_connack


def test_password_helper_matches_the_documented_test_vector():
    # doc/protocol.md §1.2: secret 12345678, timestamp 2025041401
    assert password("12345678", "2025041401") == "c75150e6cb841417396819e4d2ee4358a416344a03a083e3a8567074ddec820a"


@pytest.fixture
def registered(api):
    return api.add_device()


def _connack(emu, rec, *, client_id=None, username=None, pwd=None, keepalive=120, stamp=None, sign_type=0):
    stamp = stamp or hour_stamp()
    device_id = rec["device_id"]
    return raw_connack(emu.host, emu.mqtt_port, client_id or f"{device_id}_0_{sign_type}_{stamp}",
                       device_id if username is None else username,
                       password(rec["secret"], stamp) if pwd is None else pwd, keepalive=keepalive)


def test_hmac_sign_type_0_and_1_are_accepted(emu, registered):
    assert _connack(emu, registered, sign_type=0) == 0
    assert _connack(emu, registered, sign_type=1) == 0


def test_sign_type_0_uses_whatever_hour_the_client_id_carries(emu, registered):
    # the C SDK may present timestamp + 1 h; sign_type 0 does not compare it with platform time
    stamp = hour_stamp(offset_hours=-48)
    assert _connack(emu, registered, stamp=stamp, sign_type=0) == 0


def test_sign_type_1_refuses_a_stale_timestamp(emu, registered):
    stamp = hour_stamp(offset_hours=-48)
    assert _connack(emu, registered, stamp=stamp, sign_type=1) == 4


@pytest.mark.parametrize("keepalive,code", [(29, 2), (30, 0), (1200, 0), (1201, 2)])
def test_keepalive_outside_30_to_1200_is_identifier_rejected(emu, registered, keepalive, code):
    assert _connack(emu, registered, keepalive=keepalive) == code


@pytest.mark.parametrize("shape", ["{id}", "{id}_0_0", "{id}_0_0_20250414", "{id}_5_0_{stamp}",
                                   "{id}_0_7_{stamp}", "{id}_0_0_notanhour"])
def test_malformed_client_id_is_identifier_rejected(emu, registered, shape):
    client_id = shape.format(id=registered["device_id"], stamp=hour_stamp())
    assert _connack(emu, registered, client_id=client_id) == 2


def test_wrong_secret_is_bad_username_or_password(emu, registered):
    stamp = hour_stamp()
    assert _connack(emu, registered, pwd=password("not-the-secret", stamp), stamp=stamp) == 4


def test_unknown_device_is_bad_username_or_password(emu):
    rec = {"device_id": new_id("ghost_"), "secret": "whatever1"}
    assert _connack(emu, rec) == 4


def test_username_must_be_the_device_id(emu, registered):
    assert _connack(emu, registered, username="someone_else") == 4


def test_frozen_device_is_not_authorised(emu, registered):
    # the docs do not say which code a frozen device gets; the emulator answers 5 (not authorised)
    emu.freeze_device(registered["device_id"])
    try:
        assert _connack(emu, registered) == 5
    finally:
        emu.freeze_device(registered["device_id"], False)


@pytest.mark.parametrize("protocol", [mqtt.MQTTv31, mqtt.MQTTv311, mqtt.MQTTv5])
def test_mqtt_3_1_3_1_1_and_5_are_accepted_and_shown_online(emu, api, registered, protocol):
    dev = Device(emu.host, emu.mqtt_port, registered["device_id"], registered["secret"], protocol=protocol)
    try:
        assert dev.connect() == 0
        assert emu.wait_online(dev.id, 5)
        assert api.show_device(dev.id)["status"] == "ONLINE"
    finally:
        dev.close()
    assert emu.wait_offline(dev.id, 5)
    assert api.show_device(dev.id)["status"] == "OFFLINE"


def test_mqtts_with_the_emulator_ca(emu, registered):
    dev = Device("localhost", emu.mqtts_port, registered["device_id"], registered["secret"], tls_ca=emu.ca_file)
    try:
        assert dev.connect() == 0
    finally:
        dev.close()


def test_a_second_connection_of_the_same_device_drops_the_first(emu, registered):
    first = Device(emu.host, emu.mqtt_port, registered["device_id"], registered["secret"])
    second = Device(emu.host, emu.mqtt_port, registered["device_id"], registered["secret"])
    try:
        assert first.connect() == 0
        assert second.connect() == 0
        assert first.wait_disconnected(5)
        assert not second.disconnected.is_set()
    finally:
        first.close()
        second.close()


# ---- publish limits: the platform closes the link ------------------------------------------------

def _violation(emu, device_id, since):
    return emu.wait_for_trace(lambda e: e.device_id == device_id and e.kind == "violation", 5, since)


def _last_id(emu):
    entries = emu.trace(limit=1, newest=True)
    return entries[-1].id if entries else 0


@pytest.mark.parametrize("qos,retain,size", [(2, False, 10), (1, True, 10), (0, False, 1024 * 1024 + 1)],
                         ids=["qos2", "retain", "over-1MB"])
def test_unsupported_publish_closes_the_connection(emu, api, make_device, qos, retain, size):
    dev = make_device()
    since = _last_id(emu)
    dev.client.publish(f"$oc/devices/{dev.id}/sys/messages/up", b"x" * size, qos=qos, retain=retain)
    assert dev.wait_disconnected(5)
    assert _violation(emu, dev.id, since) is not None
    assert emu.wait_offline(dev.id, 5)
    assert api.show_device(dev.id)["status"] == "OFFLINE"


def test_a_device_cannot_subscribe_to_another_devices_topics(emu, make_device):
    me, other = make_device(), make_device()
    codes = me.subscribe(f"$oc/devices/{other.id}/sys/messages/down", qos=1)
    assert codes[0] >= 0x80


def test_publishing_on_another_devices_topic_is_not_silently_dropped(emu, make_device):
    me, other = make_device(), make_device()
    since = _last_id(emu)
    me.client.publish(f"$oc/devices/{other.id}/sys/messages/up", b"spoof", qos=1)
    # item 6 of issue 12: the device learns it (MQTT 3.1.1: the connection is closed) and the trace says why
    assert me.wait_disconnected(5)
    assert _violation(emu, me.id, since) is not None
    assert not other.matching(lambda m: m.payload == b"spoof")


def test_malformed_json_is_dropped_without_closing_the_link(api, make_device):
    # doc/protocol.md §6.4: no error path back to the device; at QoS 1 the PUBACK is still sent
    dev = make_device()
    dev.publish(f"$oc/devices/{dev.id}/sys/properties/report", b"{not json", qos=1)
    dev.publish(f"$oc/devices/{dev.id}/sys/events/up", b"[]", qos=1)
    assert not dev.wait_disconnected(0.5)
    assert api.show_device(dev.id)["status"] == "ONLINE"


def test_publishing_on_a_downlink_topic_closes_the_connection(emu, make_device):
    dev = make_device()
    since = _last_id(emu)
    dev.client.publish(f"$oc/devices/{dev.id}/sys/messages/down", b"not mine to send", qos=1)
    assert dev.wait_disconnected(5)
    assert _violation(emu, dev.id, since) is not None
