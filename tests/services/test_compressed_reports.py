"""Compressed reports (``?encoding=gzip``, doc/protocol.md §2.11): the SDK gzips on request, the emulator
inflates, bounded, before the shadow or any listener sees the payload."""
from __future__ import annotations

import gzip
import json
import zlib

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from iot_device_sdk_python.client.request.device_message import DeviceMessage
from iot_device_sdk_python.client.request.service_property import ServiceProperty
from iotda_emulator.access_front import hmac_password
from iotda_emulator.protocol import codec as emu_codec
from iotda_emulator.protocol.compression import MAX_INFLATED, CompressionError, gunzip_bounded
from tests.waiting import wait_until


def _reported(emulator, device_id, service_id="Sensor"):
    for entry in emulator.core.shadow(device_id):
        if entry["service_id"] == service_id:
            return (entry.get("reported") or {}).get("properties")
    return None


def _uplinks(emulator, device_id, kind):
    return [e for e in emulator.core.trace(device_id=device_id, direction="up", kind=kind)]


# ---- the bounded inflater ------------------------------------------------------------------------------

def test_gunzip_bounded_inflates_and_refuses_bad_streams():
    body = json.dumps({"services": [{"service_id": "S", "properties": {"v": 1}}]}).encode()
    assert gunzip_bounded(gzip.compress(body)) == body
    bomb = gzip.compress(b"\0" * (MAX_INFLATED + 1))          # about 1 KB that inflates past the limit
    assert len(bomb) < 4096
    with pytest.raises(CompressionError, match="beyond"):
        gunzip_bounded(bomb)
    assert gunzip_bounded(gzip.compress(b"\0" * MAX_INFLATED)) == b"\0" * MAX_INFLATED   # exactly the limit
    with pytest.raises(CompressionError, match="truncated"):
        gunzip_bounded(gzip.compress(body)[:-9])
    with pytest.raises(CompressionError):
        gunzip_bounded(body)                                    # not gzip at all
    with pytest.raises(CompressionError, match="after the end"):
        gunzip_bounded(gzip.compress(body) + b"junk")
    with pytest.raises(CompressionError):
        gunzip_bounded(zlib.compress(body))                     # zlib, not gzip


# ---- SDK -> emulator ------------------------------------------------------------------------------------

def test_compressed_property_report_reaches_the_shadow(emulator, make_device):
    device = make_device(emulator)
    device_id = device.get_device_id()
    handle = device.get_client().report_properties([ServiceProperty("Sensor", {"temperature": 31.5})], compress=True)
    handle.result(10)
    wait_until(lambda: _reported(emulator, device_id) == {"temperature": 31.5}, what="shadow updated")
    (entry,) = _uplinks(emulator, device_id, "properties_report")
    assert entry.topic == f"$oc/devices/{device_id}/sys/properties/report?encoding=gzip"
    assert entry.payload[:2] == b"\x1f\x8b"                     # gzip on the wire
    assert json.loads(gzip.decompress(entry.payload)) == {
        "services": [{"service_id": "Sensor", "properties": {"temperature": 31.5}}]}


def test_compress_reports_setting_gzips_messages_and_properties(emulator, make_device):
    device = make_device(emulator, compress_reports=True)
    device_id = device.get_device_id()
    seen = []
    emulator.core.add_uplink_listener(lambda d, info, payload: seen.append((d, info.kind, payload)))
    msg = DeviceMessage()
    msg.content = {"hello": "world"}
    device.get_client().report_device_message(msg).result(10)
    device.get_client().report_properties([ServiceProperty("Sensor", {"humidity": 12})]).result(10)
    wait_until(lambda: _reported(emulator, device_id) == {"humidity": 12}, what="shadow updated")
    (up,) = _uplinks(emulator, device_id, "messages_up")
    assert up.topic.endswith("/sys/messages/up?encoding=gzip")
    # the platform's listeners get the inflated payload
    wait_until(lambda: any(d == device_id and k == "messages_up" for d, k, _ in seen), what="listener called")
    payload = next(p for d, k, p in seen if d == device_id and k == "messages_up")
    assert json.loads(payload) == {"content": {"hello": "world"}}
    # compress=False overrides the setting for one call
    device.get_client().report_properties([ServiceProperty("Sensor", {"humidity": 13})], compress=False).result(10)
    wait_until(lambda: _reported(emulator, device_id) == {"humidity": 13}, what="shadow updated")
    assert _uplinks(emulator, device_id, "properties_report")[-1].topic.endswith("/sys/properties/report")


# ---- hostile payloads ------------------------------------------------------------------------------------

@pytest.fixture
def raw_client(emulator):
    """A plain paho client connected as a new device: (client, device_id)."""
    record = emulator.create_device()
    device_id = record["device_id"]
    stamp = emu_codec.utc_hour_stamp()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"{device_id}_0_0_{stamp}")
    client.username_pw_set(device_id, hmac_password(record["secret"], stamp))
    client.connect(emulator.host, emulator.mqtt_port, 60)
    client.loop_start()
    wait_until(lambda: emulator.is_online(device_id), what="raw device online")
    yield client, device_id
    client.loop_stop()
    client.disconnect()


def test_gzip_bomb_and_broken_gzip_are_dropped_and_the_link_stays(emulator, raw_client):
    client, device_id = raw_client
    topic = f"$oc/devices/{device_id}/sys/properties/report?encoding=gzip"
    bomb = gzip.compress(json.dumps({"services": [{"service_id": "Sensor", "properties": {
        "x": "a" * (2 * MAX_INFLATED)}}]}).encode())
    client.publish(topic, bomb, qos=1).wait_for_publish(10)
    client.publish(topic, b"\x1f\x8b not really gzip", qos=1).wait_for_publish(10)
    client.publish(f"$oc/devices/{device_id}/sys/properties/report?encoding=br", gzip.compress(b"{}"),
                   qos=1).wait_for_publish(10)
    good = gzip.compress(json.dumps({"services": [{"service_id": "Sensor", "properties": {"ok": 1}}]}).encode())
    client.publish(topic, good, qos=1).wait_for_publish(10)
    # the reports are handled in order: once the good one is in, the others were dropped, not applied
    wait_until(lambda: _reported(emulator, device_id) == {"ok": 1}, what="good report applied")
    assert emulator.is_online(device_id) and client.is_connected()
