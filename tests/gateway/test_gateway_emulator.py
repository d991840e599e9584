"""AbstractGateway against the emulator's $sub_device_manager, over real MQTT (no mocks)."""
from __future__ import annotations

import json
import threading
import time

import pytest

from iot_device_sdk_python.client.request.command_response import CommandRsp
from iot_device_sdk_python.client.request.device_event import DeviceEvent
from iot_device_sdk_python.client.request.device_message import DeviceMessage
from iot_device_sdk_python.client.request.service_property import ServiceProperty
from iot_device_sdk_python.gateway.requests.added_sub_device_info import AddedSubDeviceInfo
from iot_device_sdk_python.gateway.requests.device_info import DeviceInfo
from iot_device_sdk_python.gateway.requests.device_property import DeviceProperty
from iot_device_sdk_python.gateway.requests.device_status import DeviceStatus
from iot_device_sdk_python.gateway.sub_devices_persistence import MemorySubDevicesPersistence
from iot_device_sdk_python.protocol import topics
from iot_device_sdk_python.service.abstract_service import AbstractService
from iot_device_sdk_python.transport.action_listener import ActionListener

from tests.gateway.conftest import wait_until

SUB = "$sub_device_manager"


def _up_events(emulator, gateway_id, event_type):
    out = []
    for e in emulator.trace(device_id=gateway_id, direction="up", kind=topics.EVENTS_UP):
        body = json.loads(e.payload)
        out += [s for s in body["services"] if s.get("event_type") == event_type]
    return out


def _trace_at_least(emulator, n, **filters):
    """The trace entries matching ``filters`` once there are at least ``n`` of them."""
    return wait_until(lambda: (lambda found: found if len(found) >= n else None)(emulator.trace(**filters)),
                      what=f"{n} trace entries {filters}")


class _CountingListener(ActionListener):
    def __init__(self):
        self.success = 0
        self.failure = 0
        self.done = threading.Event()

    def on_success(self, message):
        self.success += 1
        self.done.set()

    def on_failure(self, message, e):
        self.failure += 1
        self.done.set()


