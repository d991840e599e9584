"""Device provisioning (IoTDP bootstrap, doc/protocol.md §5): ``bootstrap/up`` and ``bootstrap/down``.

IoTDP is its own endpoint: here it listens on a host of its own (127.0.0.2) with IoTDA's MQTTS port, as on
the cloud where ``iot-bs`` and ``iot-mqtts`` differ by host name only. Registration groups and strategies
are created through the IoTDP application API (``/v5/iotps/{project_id}/...``).
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import socket

import pytest

from iotda_emulator import Emulator
from tests.conformance._device import Device, hour_stamp, new_id, password
from tests.conformance.conftest import PROJECT, PRODUCT_ID

BOOTSTRAP_HOST = "127.0.0.2"


def _loopback_alias_usable() -> bool:
    try:
        with socket.socket() as s:
            s.bind((BOOTSTRAP_HOST, 0))
        return True
    except OSError:
        return False


@pytest.fixture(scope="module")
def emu():
    if not _loopback_alias_usable():
        pytest.skip(f"{BOOTSTRAP_HOST} is not a usable loopback address on this machine")
    emulator = Emulator(command_timeout=3.0, bootstrap_host=BOOTSTRAP_HOST).start()
    try:
        yield emulator
    finally:
        emulator.stop()


def _iotps(api, method, path, body=None):
    return api.call(method, f"{api.root}/v5/iotps/{PROJECT}{path}", body)


def _group(api, **extra):
    body = {"registration_group_name": new_id("group"), "auth_type": "SECRET", "product_id": PRODUCT_ID}
    body.update(extra)
    rsp = _iotps(api, "POST", "/registration-groups", body)
    assert rsp.status_code == 201, rsp.text
    return rsp.json()


def _derived_secret(device_id: str, group_secret_b64: str) -> str:
    """IoTDP: hex HMAC-SHA256 with key = the device id and message = the base64-decoded group secret."""
    return hmac.new(device_id.encode(), base64.b64decode(group_secret_b64), hashlib.sha256).hexdigest()


def _group_device(emu, scope_id, device_id, group_secret):
    bs = emu.service("$bootstrap")
    stamp = hour_stamp()
    return Device(bs.host, bs.port, device_id, None, client_id=f"{device_id}_0_{scope_id}_0_{stamp}",
                  pwd=password(_derived_secret(device_id, group_secret), stamp), tls_ca=emu.ca_file)


def _bootstrap(dev, payload=b"", subscribe=True):
    if subscribe:   # IoTDP's guide has the device subscribe to bootstrap/down first
        assert dev.subscribe(f"$oc/devices/{dev.id}/sys/bootstrap/down", qos=1) == [1]
    dev.publish(f"$oc/devices/{dev.id}/sys/bootstrap/up", payload, qos=1)
    return dev.expect(f"$oc/devices/{dev.id}/sys/bootstrap/down").json()


def test_bootstrap_endpoint_has_its_own_host_and_iotdas_port(emu):
    bs = emu.service("$bootstrap")
    assert bs.host == BOOTSTRAP_HOST and bs.port == emu.mqtts_port


@pytest.mark.parametrize("subscribe", [True, False], ids=["subscribed", "implicit"])
def test_registration_group_device_is_provisioned_and_connects_to_iotda(emu, api, subscribe):
    group = _group(api, init_config={"interval": 5})
    device_id = new_id("bs_")
    dev = _group_device(emu, group["registration_group_id"], device_id, group["secret"])
    try:
        assert dev.connect() == 0
        answer = _bootstrap(dev, subscribe=subscribe)
    finally:
        dev.close()
    host, port = answer["address"].rsplit(":", 1)
    assert (host, int(port)) == (emu.host, emu.mqtts_port)
    assert json.loads(answer["initConfig"]) == {"interval": 5}
    secret = answer.get("deviceSecret") or _derived_secret(device_id, group["secret"])
    iotda = Device(host, int(port), device_id, secret, tls_ca=emu.ca_file)
    try:
        assert iotda.connect() == 0
        shown = api.show_device(device_id)
        assert shown["status"] == "ONLINE" and shown["product_id"] == PRODUCT_ID
    finally:
        iotda.close()
    rsp = _iotps(api, "GET", f"/registration-groups/{group['registration_group_id']}/devices")
    assert device_id in [d["device_id"] for d in rsp.json()["devices"]]


def test_payload_keyword_selects_the_strategy(emu, api):
    keyword = new_id("kw")
    rsp = _iotps(api, "POST", "/strategies", {"strategy_type": "base", "strategy_name": keyword,
                                              "base_strategy_info": {"keyword": keyword, "priority": 2,
                                                                     "keyword_source": "payload"},
                                              "init_config": {"from": "strategy"}, "product_id": PRODUCT_ID})
    assert rsp.status_code == 201, rsp.text
    group = _group(api, require_policy=True)
    device_id = new_id("bs_")
    dev = _group_device(emu, group["registration_group_id"], device_id, group["secret"])
    try:
        assert dev.connect() == 0
        answer = _bootstrap(dev, {"baseStrategyKeyword": keyword})
    finally:
        dev.close()
    assert "address" in answer and json.loads(answer["initConfig"]) == {"from": "strategy"}


def test_no_matching_strategy_answers_error_100414(emu, api):
    group = _group(api, require_policy=True)
    device_id = new_id("bs_")
    dev = _group_device(emu, group["registration_group_id"], device_id, group["secret"])
    try:
        assert dev.connect() == 0
        answer = _bootstrap(dev, {"baseStrategyKeyword": "matches-nothing-" + os.urandom(4).hex()})
    finally:
        dev.close()
    assert answer.get("errorCode") == "100414" and answer.get("errorMsg") and "address" not in answer


def test_pre_registered_device_with_the_standard_client_id(emu, api):
    # IoTDP's device registration API is not emulated: the device is pre-registered through the Python API
    device_id = new_id("pre_")
    rec = emu.service("$bootstrap").add_bootstrap_device(device_id, require_policy=False, product_id=PRODUCT_ID)
    bs = emu.service("$bootstrap")
    dev = Device(bs.host, bs.port, device_id, rec["secret"], tls_ca=emu.ca_file)
    try:
        assert dev.connect() == 0
        answer = _bootstrap(dev)
    finally:
        dev.close()
    assert answer["address"] == f"{emu.host}:{emu.mqtts_port}"


def test_wrong_group_secret_is_refused(emu, api):
    group = _group(api)
    device_id = new_id("bs_")
    dev = _group_device(emu, group["registration_group_id"], device_id, base64.b64encode(b"not it").decode())
    try:
        assert dev.connect() == 134   # paho's name for CONNACK 4 (bad user name or password)
    finally:
        dev.close()
