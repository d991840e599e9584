"""CreateMessage (``POST /v5/iot/{project_id}/devices/{device_id}/messages``) as IoTDA documents it:
``topic_full_name`` goes out unchanged (policy topics included), ``topic`` becomes
``$oc/devices/{gateway or device id}/user/{topic}``, ``ttl`` bounds the cache of an offline device, and the
answer's status says what happened: DELIVERED (published to the connected device), PENDING (cached) or
TIMEOUT (offline with ttl 0). Devices are bare paho clients."""
from __future__ import annotations

import json
import uuid

import pytest
from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException
from huaweicloudsdkiotda.v5 import CreateMessageRequest, DeviceMessageRequest

from tests.emulator.bare_device import BareDevice


@pytest.fixture
def device(emulator):
    """Factory: ``device(connect=True, **create_kwargs)`` -> (record, BareDevice or None)."""
    made, connected = [], []

    def make(connect: bool = True, extra_filters=None, **kwargs):
        rec = emulator.create_device(**kwargs)
        made.append(rec["device_id"])
        dev = None
        if connect:
            dev = BareDevice(emulator.host, emulator.mqtt_port, rec["device_id"], rec["secret"])
            dev.connect(extra_filters)
            connected.append(dev)
            assert emulator.wait_online(rec["device_id"], timeout=10)
        return rec, dev

    yield make
    for dev in connected:
        dev.close()
    for device_id in reversed(made):
        emulator.delete_device(device_id)


def _send(app_client, device_id: str, **body):
    body.setdefault("payload_format", "raw")
    return app_client.create_message(CreateMessageRequest(device_id=device_id, body=DeviceMessageRequest(**body)))


def test_topic_full_name_passes_unchanged(emulator, app_client, device):
    emulator.add_topic_policy("fidelity/%u/#")
    rec, _ = device(connect=False)
    policy_topic = f"fidelity/{rec['device_id']}/down"
    dev = BareDevice(emulator.host, emulator.mqtt_port, rec["device_id"], rec["secret"]).connect([policy_topic])
    try:
        assert emulator.wait_online(rec["device_id"], timeout=10)
        for full in (policy_topic, f"$oc/devices/{rec['device_id']}/user/any/level"):
            answer = _send(app_client, rec["device_id"], message="hi", topic_full_name=full)
            assert answer.result.status == "DELIVERED" and answer.result.finished_time
            msg = dev.wait(lambda m, t=full: m.topic == t)
            assert msg.payload == b"hi"
    finally:
        dev.close()


def test_topic_is_a_user_topic_of_the_gateway(emulator, app_client, device):
    gw_rec, gw = device()
    child = emulator.create_device(gateway_id=gw_rec["device_id"])["device_id"]
    try:
        answer = _send(app_client, child, message={"k": 1}, topic="cmd/down", payload_format="standard",
                       message_id=f"m{uuid.uuid4().hex[:8]}", name="greet")
        assert answer.result.status == "DELIVERED"
        msg = gw.wait(lambda m: m.topic == f"$oc/devices/{gw_rec['device_id']}/user/cmd/down")
        assert json.loads(msg.payload) == {"object_device_id": child, "name": "greet", "id": answer.message_id,
                                           "content": {"k": 1}}
    finally:
        emulator.delete_device(child)


def test_offline_device_pending_then_delivered_and_ttl_zero_not_cached(emulator, app_client, device):
    rec, _ = device(connect=False)
    kept = _send(app_client, rec["device_id"], message="kept")
    assert kept.result.status == "PENDING" and kept.result.finished_time is None
    dropped = _send(app_client, rec["device_id"], message="dropped", ttl=0)
    assert dropped.result.status == "TIMEOUT"
    dev = BareDevice(emulator.host, emulator.mqtt_port, rec["device_id"], rec["secret"]).connect()
    try:
        down = f"$oc/devices/{rec['device_id']}/sys/messages/down"
        assert dev.wait(lambda m: m.topic == down).payload == b"kept"
        after = _send(app_client, rec["device_id"], message="after")
        assert after.result.status == "DELIVERED"
        assert dev.wait(lambda m: m.topic == down).payload == b"after"   # "dropped" never came in between
    finally:
        dev.close()


@pytest.mark.parametrize("body", [
    {"topic": "a", "topic_full_name": "b/c"},      # only one of them
    {"topic": "a/#"},                              # not a topic one can publish to
    {"topic_full_name": "x/+/y"},
    {"topic": "$oc/devices/x/sys/messages/down"},  # topic is a suffix
    {"ttl": 7},                                    # minutes, a multiple of 5
    {"ttl": 1445},
], ids=["both", "wildcard", "full-wildcard", "dollar-suffix", "ttl-step", "ttl-max"])
def test_bad_message_requests_are_refused(app_client, device, body):
    rec, _ = device(connect=False)
    with pytest.raises(ClientRequestException) as info:
        _send(app_client, rec["device_id"], message="x", **body)
    assert info.value.status_code == 400
