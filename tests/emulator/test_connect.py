"""CONNECT rules of the access front (doc/protocol.md §1.2-1.5) with real paho clients and Mosquitto."""
from __future__ import annotations

import datetime as dt
import socket
import ssl

import paho.mqtt.client as mqtt
import pytest

from iot_device_sdk_python.protocol import codec
from iotda_emulator import mqtt_packets as mp
from iotda_emulator.access_front import hmac_password
from tests.emulator.helpers import RawDevice, online_device


def _hours_ago(n: int) -> str:
    return (dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=n)).strftime("%Y%m%d%H")


def test_hmac_password_test_vector():
    assert hmac_password("12345678", "2025041401") == \
        "c75150e6cb841417396819e4d2ee4358a416344a03a083e3a8567074ddec820a"


def test_secret_device_accepted_and_reported_online(emulator, device_record):
    dev = RawDevice(emulator, device_record["device_id"], device_record["secret"])
    rc = dev.connect()
    try:
        assert rc == 0
        assert emulator.wait_online(device_record["device_id"], 5)
    finally:
        dev.close()
    assert emulator.wait_offline(device_record["device_id"], 5)


@pytest.mark.parametrize("case, expected", [
    ("bad_client_id", "Client identifier not valid"),
    ("keepalive_low", "Client identifier not valid"),
    ("keepalive_high", "Client identifier not valid"),
    ("wrong_password", "Bad user name or password"),
    ("unknown_device", "Bad user name or password"),
    ("username_mismatch", "Bad user name or password"),
    ("stale_sign_type_1", "Bad user name or password"),
    ("service_account", "Bad user name or password"),
])
def test_refused_connack(emulator, device_record, case, expected):
    did, secret = device_record["device_id"], device_record["secret"]
    kwargs = {}
    if case == "bad_client_id":
        kwargs = dict(client_id=f"{did}_0_0_notanhour")
    elif case == "keepalive_low":
        kwargs = dict(keepalive=29)
    elif case == "keepalive_high":
        kwargs = dict(keepalive=1201)
    elif case == "wrong_password":
        kwargs = dict(password="0" * 64)
    elif case == "unknown_device":
        did = "no_such_device"
    elif case == "username_mismatch":
        kwargs = dict(username="someone_else")
    elif case == "stale_sign_type_1":
        kwargs = dict(sign_type=1, timestamp=_hours_ago(3))
    elif case == "service_account":
        did = "platform"
    dev = RawDevice(emulator, did, secret, **kwargs)
    rc = dev.connect()
    assert rc.is_failure and rc == expected, rc
    assert not emulator.is_online(device_record["device_id"])


def test_frozen_device_refused_with_5_and_unfrozen_accepted(emulator, device_record):
    did = device_record["device_id"]
    emulator.freeze_device(did)
    dev = RawDevice(emulator, did, device_record["secret"])
    assert dev.connect() == "Not authorized"
    emulator.freeze_device(did, False)
    dev = RawDevice(emulator, did, device_record["secret"])
    try:
        assert dev.connect() == 0
    finally:
        dev.close()


def test_freezing_an_online_device_drops_it(emulator, device_record):
    dev = online_device(emulator, device_record, subscribe=False)
    try:
        emulator.freeze_device(device_record["device_id"])
        assert dev.disconnected.wait(5)
        assert emulator.wait_offline(device_record["device_id"], 5)
    finally:
        dev.close()


def test_sign_type_0_accepts_an_old_hour_and_sign_type_1_the_current(emulator, device_record):
    old = RawDevice(emulator, device_record["device_id"], device_record["secret"], sign_type=0,
                    timestamp=_hours_ago(48))
    try:
        assert old.connect() == 0
    finally:
        old.close()
    now = RawDevice(emulator, device_record["device_id"], device_record["secret"], sign_type=1)
    try:
        assert now.connect() == 0
    finally:
        now.close()


def test_mqtt5_client_gets_v5_reason_codes(emulator, device_record):
    ok = RawDevice(emulator, device_record["device_id"], device_record["secret"], protocol=mqtt.MQTTv5)
    try:
        assert ok.connect() == 0
    finally:
        ok.close()
    bad = RawDevice(emulator, device_record["device_id"], password="f" * 64, protocol=mqtt.MQTTv5)
    assert bad.connect() == "Bad user name or password"