def test_two_hundred_children_add_status_properties_delete(emulator, gateways):
    persistence = MemorySubDevicesPersistence()
    gw = gateways.make(persistence=persistence)
    gid = gw.get_device_id()
    svc = emulator.service(SUB)
    nodes = [f"n{i:03d}" for i in range(200)]

    # add: one call, sent as four requests of 50 with the same event id
    infos = [AddedSubDeviceInfo(node_id=n, product_id="child_product", name=f"child {n}") for n in nodes]
    gw.gtw_add_sub_device(infos, "evt-add").result(10)
    wait_until(lambda: len(gw.listener.add_rsps) == 4, what="4 add responses")
    requests = _up_events(emulator, gid, "add_sub_device_request")
    assert [len(r["paras"]["devices"]) for r in requests] == [50, 50, 50, 50]
    assert {eid for _, eid in gw.listener.add_rsps} == {"evt-add"}
    created = [d for rsp, _ in gw.listener.add_rsps for d in rsp.successful_devices]
    assert sorted(d.node_id for d in created) == nodes
    assert all(d.device_id == f"child_product_{d.node_id}" and d.parent_device_id == gid for d in created)
    wait_until(lambda: len(persistence.all_devices()) == 200, what="200 children in the persistence")
    wait_until(lambda: persistence.get_version() == svc.version(gid), what="persistence version")
    assert len(emulator.core.children(gid)) == 200
    child_ids = [f"child_product_{n}" for n in nodes]
    assert gw.get_sub_device_by_device_id(child_ids[7]).node_id == nodes[7]
    assert gw.get_sub_device_by_node_id(nodes[9]).device_id == child_ids[9]

    # a duplicate node is refused, not created twice
    gw.gtw_add_sub_device([AddedSubDeviceInfo(node_id=nodes[0], product_id="child_product")], "evt-dup")
    wait_until(lambda: any(eid == "evt-dup" for _, eid in gw.listener.add_rsps), what="duplicate response")
    dup = next(rsp for rsp, eid in gw.listener.add_rsps if eid == "evt-dup")
    assert dup.successful_devices == [] and dup.add_sub_device_failed_reasons[0].node_id == nodes[0]

    # online: 200 statuses in two events of 100, one listener call for the whole call
    listener = _CountingListener()
    gw.report_batch_status([DeviceStatus(d, "ONLINE") for d in child_ids], listener).result(10)
    assert listener.done.wait(5) and (listener.success, listener.failure) == (1, 0)
    statuses = wait_until(lambda: len(_up_events(emulator, gid, "sub_device_update_status")) >= 2
                          and _up_events(emulator, gid, "sub_device_update_status"), what="status events")
    assert [len(e["paras"]["device_statuses"]) for e in statuses] == [100, 100]
    wait_until(lambda: all(emulator.is_online(d) for d in child_ids), what="all children online")
    wait_until(lambda: len(gw.status_rsps) == 2, what="status responses")
    assert sum(len(r["successful_devices"]) for r, _ in gw.status_rsps) == 200

    # batch properties: two messages of at most 100 devices; every child's shadow gets its own value
    props = [DeviceProperty(d, [ServiceProperty("sensor", {"temperature": i, "node": nodes[i]})])
             for i, d in enumerate(child_ids)]
    gw.report_batch_properties(props).result(10)
    reports = _trace_at_least(emulator, 2, device_id=gid, direction="up", kind=topics.GATEWAY_PROPERTIES_REPORT)
    assert [len(json.loads(r.payload)["devices"]) for r in reports] == [100, 100]

    def shadows_done():
        for i in (0, 99, 100, 199):
            sh = emulator.shadow(child_ids[i])
            if not sh or sh[0]["reported"]["properties"].get("temperature") != i:
                return False
        return True

    wait_until(shadows_done, what="child shadows updated")
    assert emulator.shadow(child_ids[150])[0]["reported"]["properties"] == {"temperature": 150, "node": nodes[150]}

    # delete all: four requests of 50, persistence and registry emptied
    gw.gtw_del_sub_device(child_ids, "evt-del").result(10)
    wait_until(lambda: len(gw.listener.del_rsps) == 4, what="4 delete responses")
    assert sorted(d for rsp, _ in gw.listener.del_rsps for d in rsp.successful_devices) == sorted(child_ids)
    wait_until(lambda: not persistence.all_devices(), what="persistence emptied")
    assert emulator.core.children(gid) == []
    assert persistence.get_version() == svc.version(gid)


def test_batch_properties_respect_the_64k_message_limit(emulator, gateways):
    gw = gateways.make()
    gid = gw.get_device_id()
    children = emulator.service(SUB).add_children(gid, [f"big{i}" for i in range(6)])
    blob = "x" * 20000   # 6 x ~20 KB: cannot fit one 64 KB message
    gw.report_batch_properties([DeviceProperty(c["device_id"], [ServiceProperty("s", {"blob": blob})])
                                for c in children]).result(10)
    wait_until(lambda: all(emulator.shadow(c["device_id"]) for c in children), what="shadows")
    sizes = [len(r.payload) for r in emulator.trace(device_id=gid, direction="up",
                                                   kind=topics.GATEWAY_PROPERTIES_REPORT)]
    assert len(sizes) >= 2 and max(sizes) <= 64 * 1024
    # one device alone over the limit: refused before anything is sent
    with pytest.raises(ValueError, match="property message limit"):
        gw.report_batch_properties([DeviceProperty(children[0]["device_id"],
                                                   [ServiceProperty("s", {"blob": "y" * 70000})])])
    with pytest.raises(ValueError):
        gw.report_batch_status([DeviceStatus(children[0]["device_id"], "SLEEPING")])
    assert len(emulator.trace(device_id=gid, direction="up", kind=topics.GATEWAY_PROPERTIES_REPORT)) == len(sizes)


