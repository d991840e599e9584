"""ResetDeviceSecret (``POST .../devices/{device_id}/action?action_id=resetSecret``) against the real emulator:
REST with requests, the official application SDK (huaweicloudsdkiotda) and SDK devices (IotDevice)."""
from __future__ import annotations

import logging
import re
import time
import uuid

import pytest
import requests
from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException
from huaweicloudsdkiotda.v5 import ResetDeviceSecret, ResetDeviceSecretRequest

from iotda_emulator import errors
from tests.emulator_http.conftest import wait_until

SECRET_RE = re.compile(r"[A-Za-z0-9_\-]{8,32}")
FAST = {"min_backoff": 100, "max_backoff": 400}


def _reset(base_url, device_id, body=None, action_id="resetSecret", **kwargs):
    params = {"action_id": action_id} if action_id is not None else {}
    return requests.post(f"{base_url}/v5/iot/emu-project/devices/{device_id}/action", params=params,
                         json=body, timeout=10, **kwargs)


def _new_secret() -> str:
    return "New_" + uuid.uuid4().hex[:20]


def test_reset_given_secret_force_disconnect(emulator, make_device, base_url, gate, device_record, caplog):
    did = device_record["device_id"]
    device = make_device(record=device_record, **FAST)
    assert emulator.wait_online(did)
    before = len(gate.for_device(did))
    new = _new_secret()
    with caplog.at_level(logging.DEBUG):
        resp = _reset(base_url, did, {"secret": new, "force_disconnect": True})
        assert resp.status_code == 200, resp.text
        assert resp.json() == {"device_id": did, "secret": new, "secret_type": "PRIMARY"}
        assert emulator.get_device(did)["secret"] == new

        # the connection is dropped; the SDK's reconnect (still the old secret) is refused once with
        # CONNACK 4, after which it stops retrying (4 is in MqttConnection.NON_RETRYABLE_CODES)
        wait_until(lambda: not device.get_client().is_connected(), 10, what="device disconnected")
        wait_until(lambda: any(a[2] == 4 for a in gate.for_device(did)[before:]), 10, what="CONNACK 4")
        time.sleep(1.5)                       # several backoff periods (100-400 ms): no further attempt
        assert [a[2] for a in gate.for_device(did)[before:]] == [4]
        assert not emulator.is_online(did)
    assert new not in caplog.text and device_record["secret"] not in caplog.text   # secrets never logged
    device.destroy()

    again = make_device(record=dict(device_record, secret=new))
    assert again.get_client().is_connected()
    assert emulator.wait_online(did)
    assert gate.for_device(did)[-1][2] == 0


def test_reset_without_secret_generates_one(emulator, make_device, base_url, device_record):
    did = device_record["device_id"]
    for body in (None, {}):                  # no body at all, or an empty object
        resp = _reset(base_url, did, body)
        assert resp.status_code == 200, resp.text
        answer = resp.json()
        assert answer["device_id"] == did and answer["secret_type"] == "PRIMARY"
        assert SECRET_RE.fullmatch(answer["secret"]) and answer["secret"] != device_record["secret"]
        assert emulator.get_device(did)["secret"] == answer["secret"]
    device = make_device(record=dict(device_record, secret=answer["secret"]))
    assert device.get_client().is_connected() and emulator.wait_online(did)


def test_reset_without_force_disconnect_keeps_connection(emulator, make_device, base_url, gate, device_record):
    did = device_record["device_id"]
    device = make_device(record=device_record, **FAST)
    assert emulator.wait_online(did)
    new = _new_secret()
    resp = _reset(base_url, did, {"secret": new, "force_disconnect": False})
    assert resp.status_code == 200, resp.text
    time.sleep(1.0)
    assert device.get_client().is_connected() and emulator.is_online(did)

    # the next CONNECT is checked against the new secret: the old one is refused (and that refusal does not
    # touch the live connection)
    old = make_device(record=device_record, connect=False, **FAST)
    assert old.connect() == 4
    assert gate.for_device(did)[-1][2] == 4
    assert device.get_client().is_connected() and emulator.is_online(did)
    old.destroy()

    # the live connection still carries traffic
    answer = emulator.get_properties(did, timeout=10)
    assert isinstance(answer, dict)


