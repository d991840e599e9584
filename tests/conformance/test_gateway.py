"""Gateways and sub-devices: ``$sub_device_manager`` requests, responses and notifications (doc/protocol.md
§3.6), plus platform requests routed to sub-devices through their gateway (``object_device_id``)."""
from __future__ import annotations

import threading

import pytest

from tests.conformance._device import new_id, only_event
from tests.conformance.conftest import COMMAND_TIMEOUT, PRODUCT_ID

SDM = "$sub_device_manager"


def _add_children(gw, count=1):
    nodes = [new_id("node") for _ in range(count)]
    event_id = gw.event_up(SDM, "add_sub_device_request", {"devices": [
        {"node_id": n, "product_id": PRODUCT_ID, "name": f"child {n}", "description": "conformance"}
        for n in nodes]}, event_id=new_id("ev"))
    rsp = only_event(gw.expect_event(SDM, "add_sub_device_response"))
    assert rsp["event_id"] == event_id
    return nodes, rsp["paras"]


def _online(gw, child):
    gw.event_up(SDM, "sub_device_update_status", {"device_statuses": [{"device_id": child, "status": "ONLINE"}]})
    gw.expect_event(SDM, "sub_device_update_status_response")


def test_add_sub_device_request_response_and_notify(api, make_device):
    gw = make_device()
    nodes, paras = _add_children(gw, 2)
    assert paras["failed_devices"] == []
    added = {d["node_id"]: d for d in paras["successful_devices"]}
    assert set(added) == set(nodes)
    for node, info in added.items():
        assert info["parent_device_id"] == gw.id and info["product_id"] == PRODUCT_ID and info["device_id"]
        shown = api.show_device(info["device_id"])
        assert shown["gateway_id"] == gw.id and shown["node_type"] == "ENDPOINT" and shown["node_id"] == node
    notify = only_event(gw.expect_event(SDM, "add_sub_device_notify"))["paras"]
    assert isinstance(notify["version"], int) and notify["version"] > 0
    assert {d["device_id"] for d in notify["devices"]} == {d["device_id"] for d in added.values()}
    assert all(d["parent_device_id"] == gw.id and d["node_id"] in nodes for d in notify["devices"])


def test_add_request_with_a_duplicate_node_fails_that_entry(make_device):
    gw = make_device()
    nodes, _ = _add_children(gw)
    gw.event_up(SDM, "add_sub_device_request", {"devices": [{"node_id": nodes[0], "product_id": PRODUCT_ID}]},
                event_id="dup-1")
    rsp = only_event(gw.expect_event(SDM, "add_sub_device_response"))
    assert rsp["event_id"] == "dup-1"
    assert rsp["paras"]["successful_devices"] == []
    [failed] = rsp["paras"]["failed_devices"]
    assert failed["node_id"] == nodes[0] and failed["error_code"] and failed["error_msg"]


def test_update_status_response_and_rest_status(api, make_device):
    gw = make_device()
    _, paras = _add_children(gw)
    child = paras["successful_devices"][0]["device_id"]
    event_id = gw.event_up(SDM, "sub_device_update_status", {"device_statuses": [
        {"device_id": child, "status": "ONLINE"}, {"device_id": "not_my_child", "status": "ONLINE"}]})
    rsp = only_event(gw.expect_event(SDM, "sub_device_update_status_response"))
    assert rsp["event_id"] == event_id
    assert rsp["paras"]["successful_devices"] == [{"device_id": child, "status": "ONLINE"}]
    assert [f["device_id"] for f in rsp["paras"]["failed_devices"]] == ["not_my_child"]
    assert api.show_device(child)["status"] == "ONLINE"
    gw.event_up(SDM, "sub_device_update_status", {"device_statuses": [{"device_id": child, "status": "OFFLINE"}]})
    gw.expect_event(SDM, "sub_device_update_status_response")
    assert api.show_device(child)["status"] == "OFFLINE"


def test_delete_sub_device_request_response_and_notify(api, make_device):
    gw = make_device()
    _, paras = _add_children(gw)
    gw.expect_event(SDM, "add_sub_device_notify")
    child = paras["successful_devices"][0]["device_id"]
    event_id = gw.event_up(SDM, "delete_sub_device_request", {"devices": [child]})
    rsp = only_event(gw.expect_event(SDM, "delete_sub_device_response"))
    assert rsp["event_id"] == event_id
    assert rsp["paras"] == {"successful_devices": [child], "failed_devices": []}
    notify = only_event(gw.expect_event(SDM, "delete_sub_device_notify"))["paras"]
    assert [d["device_id"] for d in notify["devices"]] == [child]
    assert notify["devices"][0]["parent_device_id"] == gw.id
    assert api.get(f"/devices/{child}").status_code == 404