def test_child_downlink_routing_and_error_answers(emulator, gateways):
    gw = gateways.make()
    gid = gw.get_device_id()

    class Echo(AbstractService):
        def on_command(self, command):
            return CommandRsp(0, "echo", {"got": command.paras})

    gw.add_service("echo", Echo())
    child = emulator.service(SUB).add_child(gid, "kid")["device_id"]
    gw.report_sub_device_status(child, "ONLINE").result(10)
    assert emulator.wait_online(child, 10)

    # the gateway's own command still reaches its services
    own = emulator.send_command(gid, "echo", "ping", {"a": 1})
    assert own["result_code"] == 0 and own["paras"] == {"got": {"a": 1}}
    # a child command nobody handles is answered with an error (never left to time out)
    rsp = emulator.send_command(child, "echo", "ping", {"a": 2})
    assert rsp["result_code"] != 0 and "not handled" in rsp["paras"]["error"]
    # a child property set reaches the child path (not the gateway's own services) and fails clearly
    res = emulator.set_properties(child, [{"service_id": "echo", "properties": {"v": 1}}])
    assert res["result_code"] != 0
    assert ("set", child, [{"v": 1}]) in gw.calls
    got = emulator.get_properties(child, "echo")
    assert got.get("services") == [] and ("get", child, "echo") in gw.calls
    # messages and events for the child
    emulator.send_message(child, "hello kid")
    emulator.send_event(child, "$ota", "version_query", {})
    wait_until(lambda: ("message", child, "hello kid") in gw.calls and ("event", child, ["version_query"]) in gw.calls,
               what="child message and event")
    assert all(c[1] == child for c in gw.calls)
    # child uplink: message with object_device_id, child event (OTA version report)
    msg = DeviceMessage()
    msg.device_id = child
    msg.content = "from kid"
    gw.report_sub_device_message(msg).result(10)
    ev = DeviceEvent()
    ev.service_id = "$ota"
    ev.event_type = "version_report"
    ev.paras = {"fw_version": "v2"}
    gw.report_sub_event(child, ev).result(10)
    # (PUBACK comes from the broker; the platform core may see the message a moment later)
    up = emulator.wait_for_trace(lambda e: e.device_id == gid and e.kind == topics.MESSAGES_UP, timeout=10)
    assert json.loads(up.payload) == {"object_device_id": child, "content": "from kid"}
    up = emulator.wait_for_trace(lambda e: e.device_id == gid and e.kind == topics.EVENTS_UP
                                 and b"version_report" in e.payload, timeout=10)
    body = json.loads(up.payload)
    assert body["object_device_id"] == child and body["services"][0]["paras"] == {"fw_version": "v2"}


def test_null_and_malformed_platform_lists_do_not_break_the_gateway(emulator, gateways):
    gw = gateways.make()
    gid = gw.get_device_id()
    for event_type, paras in (("add_sub_device_response", {"successful_devices": None, "failed_devices": None}),
                              ("delete_sub_device_response", {"successful_devices": 7}),
                              ("add_sub_device_notify", {"devices": None, "version": None}),
                              ("delete_sub_device_notify", {"devices": [None, 3, "x"], "version": "bad"}),
                              ("sub_device_update_status_response", {"failed_devices": None}),
                              ("something_new", None)):
        emulator.send_event(gid, SUB, event_type, paras)
    wait_until(lambda: len(gw.listener.add_rsps) == 1 and len(gw.listener.del_rsps) == 1, what="responses")
    add_rsp, _ = gw.listener.add_rsps[0]
    assert add_rsp.successful_devices == [] and add_rsp.add_sub_device_failed_reasons == []
    assert gw.listener.del_rsps[0][0].successful_devices == []
    # scan results (IoTEdge feature) reach the platform service
    gw.report_sub_dev_list([DeviceInfo(node_id="found1", product_id="p")]).result(10)
    scans = emulator.service(SUB).scan_results
    wait_until(lambda: any(r["gateway_id"] == gid for r in scans), what="scan result")
    assert [r for r in scans if r["gateway_id"] == gid][0]["devices"][0]["node_id"] == "found1"
    # still alive: a real notification is applied afterwards
    emulator.service(SUB).add_child(gid, "after")
    wait_until(lambda: gw.get_sub_device_by_node_id("after") is not None, what="notification after garbage")