def test_raw_connack_bytes_and_garbage(emulator, device_record):
    """The wire CONNACK for 3.1.1 is 20 02 00 rc; garbage before CONNECT is closed without an answer."""
    info = mp.ConnectInfo("MQTT", 4, 0x02, 60, f"{device_record['device_id']}_0_0_{codec.utc_hour_stamp()}",
                          username=device_record["device_id"], password=b"0" * 64)
    with socket.create_connection((emulator.host, emulator.mqtt_port), timeout=5) as s:
        s.sendall(mp.encode_connect(info))
        assert s.recv(4) == b"\x20\x02\x00\x04"
    with socket.create_connection((emulator.host, emulator.mqtt_port), timeout=5) as s:
        s.sendall(b"\xff\xff\xff\xff\xff garbage")
        assert s.recv(16) == b""


def test_kick_older_connection_of_same_device(emulator, device_record):
    first = online_device(emulator, device_record, subscribe=False)
    second = RawDevice(emulator, device_record["device_id"], device_record["secret"])
    try:
        assert second.connect() == 0
        assert first.disconnected.wait(5), "the older connection must be closed"
        assert not second.disconnected.is_set()
        assert emulator.is_online(device_record["device_id"])
    finally:
        first.close()
        second.close()


# ---- TLS and X.509 ------------------------------------------------------------------------------

@pytest.mark.parametrize("host", ["localhost", "127.0.0.1"])
def test_tls_verifies_hostname_with_emulator_ca(emulator, device_record, host):
    dev = RawDevice(emulator, device_record["device_id"], device_record["secret"], tls=True, host=host)
    try:
        assert dev.connect() == 0
    finally:
        dev.close()


def test_tls_refuses_a_wrong_hostname(emulator):
    ctx = ssl.create_default_context(cafile=emulator.ca_file)
    with socket.create_connection(("127.0.0.1", emulator.mqtts_port), timeout=5) as raw:
        with pytest.raises(ssl.SSLCertVerificationError):
            ctx.wrap_socket(raw, server_hostname="example.com")


def test_x509_device_with_registered_fingerprint(emulator):
    cert, key, fp = emulator.issue_device_cert("x509dev_a", password="k3y-pass")
    rec = emulator.create_device("x509dev_a", fingerprint=fp)
    assert rec["secret"] is None and rec["auth_type"] == "CERTIFICATES"
    ctx_dev = RawDevice(emulator, "x509dev_a", tls=True, certfile=cert, keyfile=key, key_password="k3y-pass")
    try:
        assert ctx_dev.connect() == 0
    finally:
        ctx_dev.close()
    other_cert, other_key, _ = emulator.issue_device_cert("x509dev_a")
    wrong = RawDevice(emulator, "x509dev_a", tls=True, certfile=other_cert, keyfile=other_key)
    assert wrong.connect() == "Bad user name or password"
    nocert = RawDevice(emulator, "x509dev_a", tls=True)
    assert nocert.connect() == "Bad user name or password"


def test_x509_fingerprint_bound_on_first_connect(emulator):
    rec = emulator.create_device("x509dev_b", auth_type="CERTIFICATES")
    assert rec["fingerprint"] is None
    cert, key, fp = emulator.issue_device_cert("x509dev_b")
    dev = RawDevice(emulator, "x509dev_b", tls=True, certfile=cert, keyfile=key)
    try:
        assert dev.connect() == 0
    finally:
        dev.close()
    assert emulator.get_device("x509dev_b")["fingerprint"] == fp
    other_cert, other_key, _ = emulator.issue_device_cert("x509dev_b")
    assert RawDevice(emulator, "x509dev_b", tls=True, certfile=other_cert,
                     keyfile=other_key).connect() == "Bad user name or password"


def test_secret_device_without_password_is_refused_even_with_a_cert(emulator, device_record):
    cert, key, _ = emulator.issue_device_cert(device_record["device_id"])
    dev = RawDevice(emulator, device_record["device_id"], tls=True, certfile=cert, keyfile=key)
    assert dev.connect() == "Bad user name or password"
