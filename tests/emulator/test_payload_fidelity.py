"""Downlink payloads as IoTDA documents them (doc/protocol.md §2-§3), read by bare paho-mqtt devices.

No SDK code is involved: the devices follow the protocol text, so a mistake shared by our SDK and the
emulator shows up here. Platform actions are driven through the emulator's Python API.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import time
import uuid

import pytest
import requests

from tests.emulator.bare_device import BareDevice

EVENT_TIME = re.compile(r"^\d{8}T\d{6}Z$")


@pytest.fixture
def bare(emulator):
    """Factory: ``bare(**create_device_kwargs)`` registers a device and connects a BareDevice for it."""
    made = []

    def make(**kwargs) -> BareDevice:
        rec = emulator.create_device(**kwargs)
        dev = BareDevice(emulator.host, emulator.mqtt_port, rec["device_id"], rec["secret"]).connect()
        assert emulator.wait_online(rec["device_id"], timeout=10)
        dev.record = rec
        made.append(dev)
        return dev

    yield make
    for dev in made:
        dev.close()
    for dev in reversed(made):
        emulator.delete_device(dev.device_id)


def _event(body: dict) -> dict:
    assert len(body["services"]) == 1
    return body["services"][0]


def _sys(dev: BareDevice, rest: str) -> str:
    return f"$oc/devices/{dev.device_id}/sys/{rest}"


# ---- events/down envelope ------------------------------------------------------------------------------

def test_events_down_names_the_device_itself(bare):
    dev = bare()
    sent = int(time.time() * 1000)
    dev.event_up("$time_sync", "time_sync_request", {"device_send_time": sent})
    body = dev.wait_event("time_sync_response")
    assert body["object_device_id"] == dev.device_id          # a direct device: its own id
    event = _event(body)
    assert event["service_id"] == "$time_sync" and EVENT_TIME.match(event["event_time"])
    assert isinstance(event["event_id"], str) and event["event_id"]
    paras = event["paras"]
    assert paras["device_send_time"] == sent
    assert all(isinstance(paras[k], int) for k in ("server_recv_time", "server_send_time"))
    assert sent - 60_000 <= paras["server_recv_time"] <= paras["server_send_time"]


def test_events_down_for_a_child_name_the_child(emulator, bare):
    gw = bare()
    child = emulator.create_device(gateway_id=gw.device_id)["device_id"]
    gw.event_up("$time_sync", "time_sync_request", {"device_send_time": 1}, object_device_id=child)
    body = gw.wait_event("time_sync_response")
    assert body["object_device_id"] == child


def test_log_config(emulator, bare):
    dev = bare()
    emulator.service("$log").set_log_config(dev.device_id, "on", end_time=time.time() + 3600)
    body = dev.wait_event("log_config")
    assert body["object_device_id"] == dev.device_id
    paras = _event(body)["paras"]
    assert paras["switch"] == "on" and EVENT_TIME.match(paras["end_time"])


# ---- $ota -----------------------------------------------------------------------------------------------

def test_ota_v1_fields_and_download_names_the_file(emulator, bare):
    dev = bare()
    ota = emulator.service("$ota")
    data = os.urandom(5000)
    package = ota.upload_package(data, "2.0", file_name="fw-2.0.bin")
    task = ota.start_task(dev.device_id, package)
    query = dev.wait_event("version_query")
    assert query["object_device_id"] == dev.device_id and _event(query)["paras"]["task_id"] == task
    dev.event_up("$ota", "version_report", {"fw_version": "1.0", "sw_version": "1.0"})
    body = dev.wait_event("firmware_upgrade")
    assert body["object_device_id"] == dev.device_id
    paras = _event(body)["paras"]
    assert paras["version"] == "2.0" and paras["file_size"] == len(data) and paras["file_name"] == "fw-2.0.bin"
    assert paras["sign"] == hashlib.sha256(data).hexdigest() and paras["task_id"] == task
    assert isinstance(paras["expires"], int) and paras["expires"] > 0
    assert isinstance(paras["access_token"], str) and paras["access_token"]
    assert paras["url"].startswith("https://")

    refused = requests.get(paras["url"], verify=emulator.ca_file, timeout=10)
    assert refused.status_code == 401 and "Content-Disposition" not in refused.headers
    got = requests.get(paras["url"], headers={"Authorization": f"Bearer {paras['access_token']}"},
                       verify=emulator.ca_file, timeout=10)
    assert got.status_code == 200 and got.content == data
    assert got.headers["Content-Disposition"] == "attachment; filename=fw-2.0.bin"

    dev.event_up("$ota", "upgrade_progress_report", {"result_code": 0, "progress": 100, "version": "2.0"})
    assert ota.wait_task(task, timeout=10)["status"] == "success"


def test_ota_v2_presigned_url_needs_no_token(emulator, bare):
    dev = bare()
    ota = emulator.service("$ota")
    data = os.urandom(1000)
    package = ota.upload_package(data, "3.1", kind="software", file_name="app.tar")
    task = ota.start_task(dev.device_id, package, v2=True)
    dev.wait_event("version_query")
    dev.event_up("$ota", "version_report", {"sw_version": "3.0"})
    paras = _event(dev.wait_event("software_upgrade_v2"))["paras"]
    assert "access_token" not in paras
    assert (paras["version"], paras["file_size"], paras["file_name"], paras["task_id"]) == ("3.1", 1000, "app.tar",
                                                                                               task)
    assert paras["sign"] == hashlib.sha256(data).hexdigest() and isinstance(paras["expires"], int)
    got = requests.get(paras["url"], verify=emulator.ca_file, timeout=10)
    assert got.status_code == 200 and got.content == data


# ---- $file_manager --------------------------------------------------------------------------------------

def test_file_url_responses(emulator, bare):
    dev = bare()
    data = b"log line\n" * 50
    attrs = {"hash_code": hashlib.sha256(data).hexdigest(), "size": len(data)}
    dev.event_up("$file_manager", "get_upload_url", {"file_name": "a.log", "file_attributes": attrs})
    body = dev.wait_event("get_upload_url_response")
    assert body["object_device_id"] == dev.device_id
    up = _event(body)["paras"]
    assert up["object_name"] == "a.log" and up["file_attributes"] == attrs
    assert isinstance(up["bucket_name"], str) and isinstance(up["expire"], int) and up["expire"] > 0
    assert requests.put(up["url"], data=data, verify=emulator.ca_file, timeout=10).status_code in (200, 201)

    dev.event_up("$file_manager", "get_download_url", {"file_name": "a.log"})
    down = _event(dev.wait_event("get_download_url_response"))["paras"]
    assert down["object_name"] == "a.log" and down["file_attributes"] == attrs
    assert set(up) == set(down)   # "same fields as get_upload_url_response" (§3.2)
    assert requests.get(down["url"], verify=emulator.ca_file, timeout=10).content == data


# ---- $device_rule ---------------------------------------------------------------------------------------

def _answer_rule_push(dev: BareDevice) -> dict:
    msg = dev.wait(lambda m: "/sys/properties/set/request_id=" in m.topic)
    body = json.loads(msg.payload)
    request_id = msg.topic.rsplit("request_id=", 1)[1]
    dev.publish(_sys(dev, f"properties/set/response/request_id={request_id}"), {"result_code": 0})
    return body


def test_device_rule_actions_carry_enable_and_rules_active(emulator, bare):
    dev = bare()
    svc = emulator.service("$device_rule")
    command = {"serviceId": "alarm", "commandName": "ring", "commandBody": {"on": True}}
    rule_id = svc.create_rule(dev.device_id, {
        "ruleName": "hot", "logic": "and",
        "conditions": [{"type": "DEVICE_DATA", "operator": ">", "value": "30",
                        "deviceInfo": {"deviceId": dev.device_id, "path": "sensor/t"}}],
        "actions": [{"type": "DEVICE_CMD", "deviceId": dev.device_id, "command": command},
                    {"type": "DEVICE_CMD", "status": "disable", "deviceId": dev.device_id, "command": command}]})
    pushed = _answer_rule_push(dev)
    assert pushed["services"] == [{"service_id": "$device_rule", "properties": {rule_id: {"version": 1}}}]

    dev.event_up("$device_rule", "device_rule_config_request", {"ruleIds": [rule_id], "delIds": []})
    body = dev.wait_event("device_rule_config_response")
    assert body["object_device_id"] == dev.device_id
    [info] = _event(body)["paras"]["rulesInfos"]
    assert info["ruleId"] == rule_id and info["status"] == "active" and info["ruleVersionInShadow"] == 1
    assert [a["status"] for a in info["actions"]] == ["enable", "disable"]

    svc.deactivate_rule(dev.device_id, rule_id)
    assert _answer_rule_push(dev)["services"][0]["properties"] == {rule_id: {"version": 2}}
    dev.event_up("$device_rule", "device_rule_config_request", {"ruleIds": [rule_id], "delIds": []})
    [info] = _event(dev.wait_event("device_rule_config_response"))["paras"]["rulesInfos"]
    assert info["status"] == "inactive" and info["ruleVersionInShadow"] == 2


# ---- platform requests, shadow, messages ----------------------------------------------------------------

def _respond(dev: BareDevice, kind: str, answer: dict) -> dict:
    msg = dev.wait(lambda m: f"/sys/{kind}/request_id=" in m.topic)
    request_id = msg.topic.rsplit("request_id=", 1)[1]
    dev.publish(_sys(dev, f"{kind}/response/request_id={request_id}"), answer)
    return json.loads(msg.payload)


@pytest.mark.parametrize("child", [False, True], ids=["direct", "gateway-child"])
def test_command_and_property_requests(emulator, bare, child):
    dev = bare()
    target = emulator.create_device(gateway_id=dev.device_id)["device_id"] if child else dev.device_id
    expected = {"object_device_id": target} if child else {}
    core = emulator.core

    fut = core.submit(core.send_command, target, "alarm", "ring", {"level": 2})
    body = _respond(dev, "commands", {"result_code": 0, "response_name": "ring_rsp", "paras": {"ok": True}})
    assert body == dict(expected, service_id="alarm", command_name="ring", paras={"level": 2})
    assert fut.result(10) == {"result_code": 0, "response_name": "ring_rsp", "paras": {"ok": True}}

    fut = core.submit(core.set_properties, target, [{"service_id": "sensor", "properties": {"period": 5}}])
    body = _respond(dev, "properties/set", {"result_code": 0, "result_desc": "ok"})
    assert body == dict(expected, services=[{"service_id": "sensor", "properties": {"period": 5}}])
    assert fut.result(10)["result_desc"] == "ok"

    fut = core.submit(core.get_properties, target, "sensor")
    services = [{"service_id": "sensor", "properties": {"t": 21}}]
    body = _respond(dev, "properties/get", {"services": services})
    assert body == dict(expected, service_id="sensor")
    assert fut.result(10)["services"] == services


def test_shadow_get_response_always_names_its_device(emulator, bare):
    gw = bare()
    child = emulator.create_device(gateway_id=gw.device_id)["device_id"]
    emulator.core._apply_report(child, [{"service_id": "sensor", "properties": {"t": 3}}])
    for request, owner in (({}, gw.device_id), ({"object_device_id": child}, child)):
        request_id = uuid.uuid4().hex
        gw.publish(_sys(gw, f"shadow/get/request_id={request_id}"), request)
        msg = gw.wait(lambda m, r=request_id: m.topic == _sys(gw, f"shadow/get/response/request_id={r}"))
        body = json.loads(msg.payload)
        assert body["object_device_id"] == owner
        if owner == child:
            [entry] = body["shadow"]
            assert entry["service_id"] == "sensor" and entry["reported"]["properties"] == {"t": 3}
            assert isinstance(entry["version"], int) and EVENT_TIME.match(entry["reported"]["event_time"])


def test_messages_down_system_format(emulator, bare):
    gw = bare()
    child = emulator.create_device(gateway_id=gw.device_id)["device_id"]
    mid = emulator.send_message(gw.device_id, "hello", name="greeting", standard=True)
    body = json.loads(gw.wait(lambda m: m.topic == _sys(gw, "messages/down")).payload)
    assert body == {"name": "greeting", "id": mid, "content": "hello"}
    mid = emulator.send_message(child, {"k": 1})   # a child's message always comes in system format
    body = json.loads(gw.wait(lambda m: m.topic == _sys(gw, "messages/down")).payload)
    assert body == {"object_device_id": child, "id": mid, "content": {"k": 1}}


# ---- $sub_device_manager --------------------------------------------------------------------------------

def test_sub_device_responses_echo_event_id_and_notifies_carry_version(emulator, bare):
    gw = bare()
    product = gw.record["product_id"]
    node = f"n{uuid.uuid4().hex[:8]}"
    gw.event_up("$sub_device_manager", "add_sub_device_request",
                {"devices": [{"node_id": node, "product_id": product}]}, event_id="ev-add-1")
    rsp = gw.wait_event("add_sub_device_response")
    assert rsp["object_device_id"] == gw.device_id and _event(rsp)["event_id"] == "ev-add-1"
    [added] = _event(rsp)["paras"]["successful_devices"]
    assert added["parent_device_id"] == gw.device_id and added["node_id"] == node and added["product_id"] == product
    notify = _event(gw.wait_event("add_sub_device_notify"))["paras"]
    assert isinstance(notify["version"], int) and [d["device_id"] for d in notify["devices"]] == [added["device_id"]]

    gw.event_up("$sub_device_manager", "sub_device_update_status",
                {"device_statuses": [{"device_id": added["device_id"], "status": "ONLINE"}]}, event_id="ev-st-1")
    rsp = gw.wait_event("sub_device_update_status_response")
    assert _event(rsp)["event_id"] == "ev-st-1"
    assert _event(rsp)["paras"]["successful_devices"] == [{"device_id": added["device_id"], "status": "ONLINE"}]

    gw.event_up("$sub_device_manager", "delete_sub_device_request", {"devices": [added["device_id"]]},
                event_id="ev-del-1")
    rsp = gw.wait_event("delete_sub_device_response")
    assert _event(rsp)["event_id"] == "ev-del-1" and _event(rsp)["paras"]["successful_devices"] == [added["device_id"]]
    deleted = _event(gw.wait_event("delete_sub_device_notify"))["paras"]
    assert deleted["version"] > notify["version"]
    assert deleted["devices"] == [{"parent_device_id": gw.device_id, "node_id": node, "device_id": added["device_id"]}]
