"""Parsing and serialisation of the gateway data classes (pure unit tests, no network)."""
from __future__ import annotations

import json

from iot_device_sdk_python.client.request.service_property import ServiceProperty
from iot_device_sdk_python.gateway.gtw_operate_sub_device_listener import (GtwAddSubDeviceRsp as ReexportAdd,
                                                                           GtwDelSubDeviceRsp as ReexportDel)
from iot_device_sdk_python.gateway.requests.add_sub_device_failed_reason import AddSubDeviceFailedReason
from iot_device_sdk_python.gateway.requests.added_sub_device_info import AddedSubDeviceInfo
from iot_device_sdk_python.gateway.requests.added_sub_device_info_rsp import AddedSubDeviceInfoRsp
from iot_device_sdk_python.gateway.requests.del_sub_device_failed_reason import DelSubDeviceFailedReason
from iot_device_sdk_python.gateway.requests.device_info import DeviceInfo
from iot_device_sdk_python.gateway.requests.device_property import DeviceProperty
from iot_device_sdk_python.gateway.requests.device_status import DeviceStatus
from iot_device_sdk_python.gateway.requests.gtw_add_sub_device_rsp import GtwAddSubDeviceRsp
from iot_device_sdk_python.gateway.requests.gtw_del_sub_device_rsp import GtwDelSubDeviceRsp
from iot_device_sdk_python.gateway.requests.scan_sub_device_notify import ScanSubDeviceNotify
from iot_device_sdk_python.gateway.requests.sub_devices_info import SubDevicesInfo
from iot_device_sdk_python.gateway.sub_devices_persistence import MemorySubDevicesPersistence

FULL_INFO = {"parent_device_id": "gw", "node_id": "n1", "device_id": "p_n1", "name": "child",
             "description": "d", "manufacturer_id": "acme", "model": "m-1", "product_id": "p",
             "fw_version": "1.0", "sw_version": "2.0", "status": "ONLINE"}


def test_device_info_keeps_every_field_including_manufacturer_and_model():
    info = DeviceInfo.from_dict(dict(FULL_INFO, extra="ignored"))
    assert info.manufacturer_id == "acme" and info.model == "m-1"
    assert info.to_dict() == FULL_INFO
    assert json.loads(json.dumps(info.to_dict())) == FULL_INFO


def test_device_info_bad_values_do_not_raise_and_missing_keys_are_kept():
    info = DeviceInfo(node_id="keep")
    info.convert_from_dict({"device_id": None, "fw_version": 3, "status": ["x"], "name": True})
    assert info.node_id == "keep" and info.device_id == "" and info.fw_version == "3"
    assert info.status == "" and info.name == ""
    assert DeviceInfo().convert_from_dict(None).to_dict()["node_id"] == ""
    assert DeviceInfo().convert_from_dict("garbage").device_id == ""


def test_added_sub_device_info_description_has_no_recursion():
    a = AddedSubDeviceInfo.from_dict({"node_id": "n", "product_id": "p", "description": "desc",
                                      "extension_info": {"k": 1}})
    assert a.description == "desc" and a.extension_info == {"k": 1}
    a.description = "other"
    assert a.to_dict() == {"parent_device_id": "", "node_id": "n", "device_id": "", "name": "",
                           "description": "other", "product_id": "p", "extension_info": {"k": 1}}
    assert AddedSubDeviceInfo.from_dict({"extension_info": "not a dict"}).extension_info is None


def test_add_response_parsing_and_json_serialisable():
    paras = {"successful_devices": [dict(FULL_INFO, extension_info={"a": "b"})],
             "failed_devices": [{"node_id": "n2", "product_id": "p", "error_code": "E1", "error_msg": "dup"}]}
    rsp = GtwAddSubDeviceRsp.from_dict(paras)
    assert isinstance(rsp.successful_devices[0], AddedSubDeviceInfoRsp)
    ok = rsp.successful_devices[0]
    assert ok.device_id == "p_n1" and ok.model == "m-1" and ok.extension_info == {"a": "b"}
    assert isinstance(rsp.add_sub_device_failed_reasons[0], AddSubDeviceFailedReason)
    assert rsp.add_sub_device_failed_reasons[0].error_msg == "dup"
    assert json.loads(json.dumps(rsp.to_dict())) == paras
    assert ReexportAdd is GtwAddSubDeviceRsp and ReexportDel is GtwDelSubDeviceRsp