def test_sync_request_from_scratch_lists_every_child(make_device):
    gw = make_device()
    _, paras = _add_children(gw, 3)
    first = only_event(gw.expect_event(SDM, "add_sub_device_notify"))["paras"]
    gw.event_up(SDM, "sub_device_sync_request", {})
    synced = only_event(gw.expect_event(SDM, "add_sub_device_notify"))["paras"]
    assert {d["device_id"] for d in synced["devices"]} == {d["device_id"] for d in paras["successful_devices"]}
    assert synced["version"] == first["version"]


def test_sync_request_at_the_current_version_sends_nothing(make_device):
    gw = make_device()
    _add_children(gw)
    version = only_event(gw.expect_event(SDM, "add_sub_device_notify"))["paras"]["version"]
    gw.event_up(SDM, "sub_device_sync_request", {"version": version})
    with pytest.raises(TimeoutError):
        gw.expect_event(SDM, "add_sub_device_notify", timeout=0.6)


def test_rest_add_device_under_an_online_gateway_notifies_it(api, make_device):
    gw = make_device()
    child = api.add_device(gateway_id=gw.id)["device_id"]
    notify = only_event(gw.expect_event(SDM, "add_sub_device_notify"))["paras"]
    assert child in [d["device_id"] for d in notify["devices"]]


def test_rest_delete_device_of_an_online_gateway_notifies_it(api, make_device):
    gw = make_device()
    _, paras = _add_children(gw)
    gw.expect_event(SDM, "add_sub_device_notify")
    child = paras["successful_devices"][0]["device_id"]
    assert api.delete(f"/devices/{child}").status_code == 204
    notify = only_event(gw.expect_event(SDM, "delete_sub_device_notify"))["paras"]
    assert [d["device_id"] for d in notify["devices"]] == [child]


# ---- platform requests to sub-devices go through the gateway ----------------------------------------

def test_command_to_a_sub_device_arrives_on_the_gateway_with_object_device_id(api, make_device):
    gw = make_device()
    child = api.add_device(gateway_id=gw.id)["device_id"]
    _online(gw, child)
    out = {}
    t = threading.Thread(target=lambda: out.setdefault("rsp", api.post(
        f"/devices/{child}/commands", {"service_id": "Sensor", "command_name": "set_level", "paras": {"level": 1}},
        timeout=COMMAND_TIMEOUT + 10)))
    t.start()
    prefix = f"$oc/devices/{gw.id}/sys/commands/request_id="
    msg = gw.expect(prefix)
    assert msg.json() == {"object_device_id": child, "service_id": "Sensor", "command_name": "set_level",
                          "paras": {"level": 1}}
    gw.publish(f"$oc/devices/{gw.id}/sys/commands/response/request_id={msg.topic[len(prefix):]}", {"result_code": 0})
    t.join()
    assert out["rsp"].status_code == 200 and out["rsp"].json()["response"]["result_code"] == 0


def test_message_to_a_sub_device_arrives_on_the_gateway_with_object_device_id(api, make_device):
    gw = make_device()
    child = api.add_device(gateway_id=gw.id)["device_id"]
    _online(gw, child)
    rsp = api.post(f"/devices/{child}/messages", {"message": "for the child"})
    assert rsp.status_code == 201, rsp.text
    body = gw.expect(f"$oc/devices/{gw.id}/sys/messages/down").json()
    assert body["object_device_id"] == child and body["content"] == "for the child"


def test_gateway_event_for_a_sub_device(emu, api, make_device):
    gw = make_device()
    child = api.add_device(gateway_id=gw.id)["device_id"]
    gw.event_up("$sdk_info", "sdk_info_report", {"device_sdk_version": "Child_v1", "fw_version": "c-1"},
                object_device_id=child)
    assert emu.service("$sdk_info").wait_info(child, 5)["fw_version"] == "c-1"


def test_time_sync_for_a_sub_device_is_answered_through_the_gateway(api, make_device):
    gw = make_device()
    child = api.add_device(gateway_id=gw.id)["device_id"]
    _online(gw, child)
    gw.event_up("$time_sync", "time_sync_request", {"device_send_time": 1234}, object_device_id=child)
    msg = gw.expect_event("$time_sync", "time_sync_response")
    assert msg.json()["object_device_id"] == child
    assert only_event(msg)["paras"]["device_send_time"] == 1234


def test_sub_devices_go_offline_with_their_gateway(emu, api, make_device):
    # the docs are silent; a sub-device reaches the platform only through its gateway, so the emulator
    # marks the gateway's children OFFLINE when the gateway's connection ends
    gw = make_device()
    child = api.add_device(gateway_id=gw.id)["device_id"]
    _online(gw, child)
    assert api.show_device(child)["status"] == "ONLINE"
    gw.close()
    assert emu.wait_offline(child, 5)
    assert api.show_device(child)["status"] == "OFFLINE"
