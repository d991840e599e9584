"""REST AddDevice/DeleteDevice of a gateway's child notify the gateway as IoTDA does (doc/protocol.md §3.6):
``add_sub_device_notify`` / ``delete_sub_device_notify`` with the sub-device list ``version`` when it is online;
an offline gateway learns the change at its next ``sub_device_sync_request``. Devices are bare paho clients."""
from __future__ import annotations

import json
import uuid

from huaweicloudsdkiotda.v5 import AddDevice, AddDeviceRequest, AuthInfo, DeleteDeviceRequest

from tests.emulator.bare_device import BareDevice


def _connect(emulator, record: dict) -> BareDevice:
    dev = BareDevice(emulator.host, emulator.mqtt_port, record["device_id"], record["secret"]).connect()
    assert emulator.wait_online(record["device_id"], timeout=10)
    return dev


def _paras(body: dict) -> dict:
    [event] = body["services"]
    assert event["service_id"] == "$sub_device_manager"
    return event["paras"]


def _add_child(app_client, gateway: dict) -> tuple:
    node = f"node{uuid.uuid4().hex[:10]}"
    added = app_client.add_device(AddDeviceRequest(body=AddDevice(
        node_id=node, product_id=gateway["product_id"], gateway_id=gateway["device_id"],
        auth_info=AuthInfo(secret="child-secret-1"))))
    return added.device_id, node


def test_rest_add_and_delete_of_a_child_notify_the_online_gateway(emulator, app_client):
    gateway = emulator.create_device()
    gw = _connect(emulator, gateway)
    try:
        child, node = _add_child(app_client, gateway)
        body = gw.wait_event("add_sub_device_notify")
        assert body["object_device_id"] == gateway["device_id"]
        paras = _paras(body)
        [info] = paras["devices"]
        assert (info["device_id"], info["parent_device_id"], info["node_id"], info["product_id"]) == (
            child, gateway["device_id"], node, gateway["product_id"])
        version = paras["version"]
        assert isinstance(version, int) and version == emulator.service("$sub_device_manager").version(
            gateway["device_id"])

        app_client.delete_device(DeleteDeviceRequest(device_id=child))
        paras = _paras(gw.wait_event("delete_sub_device_notify"))
        assert paras["devices"] == [{"parent_device_id": gateway["device_id"], "node_id": node, "device_id": child}]
        assert paras["version"] == version + 1
    finally:
        gw.close()
        emulator.delete_device(gateway["device_id"])


def test_a_device_without_gateway_notifies_nobody(emulator, app_client):
    gateway = emulator.create_device()
    gw = _connect(emulator, gateway)
    try:
        mark = emulator.core.last_trace_id
        other = app_client.add_device(AddDeviceRequest(body=AddDevice(
            node_id=f"solo{uuid.uuid4().hex[:8]}", product_id=gateway["product_id"],
            auth_info=AuthInfo(secret="solo-secret-1"))))
        app_client.delete_device(DeleteDeviceRequest(device_id=other.device_id))
        # a child added afterwards is the first notification the gateway sees
        child, _ = _add_child(app_client, gateway)
        body = gw.wait_event("add_sub_device_notify")
        assert [d["device_id"] for d in _paras(body)["devices"]] == [child]
        events = [e for e in emulator.trace(direction="down", since_id=mark) if e.topic.endswith("/sys/events/down")]
        assert [e.device_id for e in events] == [gateway["device_id"]]
        emulator.delete_device(child)
    finally:
        gw.close()
        emulator.delete_device(gateway["device_id"])


def test_an_offline_gateway_learns_at_its_next_sync(emulator, app_client):
    gateway = emulator.create_device()
    manager = emulator.service("$sub_device_manager")
    known = manager.version(gateway["device_id"])
    mark = emulator.core.last_trace_id
    child, node = _add_child(app_client, gateway)          # the gateway is offline
    assert manager.version(gateway["device_id"]) == known + 1
    gw = _connect(emulator, gateway)
    try:
        gw.event_up("$sub_device_manager", "sub_device_sync_request", {"version": known})
        paras = _paras(gw.wait_event("add_sub_device_notify"))
        assert paras["version"] == known + 1
        assert [(d["device_id"], d["node_id"]) for d in paras["devices"]] == [(child, node)]
        # nothing was sent while it was offline, and the sync answered once
        notifies = [json.loads(e.payload) for e in emulator.trace(device_id=gateway["device_id"], direction="down",
                                                                  since_id=mark)
                    if e.topic.endswith("/sys/events/down")]
        assert len(notifies) == 1
    finally:
        gw.close()
        emulator.delete_device(child)
        emulator.delete_device(gateway["device_id"])