def test_responses_with_null_or_malformed_lists_give_empty_lists():
    for paras in ({}, {"successful_devices": None, "failed_devices": None}, None, "x",
                  {"successful_devices": "x", "failed_devices": [1, None, "y"]}):
        add = GtwAddSubDeviceRsp.from_dict(paras)
        assert add.successful_devices == [] and add.add_sub_device_failed_reasons == []
        dele = GtwDelSubDeviceRsp.from_dict(paras)
        assert dele.successful_devices == [] and dele.failed_devices == []
        info = SubDevicesInfo.from_dict(paras)
        assert info.devices == [] and info.version == 0


def test_delete_response_parsing():
    paras = {"successful_devices": ["a", 5, "b"],
             "failed_devices": [{"device_id": "c", "error_code": "E", "error_msg": "no"}]}
    rsp = GtwDelSubDeviceRsp.from_dict(paras)
    assert rsp.successful_devices == ["a", "b"]
    assert isinstance(rsp.failed_devices[0], DelSubDeviceFailedReason) and rsp.failed_devices[0].device_id == "c"
    assert json.loads(json.dumps(rsp.to_dict()))["failed_devices"][0]["error_msg"] == "no"


def test_sub_devices_info_notification_parsing():
    info = SubDevicesInfo.from_dict({"devices": [FULL_INFO, None, {"device_id": "x"}], "version": "7"})
    assert info.version == 7 and [d.device_id for d in info.devices] == ["p_n1", "x"]
    assert SubDevicesInfo.from_dict({"devices": [], "version": "bad"}).version == 0
    assert json.loads(json.dumps(info.to_dict()))["devices"][0] == FULL_INFO


def test_device_property_and_status_to_dict():
    dp = DeviceProperty("c1", [ServiceProperty("s", {"t": 1})])
    assert dp.to_dict() == {"device_id": "c1", "services": [{"service_id": "s", "properties": {"t": 1},
                                                             "event_time": None}]}
    back = DeviceProperty().convert_from_dict(json.loads(json.dumps(dp.to_dict())))
    assert back.device_id == "c1" and back.services[0].properties == {"t": 1}
    st = DeviceStatus().convert_from_dict({"device_id": "c1", "status": "ONLINE"})
    assert st.to_dict() == {"device_id": "c1", "status": "ONLINE"}


def test_scan_notify_parsing():
    n = ScanSubDeviceNotify().convert_from_dict({"protocol": "zigbee", "channel": "c", "parent": "p",
                                                 "settings": {"x": 1}})
    assert (n.protocol, n.channel, n.parent, n.settings) == ("zigbee", "c", "p", {"x": 1})


def test_memory_persistence_versions():
    p = MemorySubDevicesPersistence()
    assert p.add_sub_devices(SubDevicesInfo([DeviceInfo(node_id="n1", device_id="p_n1")], 3)) == 0
    assert p.get_version() == 3 and p.get_sub_device("n1").device_id == "p_n1"
    assert p.get_sub_device_by_device_id("p_n1").node_id == "n1"
    # an older notification is refused, an equal one applied
    assert p.add_sub_devices(SubDevicesInfo([DeviceInfo(node_id="old")], 2)) == -1
    assert p.get_sub_device("old") is None
    assert p.delete_sub_devices(SubDevicesInfo([DeviceInfo(device_id="p_n1")], 3)) == 0
    assert p.get_sub_device("n1") is None and p.get_version() == 3