@pytest.mark.parametrize("body, fragment", [
    ({"secret": "short"}, "8 to 32"),
    ({"secret": "x" * 33}, "8 to 32"),
    ({"secret": "bad secret!"}, "letters, digits"),
    ({"secret": 12345678}, "8 to 32"),
    ({"force_disconnect": "yes"}, "force_disconnect"),
    ({"secret_type": "SECONDARY"}, "not supported by the emulator"),
    ({"secret_type": "TERTIARY"}, "PRIMARY or SECONDARY"),
])
def test_invalid_body_is_400(emulator, base_url, device_record, body, fragment):
    resp = _reset(base_url, device_record["device_id"], body)
    assert resp.status_code == 400, resp.text
    err = resp.json()
    assert err["error_code"] == "IOTDA.000006" and fragment in err["error_msg"]
    if isinstance(body.get("secret"), str):
        assert body["secret"] not in err["error_msg"]          # the refused value is not echoed
    assert emulator.get_device(device_record["device_id"])["secret"] == device_record["secret"]   # nothing changed


def test_bad_action_body_or_device(emulator, base_url, device_record):
    did = device_record["device_id"]
    for action_id in ("freeze", "", None):
        resp = _reset(base_url, did, {}, action_id=action_id)
        assert resp.status_code == 400, resp.text
        assert resp.json()["error_code"] == "IOTDA.000006" and "action_id" in resp.json()["error_msg"]

    resp = requests.post(f"{base_url}/v5/iot/p/devices/{did}/action?action_id=resetSecret", data=b"[1]",
                         headers={"Content-Type": "application/json"}, timeout=10)
    assert resp.status_code == 400 and resp.json()["error_code"] == "IOTDA.000008"

    unknown = "nobody_" + uuid.uuid4().hex[:8]
    resp = _reset(base_url, unknown, {"secret": _new_secret()})
    assert resp.status_code == 404
    assert resp.json() == {"error_code": "IOTDA.014000", "error_msg": f"The device does not exist. device_id={unknown}"}

    cert_device = emulator.create_device(fingerprint="ab" * 32)
    try:
        resp = _reset(base_url, cert_device["device_id"], {})
        assert resp.status_code == 400 and "certificate" in resp.json()["error_msg"]
    finally:
        emulator.delete_device(cert_device["device_id"])
    assert emulator.get_device(did)["secret"] == device_record["secret"]


def test_python_api(emulator, device_record):
    did = device_record["device_id"]
    generated = emulator.reset_device_secret(did)
    assert SECRET_RE.fullmatch(generated) and emulator.get_device(did)["secret"] == generated
    assert emulator.reset_device_secret(did, "given-secret_1") == "given-secret_1"
    for bad in ("short", "no spaces allowed", "x" * 33, "trailing-newline\n"):
        with pytest.raises(ValueError):
            emulator.reset_device_secret(did, bad)
    with pytest.raises(errors.DeviceNotFound):
        emulator.reset_device_secret("nobody_" + uuid.uuid4().hex[:8], "valid-secret")
    assert emulator.get_device(did)["secret"] == "given-secret_1"


def test_official_sdk_reset_device_secret(emulator, app_client, make_device, device_record):
    did = device_record["device_id"]
    device = make_device(record=device_record, **FAST)
    assert emulator.wait_online(did)
    new = _new_secret()
    resp = app_client.reset_device_secret(ResetDeviceSecretRequest(
        device_id=did, action_id="resetSecret",
        body=ResetDeviceSecret(secret=new, force_disconnect=True, secret_type="PRIMARY")))
    assert (resp.device_id, resp.secret, resp.secret_type) == (did, new, "PRIMARY")
    wait_until(lambda: not device.get_client().is_connected(), 10, what="device disconnected")
    device.destroy()
    assert make_device(record=dict(device_record, secret=new)).get_client().is_connected()

    generated = app_client.reset_device_secret(ResetDeviceSecretRequest(
        device_id=did, action_id="resetSecret", body=ResetDeviceSecret()))
    assert SECRET_RE.fullmatch(generated.secret) and generated.secret_type == "PRIMARY"
    assert emulator.get_device(did)["secret"] == generated.secret

    with pytest.raises(ClientRequestException) as info:
        app_client.reset_device_secret(ResetDeviceSecretRequest(
            device_id=did, action_id="resetSecret", body=ResetDeviceSecret(secret_type="SECONDARY")))
    assert info.value.status_code == 400 and "not supported" in info.value.error_msg
    with pytest.raises(ClientRequestException) as info:
        app_client.reset_device_secret(ResetDeviceSecretRequest(
            device_id="nobody_" + uuid.uuid4().hex[:8], action_id="resetSecret", body=ResetDeviceSecret()))
    assert info.value.status_code == 404 and info.value.error_code == "IOTDA.014000"
