"""Caller-chosen request ids, application keys, and the broker-free device registry."""
from __future__ import annotations

import os
import threading

import pytest
import requests

from iot_device_sdk_python.protocol import topics
from iotda_emulator import DeviceNotFound, Emulator, EmulatorError
from iotda_emulator.store import DeviceRegistry, Store
from tests.emulator.helpers import RawDevice, Responder, online_device


@pytest.fixture
def answering(emulator):
    dev = online_device(emulator)
    responder = Responder(dev)
    yield dev, responder
    responder.stop()
    dev.close()
    emulator.delete_device(dev.device_id)


def _request_ids(responder, kind):
    return [topics.classify(m.topic).request_id for m in responder.received
            if topics.classify(m.topic).kind == kind]


def test_given_request_ids_are_used_in_the_topics(emulator, answering):
    dev, responder = answering
    did = dev.device_id
    result = emulator.send_command(did, "svc", "reboot", {"a": 1}, request_id="cmd-0001")
    assert result["paras"] == {"echo": {"a": 1}}
    assert emulator.set_properties(did, [{"service_id": "s", "properties": {"x": 1}}],
                                   request_id="set-0002")["result_desc"] == "done"
    assert emulator.get_properties(did, "s", request_id="get-0003")["services"][0]["service_id"] == "s"
    assert _request_ids(responder, topics.COMMAND) == ["cmd-0001"]
    assert _request_ids(responder, topics.PROPERTIES_SET) == ["set-0002"]
    assert _request_ids(responder, topics.PROPERTIES_GET) == ["get-0003"]
    # without one, a fresh id is generated each time
    emulator.send_command(did, "svc", "reboot", {})
    emulator.send_command(did, "svc", "reboot", {})
    ids = _request_ids(responder, topics.COMMAND)
    assert len(ids) == 3 and len(set(ids)) == 3


@pytest.mark.parametrize("bad", ["", "a/b", "a+b", "a#", "x?y", "a" * 129])
def test_request_ids_unusable_in_a_topic_are_refused(emulator, answering, bad):
    dev, responder = answering
    with pytest.raises(ValueError):
        emulator.send_command(dev.device_id, "svc", "c", {}, request_id=bad)
    assert not responder.received


def test_a_request_id_already_pending_is_refused(emulator):
    dev = online_device(emulator)
    try:
        outcome = {}

        def first():
            try:
                emulator.send_command(dev.device_id, "svc", "c", {}, timeout=3, request_id="dup-1")
            except Exception as exc:  # noqa: BLE001 - recorded for the assertion below
                outcome["first"] = exc

        t = threading.Thread(target=first)
        t.start()
        dev.next_message(5)  # the first command reached the (silent) device: its id is pending
        with pytest.raises(EmulatorError, match="already in use"):
            emulator.send_command(dev.device_id, "svc", "c", {}, timeout=3, request_id="dup-1")
        # answering the pending one ends the first call with the answer
        dev.publish(topics.command_response(dev.device_id, "dup-1"), {"result_code": 0})
        t.join(5)
        assert not t.is_alive() and "first" not in outcome
    finally:
        dev.close()
        emulator.delete_device(dev.device_id)


def test_rest_command_id_is_the_topic_request_id(emulator, answering):
    dev, responder = answering
    url = f"{emulator.http_url}/v5/iot/proj/devices/{dev.device_id}/commands"
    resp = requests.post(url, json={"service_id": "svc", "command_name": "go", "paras": {"k": 2}}, timeout=10)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["response"]["paras"] == {"echo": {"k": 2}}
    assert _request_ids(responder, topics.COMMAND) == [body["command_id"]]


def test_app_keys_constructor_parameter(tmp_path):
    emu = Emulator(data_dir=str(tmp_path), app_keys={"AK1": "SK1"})
    assert emu.app_keys == {"AK1": "SK1"}
    assert Emulator(data_dir=str(tmp_path)).app_keys == {}
    with pytest.raises(ValueError):
        Emulator(data_dir=str(tmp_path), rate_limit=0)


def test_app_keys_make_the_rest_api_require_signatures(emulator, device_record):
    url = f"{emulator.http_url}/v5/iot/proj/devices/{device_record['device_id']}"
    assert requests.get(url, timeout=10).status_code == 200
    emulator.app_keys["AK-test"] = "SK-test"
    try:
        resp = requests.get(url, timeout=10)
        assert resp.status_code == 401
        assert resp.json()["error_code"] == "APIGW.0301"
    finally:
        emulator.app_keys.pop("AK-test")
    assert requests.get(url, timeout=10).status_code == 200


# ---- registry without MQTT ----------------------------------------------------------------------------

def test_device_registry_rules_on_a_bare_store(tmp_path):
    store = Store(str(tmp_path / "reg.sqlite3"))
    try:
        reg = DeviceRegistry(store)
        rec = reg.create_device(product_id="p1", node_id="n1")
        assert rec["device_id"] == "p1_n1" and rec["node_id"] == "n1" and len(rec["secret"]) == 32
        assert rec["auth_type"] == "SECRET" and rec["online"] is False and rec["frozen"] is False
        with pytest.raises(EmulatorError, match="already exists"):
            reg.create_device("p1_n1")
        with pytest.raises(ValueError):
            reg.create_device("bad/id")
        cert = reg.create_device("certdev", fingerprint="AA:BB:CC")
        assert cert["auth_type"] == "CERTIFICATES" and cert["secret"] is None and cert["fingerprint"] == "aabbcc"
        assert reg.create_device("child1", gateway_id="p1_n1")["gateway_id"] == "p1_n1"
        assert [c["device_id"] for c in reg.children("p1_n1")] == ["child1"]
        assert reg.update_device("child1", name="kid", fingerprint="DD:EE")["fingerprint"] == "ddee"
        with pytest.raises(ValueError):
            reg.update_device("child1", online=1)
        with pytest.raises(DeviceNotFound):
            reg.update_device("nope", name="x")
        reg.set_frozen("child1")
        assert reg.get_device("child1")["frozen"] is True
        store.execute("INSERT INTO shadow(device_id, service_id) VALUES ('child1', 's')")
        assert reg.delete_device("child1") is True
        assert reg.delete_device("child1") is False
        assert store.query("SELECT * FROM shadow WHERE device_id='child1'") == []
        assert [d["device_id"] for d in reg.list_devices()] == ["p1_n1", "certdev"]
    finally:
        store.close()


def test_core_uses_the_registry_and_shares_the_data_file(emulator):
    assert isinstance(emulator.core.registry, DeviceRegistry)
    # another connection to the running emulator's file (as the CLI makes) registers a device ...
    other = Store(os.path.join(emulator.data_dir, "emulator.sqlite3"))
    try:
        rec = DeviceRegistry(other).create_device(product_id="cli", node_id=os.urandom(4).hex())
    finally:
        other.close()
    # ... that the emulator knows and accepts at once
    assert emulator.get_device(rec["device_id"])["secret"] == rec["secret"]
    dev = RawDevice(emulator, rec["device_id"], rec["secret"])
    try:
        assert dev.connect() == 0
        assert emulator.wait_online(rec["device_id"], 10)
    finally:
        dev.close()
        emulator.delete_device(rec["device_id"])
    assert emulator.get_device(rec["device_id"]) is None
