"""The MicroPython SDK's pure parts: the password rule (on MicroPython, whose firmware has no ``hmac``, and
on CPython against ``hmac``), the client id, topic helpers, request objects and PEM-to-DER CA loading."""
from __future__ import annotations

import hashlib
import hmac
import os
import ssl
import subprocess

import pytest

from iot_device_sdk_micropython.client.iot_client import _ca_ders
from iot_device_sdk_micropython.client.iot_client_config import IotClientConfig
from iot_device_sdk_micropython.client.request import Command, DeviceMessage, ServicesProperties
from iot_device_sdk_micropython.utils import iot_util
from tests.micropython._mp import mp_env, require_micropython

# doc/protocol.md §1.2: secret 12345678 at 2025041401
VECTOR = ("12345678", "2025041401", "c75150e6cb841417396819e4d2ee4358a416344a03a083e3a8567074ddec820a")


def test_password_on_micropython_uses_hashlib_only():
    exe = require_micropython()
    code = ("from iot_device_sdk_micropython.utils import iot_util as u\n"
            "print(u._hmac is None, u.get_password('12345678', '2025041401'))\n"
            "print(u.get_client_id('dev_1', 0, '2025041401'))\n"
            "t = u.get_timestamp(); print(len(t), t.isdigit())\n")
    out = subprocess.run([exe, "-c", code], capture_output=True, text=True, env=mp_env(), timeout=30)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.split("\n")[:3] == ["True " + VECTOR[2], "dev_1_0_0_2025041401", "10 True"]


@pytest.mark.parametrize("key_len", [0, 10, 64, 65, 200])
def test_fallback_hmac_matches_the_standard_one(key_len):
    key, msg = os.urandom(key_len), os.urandom(37)
    assert iot_util._hmac_sha256(key, msg) == hmac.new(key, msg, hashlib.sha256).digest()


def test_password_and_client_id_rule():
    assert iot_util.get_password(VECTOR[0], VECTOR[1]) == VECTOR[2]
    assert iot_util.get_client_id("p_n", 1, "2025041401") == "p_n_0_1_2025041401"
    with pytest.raises(ValueError):
        iot_util.get_client_id(None)


def test_topic_helpers():
    topic = "$oc/devices/p_n/sys/commands/request_id=abc-1"
    assert iot_util.get_request_id_from_topic(topic) == "abc-1"
    assert iot_util.get_request_id_from_topic(topic.encode()) == "abc-1"
    assert iot_util.get_device_id_from_topic(topic) == "p_n"
    with pytest.raises(ValueError):
        iot_util.get_request_id_from_topic("$oc/devices/p_n/sys/messages/down")


def test_request_objects():
    cmd = Command({"service_id": "S", "command_name": "c", "paras": {"a": 1}})
    assert (cmd.service_id, cmd.command_name, cmd.paras, cmd.device_id) == ("S", "c", {"a": 1}, None)
    assert Command("not a dict").paras is None
    msg = DeviceMessage({"content": "x", "name": "n", "object_device_id": "d"})
    assert msg.to_dict() == {"content": "x", "name": "n", "object_device_id": "d"}
    assert DeviceMessage("raw").content == "raw"
    props = ServicesProperties()
    props.add_service_property("S", "a", 1)
    props.add_service_property("S", "b", 2)
    props.add_service_property("T", "c", 3)
    assert props.service_property == [{"service_id": "S", "properties": {"a": 1, "b": 2}},
                                      {"service_id": "T", "properties": {"c": 3}}]
    props.clear()
    assert props.service_property == []


def test_config_checks():
    with pytest.raises(ValueError, match="device_id"):
        IotClientConfig(server_ip="h", secret="s").check()
    with pytest.raises(ValueError, match="keepalive"):
        IotClientConfig(server_ip="h", device_id="d", secret="s", keepalive=10).check()
    assert IotClientConfig(port=8883).tls and not IotClientConfig(port=1883).tls
    assert IotClientConfig(port=1883, ca_file="x.pem").tls


def test_pem_bundle_becomes_der_blobs(tmp_path):
    from iotda_emulator.certs import CertificateAuthority

    ca = CertificateAuthority.create(str(tmp_path / "certs"), ["localhost"])
    pem = open(ca.ca_file).read() + open(ca.device_ca_file).read()
    ders = _ca_ders(IotClientConfig(ca_data=pem))
    assert ders == [ssl.PEM_cert_to_DER_cert(open(p).read()) for p in (ca.ca_file, ca.device_ca_file)]
    assert _ca_ders(IotClientConfig(ca_data=ders[0])) == [ders[0]]   # DER passes through
