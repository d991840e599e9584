"""Message status over REST, through the official application SDK's models: ListDeviceMessages and
ShowDeviceMessage follow a message from PENDING (device offline) to DELIVERED when the device connects, or to
TIMEOUT when its ttl runs out first; DeleteDeviceMessage of a cached message keeps it from being delivered;
IoTDA keeps 20 messages per device, a 21st replacing the oldest. Devices are bare paho clients."""
from __future__ import annotations

import time
import uuid

import pytest
from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException
from huaweicloudsdkiotda.v5 import (CreateMessageRequest, DeleteDeviceMessageRequest, DeviceMessageRequest,
                                    ListDeviceMessagesRequest, ShowDeviceMessageRequest)

from tests.emulator.bare_device import BareDevice


def _send(app_client, device_id, text, **body):
    return app_client.create_message(CreateMessageRequest(device_id=device_id, body=DeviceMessageRequest(
        message=text, payload_format="raw", **body)))


def _statuses(app_client, device_id):
    listed = app_client.list_device_messages(ListDeviceMessagesRequest(device_id=device_id))
    assert listed.device_id == device_id
    return {m.message_id: m for m in listed.messages}


def test_pending_then_delivered_when_the_device_connects(emulator, app_client, offline_device):
    device_id = offline_device["device_id"]
    sent = _send(app_client, device_id, "hello later", name="greeting")
    msg = _statuses(app_client, device_id)[sent.message_id]
    assert (msg.status, msg.name, msg.message, msg.finished_time) == ("PENDING", "greeting", "hello later", None)
    assert msg.created_time

    dev = BareDevice(emulator.host, emulator.mqtt_port, device_id, offline_device["secret"]).connect()
    try:
        got = dev.wait(lambda m: m.topic.endswith("/sys/messages/down"))
        assert got.payload == b"hello later"
        shown = app_client.show_device_message(ShowDeviceMessageRequest(device_id=device_id,
                                                                        message_id=sent.message_id))
        assert shown.status == "DELIVERED" and shown.finished_time

        live = _send(app_client, device_id, "hello now")
        assert live.result.status == "DELIVERED"
        assert _statuses(app_client, device_id)[live.message_id].status == "DELIVERED"
    finally:
        dev.close()


def test_a_deleted_pending_message_is_never_delivered(emulator, app_client, offline_device):
    device_id = offline_device["device_id"]
    doomed = _send(app_client, device_id, "never")
    kept = _send(app_client, device_id, "kept")
    app_client.delete_device_message(DeleteDeviceMessageRequest(device_id=device_id, message_id=doomed.message_id))
    assert doomed.message_id not in _statuses(app_client, device_id)
    with pytest.raises(ClientRequestException) as info:
        app_client.show_device_message(ShowDeviceMessageRequest(device_id=device_id, message_id=doomed.message_id))
    assert info.value.status_code == 404

    dev = BareDevice(emulator.host, emulator.mqtt_port, device_id, offline_device["secret"]).connect()
    try:
        got = dev.wait(lambda m: m.topic.endswith("/sys/messages/down"))
        assert got.payload == b"kept"
        assert _statuses(app_client, device_id)[kept.message_id].status == "DELIVERED"
        with pytest.raises(AssertionError):
            dev.wait(lambda m: m.payload == b"never", timeout=1.0)
    finally:
        dev.close()


def test_a_twenty_first_message_replaces_the_oldest(emulator, app_client, offline_device):
    device_id = offline_device["device_id"]
    ids = [_send(app_client, device_id, f"m{n}").message_id for n in range(21)]
    listed = _statuses(app_client, device_id)
    assert len(listed) == 20 and ids[0] not in listed and set(ids[1:]) == set(listed)
    dev = BareDevice(emulator.host, emulator.mqtt_port, device_id, offline_device["secret"]).connect()
    try:
        payloads = [dev.wait(lambda m: m.topic.endswith("/sys/messages/down")).payload for _ in range(20)]
        assert payloads == [f"m{n}".encode() for n in range(1, 21)]   # oldest first, the replaced one gone
    finally:
        dev.close()


def test_a_message_past_its_ttl_times_out_and_is_not_delivered(emulator, app_client, offline_device):
    device_id = offline_device["device_id"]
    # REST ttls are whole 5-minute steps; the Python API takes a fraction to keep the test short
    mid, status = emulator.core.deliver_message(device_id, b"stale", ttl_minutes=0.5 / 60)
    assert status == "PENDING"
    time.sleep(0.8)
    msg = _statuses(app_client, device_id)[mid]
    assert msg.status == "TIMEOUT" and msg.finished_time and msg.error_info.error_msg
    dev = BareDevice(emulator.host, emulator.mqtt_port, device_id, offline_device["secret"]).connect()
    try:
        with pytest.raises(AssertionError):
            dev.wait(lambda m: m.payload == b"stale", timeout=1.0)
    finally:
        dev.close()


def test_unknown_device_or_message(app_client, offline_device):
    with pytest.raises(ClientRequestException) as info:
        app_client.list_device_messages(ListDeviceMessagesRequest(device_id="no-such-" + uuid.uuid4().hex[:6]))
    assert info.value.status_code == 404 and info.value.error_code == "IOTDA.014000"
    with pytest.raises(ClientRequestException) as info:
        app_client.delete_device_message(DeleteDeviceMessageRequest(device_id=offline_device["device_id"],
                                                                    message_id="nope"))
    assert info.value.status_code == 404