def test_resync_after_restart_while_children_changed(emulator, gateways, tmp_path):
    from iot_gateway_demo.sub_devices_file_persistence import SubDevicesFilePersistence

    path = str(tmp_path / "subdevices.json")
    record = gateways.record()
    gid = record["device_id"]
    svc = emulator.service(SUB)
    gw = gateways.make(persistence=SubDevicesFilePersistence(path), record=record)
    svc.add_children(gid, ["keep1", "keep2", "gone1", "gone2"])
    wait_until(lambda: gw.get_sub_device_by_node_id("gone2") is not None, what="initial notification")
    gw.destroy()
    assert emulator.wait_offline(gid, 10)

    # while the gateway is away: two children deleted, three added (one directly in the registry)
    svc.delete_children(gid, ["emu_product_gone1", "emu_product_gone2"])
    svc.add_children(gid, ["new1", "new2"])
    emulator.create_device(product_id="emu_product", node_id="direct", gateway_id=gid)

    persistence = SubDevicesFilePersistence(path)   # a restarted process reads the file back
    assert persistence.get_sub_device("gone1") is not None and persistence.get_sub_device("new1") is None
    gw2 = gateways.make(persistence=persistence, record=record)
    gw2.sync_sub_devices().result(10)
    expected = {c["node_id"]: c["device_id"] for c in svc.children(gid)}
    assert set(expected) == {"keep1", "keep2", "new1", "new2", "direct"}
    wait_until(lambda: {n: d.device_id for n, d in persistence.all_devices().items()} == expected,
               what="persistence matches the platform")
    assert persistence.get_version() == svc.version(gid)
    # the file on disk says the same (survives the next restart)
    on_disk = json.load(open(path, encoding="utf-8"))
    assert set(on_disk["sub_devices"]) == set(expected) and on_disk["version"] == svc.version(gid)
    # an up-to-date gateway gets nothing more
    before = len(emulator.trace(device_id=gid, direction="down", kind=topics.EVENTS_DOWN))
    gw2.sync_sub_devices().result(10)
    wait_until(lambda: len(_up_events(emulator, gid, "sub_device_sync_request")) >= 2, what="second sync sent")
    time.sleep(0.5)   # negative check: give a (wrong) answer the chance to arrive
    assert len(emulator.trace(device_id=gid, direction="down", kind=topics.EVENTS_DOWN)) == before


def test_compressed_batch_properties_reach_each_child(emulator, gateways):
    # doc/protocol.md §2.11: the gateway batch report may be gzipped too
    gw = gateways.make()
    gid = gw.get_device_id()
    children = emulator.service(SUB).add_children(gid, [f"gz{i}" for i in range(3)])
    gw.report_batch_properties([DeviceProperty(c["device_id"], [ServiceProperty("s", {"n": i})])
                                for i, c in enumerate(children)], compress=True).result(10)
    for i, c in enumerate(children):
        wait_until(lambda c=c, i=i: any(s["service_id"] == "s" and s["reported"]["properties"] == {"n": i}
                                        for s in emulator.shadow(c["device_id"])), what="child shadow")
    (entry,) = emulator.trace(device_id=gid, direction="up", kind=topics.GATEWAY_PROPERTIES_REPORT)
    assert entry.topic.endswith("?encoding=gzip") and entry.payload[:2] == b"\x1f\x8b"
