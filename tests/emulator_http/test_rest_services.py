"""OTA packages + batch upgrade tasks, device-side rules, device info and device logs through the REST API:
the official application SDK (huaweicloudsdkiotda) drives the emulator, real SDK devices react."""
from __future__ import annotations

import hashlib
import json
import os
import threading
import uuid

import pytest
import requests
from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException
from huaweicloudsdkiotda.v5 import (ActionDeviceCommand, ChangeRuleStatusRequest, Cmd, ConditionGroup,
                                    CreateBatchTask, CreateBatchTaskRequest, CreateOtaPackage,
                                    CreateOtaPackageRequest, CreateRuleRequest, DailyTimerType,
                                    DeleteBatchTaskRequest, DeleteOtaPackageRequest, DeleteRuleRequest,
                                    DeviceDataCondition, DeviceSide, FileLocation, ListBatchTasksRequest,
                                    ListOtaPackageInfoRequest, ListRulesRequest, ObsLocation, PropertyFilter, Rule,
                                    RuleAction, RuleCondition, RuleStatus, ShowBatchTaskRequest, ShowDeviceRequest,
                                    ShowOtaPackageRequest, ShowRuleRequest, SimpleTimerType, UpdateRuleRequest)

from iot_device_sdk_python.client.listener.command_listener import CommandListener
from iot_device_sdk_python.client.request.device_base_info import DeviceBaseInfo
from iot_device_sdk_python.client.request.service_property import ServiceProperty
from iot_device_sdk_python.ota.ota_listener import OTAListener
from iot_device_sdk_python.ota.ota_package_info_v2 import OTAPackageInfoV2
from iot_device_sdk_python.ota.ota_service import OTAService
from iot_device_sdk_python.protocol import codec
from iotda_emulator.objects import ObjectStore
from tests.emulator_http.conftest import wait_until

PACKAGE = os.urandom(48 * 1024 + 7)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Upgrader(OTAListener):
    """Reports ``current`` on a version query; downloads every package with ``ota.download_package`` and
    reports success (progress 100, new version) once the file is there."""

    def __init__(self, device, target_dir, ca_file, current="1.0"):
        self.ota: OTAService = device.get_ota_service()
        self.target_dir, self.ca_file, self.current = target_dir, ca_file, current
        self.packages, self.installed = [], None

    def on_query_version(self, queryInfo):
        self.ota.report_version(fw_version=self.current, sw_version=self.current)

    def on_receive_package_info(self, pkg):
        self.packages.append(pkg)

        def finished(f):
            if f.exception() is None:
                with open(f.result(), "rb") as fh:
                    self.installed = fh.read()
                self.current = pkg.version
                self.ota.report_ota_status(OTAService.OTA_CODE_SUCCESS, pkg.version, 100, "upgrade success")

        self.ota.download_package(pkg, self.target_dir, self.ca_file, timeout=10).add_done_callback(finished)


OCTETS = {"Content-Type": "application/octet-stream"}   # the package file, not a form (CSRF guard)


def _upload(base_url, data, version, package_type="firmwarePackage", **params):
    resp = requests.post(f"{base_url}/emulator/ota/packages", headers=OCTETS, data=data, timeout=10,
                         params=dict(version=version, package_type=package_type, **params))
    assert resp.status_code == 201, resp.text
    return resp.json()


def _upgrader(device, emulator, tmp_path):
    listener = Upgrader(device, str(tmp_path / "pkgs"), emulator.ca_file)
    device.get_ota_service().set_ota_listener(listener)
    return listener


def _wait_batch(app_client, task_id, status, timeout=20):
    return wait_until(lambda: (lambda r: r if r.batchtask.status == status else None)(
        app_client.show_batch_task(ShowBatchTaskRequest(task_id=task_id))), timeout=timeout, interval=0.1)


# ---- OTA ---------------------------------------------------------------------------------------------

def test_uploaded_package_and_batch_task_upgrade_a_device(emulator, app_client, make_device, tmp_path, base_url):
    uploaded = _upload(base_url, PACKAGE, "2.0", file_name="fw-2.0.bin", product_id="ota_prod",
                       custom_info="hello")
    assert uploaded["file_size"] == len(PACKAGE) and uploaded["sign"] == sha256(PACKAGE)
    package_id = uploaded["package_id"]
    device = make_device(emulator)
    listener = _upgrader(device, emulator, tmp_path)
    missing = "no_such_" + uuid.uuid4().hex[:8]

    created = app_client.create_batch_task(CreateBatchTaskRequest(body=CreateBatchTask(
        task_name="fw to 2.0", task_type="firmwareUpgrade", targets=[device.get_device_id(), missing],
        document={"package_id": package_id})))
    assert created.task_type == "firmwareUpgrade" and created.task_progress.total == 2

    shown = _wait_batch(app_client, created.task_id, "PartialSuccess")
    assert listener.installed == PACKAGE and listener.packages[0].custom_info == "hello"
    details = {d.target: d for d in shown.task_details}
    assert details[device.get_device_id()].status == "Success"
    output = json.loads(details[device.get_device_id()].output)
    assert output["progress"] == 100 and output["version"] == "2.0"
    assert details[missing].status == "Fail" and details[missing].error.error_code == "IOTDA.014000"
    assert (shown.batchtask.task_progress.success, shown.batchtask.task_progress.fail) == (1, 1)
    only_failed = app_client.show_batch_task(ShowBatchTaskRequest(task_id=created.task_id, task_detail_status="Fail"))
    assert [d.target for d in only_failed.task_details] == [missing]

    listed = app_client.list_batch_tasks(ListBatchTasksRequest(task_type="firmwareUpgrade", limit=50))
    assert created.task_id in [t.task_id for t in listed.batchtasks]
    app_client.delete_batch_task(DeleteBatchTaskRequest(task_id=created.task_id))
    with pytest.raises(ClientRequestException) as info:
        app_client.show_batch_task(ShowBatchTaskRequest(task_id=created.task_id))
    assert info.value.status_code == 404


def test_obs_package_crud_and_v2_software_upgrade(emulator, app_client, make_device, tmp_path):
    data = os.urandom(20 * 1024)
    key = f"sw/{uuid.uuid4().hex[:6]}/app-3.1.bin"
    ObjectStore.for_core(emulator.core).put_object("my-obs-bucket", key, data)
    product = "p" + uuid.uuid4().hex[:8]
    pkg = app_client.create_ota_package(CreateOtaPackageRequest(body=CreateOtaPackage(
        package_type="softwarePackage", product_id=product, version="3.1", description="app",
        support_source_versions=["1.0"],
        file_location=FileLocation(obs_location=ObsLocation(region_name="cn-north-4", bucket_name="my-obs-bucket",
                                                            object_key=key)))))
    shown = app_client.show_ota_package(ShowOtaPackageRequest(package_id=pkg.package_id))
    assert (shown.version, shown.package_type, shown.product_id) == ("3.1", "softwarePackage", product)
    assert shown.file_location.obs_location.object_key == key and shown.file_location.obs_location.sign == \
        sha256(data)
    listed = app_client.list_ota_package_info(ListOtaPackageInfoRequest(package_type="softwarePackage",
                                                                        product_id=product))
    assert [p.package_id for p in listed.packages] == [pkg.package_id] and listed.page.count == 1

    device = make_device(emulator)
    listener = _upgrader(device, emulator, tmp_path)
    task = app_client.create_batch_task(CreateBatchTaskRequest(body=CreateBatchTask(
        task_name="sw", task_type="softwareUpgrade", targets=[device.get_device_id()],
        document={"package_ids": [pkg.package_id]})))
    _wait_batch(app_client, task.task_id, "Success")
    assert listener.installed == data and isinstance(listener.packages[0], OTAPackageInfoV2)

    app_client.delete_ota_package(DeleteOtaPackageRequest(package_id=pkg.package_id))
    with pytest.raises(ClientRequestException) as info:
        app_client.show_ota_package(ShowOtaPackageRequest(package_id=pkg.package_id))
    assert info.value.status_code == 404
    assert emulator.service("$ota").package(pkg.package_id) is None


# ---- device-side rules ---------------------------------------------------------------------------------

def _data_rule(device_id, threshold, status=None, name="too hot"):
    return Rule(name=name, rule_type="DEVICE_SIDE", status=status,
                condition_group=ConditionGroup(logic="and", conditions=[RuleCondition(
                    type="DEVICE_DATA", device_property_condition=DeviceDataCondition(
                        device_id=device_id, filters=[PropertyFilter(path="sensor/t", operator=">",
                                                                     value=str(threshold))]))]),
                actions=[RuleAction(type="DEVICE_CMD", device_command=ActionDeviceCommand(
                    device_id=device_id, cmd=Cmd(service_id="alarm", command_name="ring",
                                                 command_body={"level": 3})))],
                device_side=DeviceSide(device_ids=[device_id]))


def test_device_side_rule_reaches_device_and_fires(emulator, app_client, make_device):
    device = make_device(emulator, enable_rule_manage=True)
    device_id = device.get_device_id()
    got, fired = [], threading.Event()

    class Listener(CommandListener):
        def on_command(self, request_id, service_id, command_name, paras):
            got.append((service_id, command_name, paras))
            fired.set()

    device.get_client().set_command_listener(Listener())
    rules_svc = device.get_rule_manage_service()
    created = app_client.create_rule(CreateRuleRequest(body=_data_rule(device_id, 30)))
    assert created.rule_type == "DEVICE_SIDE" and created.status == "active"
    stored = emulator.service("$device_rule").get_rule(device_id, created.rule_id)
    assert stored["conditions"] == [{"type": "DEVICE_DATA", "deviceInfo": {"deviceId": device_id, "path": "sensor/t"},
                                     "operator": ">", "value": "30"}]
    assert stored["actions"][0]["command"] == {"serviceId": "alarm", "commandName": "ring",
                                               "commandBody": {"level": 3}}
    wait_until(lambda: rules_svc.get_rule(created.rule_id))

    device.get_client().report_properties([ServiceProperty("sensor", {"t": 20})])
    device.get_client().report_properties([ServiceProperty("sensor", {"t": 31})])
    assert fired.wait(10)
    assert got == [("alarm", "ring", {"level": 3})]

    # update (new threshold) reaches the device as a new version
    app_client.update_rule(UpdateRuleRequest(rule_id=created.rule_id, body=_data_rule(device_id, 50, name="hotter")))
    wait_until(lambda: (lambda r: r is not None and r.conditions[0].value == "50")(rules_svc.get_rule(created.rule_id)))
    assert app_client.show_rule(ShowRuleRequest(rule_id=created.rule_id)).name == "hotter"

    # deactivate: the device drops it; ListRules still lists it as inactive
    changed = app_client.change_rule_status(ChangeRuleStatusRequest(rule_id=created.rule_id,
                                                                    body=RuleStatus(status="inactive")))
    assert changed.status == "inactive"
    wait_until(lambda: rules_svc.get_rule(created.rule_id) is None)
    listed = app_client.list_rules(ListRulesRequest(rule_type="DEVICE_SIDE", limit=50))
    assert {r.rule_id: r.status for r in listed.rules}[created.rule_id] == "inactive"

    app_client.delete_rule(DeleteRuleRequest(rule_id=created.rule_id))
    assert emulator.service("$device_rule").get_rule(device_id, created.rule_id) is None
    with pytest.raises(ClientRequestException) as info:
        app_client.show_rule(ShowRuleRequest(rule_id=created.rule_id))
    assert info.value.status_code == 404


def test_timer_conditions_are_translated_for_devices(emulator, app_client):
    device_id = emulator.create_device()["device_id"]
    body = Rule(name="timers", rule_type="DEVICE_SIDE", condition_group=ConditionGroup(logic="or", conditions=[
        RuleCondition(type="DAILY_TIMER", daily_timer_condition=DailyTimerType(time="07:30", days_of_week="2,3")),
        RuleCondition(type="SIMPLE_TIMER", simple_timer_condition=SimpleTimerType(
            start_time="20300102T030405Z", repeat_interval=60, repeat_count=3))]),
        actions=[RuleAction(type="DEVICE_CMD", device_command=ActionDeviceCommand(
            device_id=device_id, cmd=Cmd(service_id="s", command_name="c")))],
        device_side=DeviceSide(device_ids=[device_id]))
    created = app_client.create_rule(CreateRuleRequest(body=body))
    stored = emulator.service("$device_rule").get_rule(device_id, created.rule_id)
    assert stored["logic"] == "or" and stored["ruleName"] == "timers"
    assert stored["conditions"] == [
        {"type": "DAILY_TIMER", "time": "07:30", "daysOfWeek": "2,3"},
        {"type": "SIMPLE_TIMER", "startTime": "2030-01-02 03:04:05", "repeatInterval": 60, "repeatCount": 3}]
    app_client.delete_rule(DeleteRuleRequest(rule_id=created.rule_id))
    emulator.delete_device(device_id)


# ---- device info and logs --------------------------------------------------------------------------------

def test_show_device_has_reported_versions_and_status(emulator, app_client, make_device):
    device = make_device(emulator)
    device_id = device.get_device_id()
    info = DeviceBaseInfo()
    info.fw_version, info.sw_version = "fw-7.1", "sw-2.2"
    device.get_client().report_device_info(info).result(10)
    emulator.service("$sdk_info").wait_info(device_id, timeout=10)
    shown = app_client.show_device(ShowDeviceRequest(device_id=device_id))
    assert (shown.fw_version, shown.sw_version, shown.status) == ("fw-7.1", "sw-2.2", "ONLINE")
    assert shown.device_sdk_version.startswith("Python_v")
    device.get_client().close()
    assert emulator.wait_offline(device_id, timeout=10)
    assert app_client.show_device(ShowDeviceRequest(device_id=device_id)).status == "OFFLINE"


def test_log_endpoints(emulator, make_device, base_url):
    device = make_device(emulator)
    device_id = device.get_device_id()
    log_svc = device.get_device_log_service()
    log_svc.report_device_log(str(codec.now_ms()), "DEVICE_STATUS", "battery ok").result(10)
    # wait for this very entry: the SDK's own "connect complete" log alone would end a wait for any entry,
    # and the PUBACK comes from the broker before the platform stored the report
    wait_until(lambda: any(e["content"] == "battery ok" for e in emulator.service("$log").logs(device_id)),
               timeout=10, what="the 'battery ok' log stored")
    logs = requests.get(f"{base_url}/emulator/devices/{device_id}/logs", params={"type": "DEVICE_STATUS"},
                        timeout=10).json()
    mine = [e for e in logs["logs"] if e["content"] == "battery ok"]   # the SDK also logs its connection
    assert len(mine) == 1 and mine[0]["event_type"] == "log_report" and mine[0]["type"] == "DEVICE_STATUS"
    assert logs["count"] == len(logs["logs"])
    last = requests.get(f"{base_url}/emulator/devices/{device_id}/logs", params={"limit": 1}, timeout=10).json()
    assert len(last["logs"]) == 1

    resp = requests.put(f"{base_url}/emulator/devices/{device_id}/log-config", json={"switch": "off"}, timeout=10)
    assert resp.status_code == 200 and resp.json()["event_id"]
    wait_until(lambda: not log_svc.can_report_log())
    configs = requests.get(f"{base_url}/emulator/devices/{device_id}/log-config", timeout=10).json()["configs"]
    assert [c["switch"] for c in configs] == ["off"]

    offline = emulator.create_device()["device_id"]
    resp = requests.put(f"{base_url}/emulator/devices/{offline}/log-config", json={"switch": "on"}, timeout=10)
    assert resp.status_code == 409 and resp.json()["error_code"] == "IOTDA.014016"
    resp = requests.get(f"{base_url}/emulator/devices/nobody_{uuid.uuid4().hex[:6]}/logs", timeout=10)
    assert resp.status_code == 404 and resp.json()["error_code"] == "IOTDA.014000"
    emulator.delete_device(offline)


# ---- bad input -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("method,path,body,status,code", [
    ("post", "/batchtasks", b"{not json", 400, "IOTDA.000008"),
    ("post", "/rules", b"[1,2]", 400, "IOTDA.000008"),
    ("post", "/ota-upgrades/packages", b"", 400, "IOTDA.000008"),
    ("post", "/batchtasks", {"task_name": "x", "task_type": "createCommands", "targets": ["a"]}, 400, "IOTDA.000006"),
    ("post", "/batchtasks", {"task_name": "x", "task_type": "firmwareUpgrade", "targets": ["a"],
                             "document": {"package_id": "nope"}}, 404, "IOTDA.000006"),
    ("post", "/batchtasks", {"task_name": "x", "task_type": "firmwareUpgrade", "targets": "a"}, 400, "IOTDA.000006"),
    ("get", "/batchtasks/unknown-task", None, 404, "IOTDA.000006"),
    ("get", "/batchtasks?limit=abc", None, 400, "IOTDA.000006"),
    ("get", "/ota-upgrades/packages/unknown", None, 404, "IOTDA.000006"),
    ("delete", "/ota-upgrades/packages/unknown", None, 404, "IOTDA.000006"),
    ("post", "/ota-upgrades/packages", {"package_type": "firmwarePackage", "product_id": "p", "version": "1",
                                        "file_location": {"obs_location": {"bucket_name": "nob",
                                                                           "object_key": "k"}}}, 400, "IOTDA.000006"),
    ("get", "/rules/unknown", None, 404, "IOTDA.014101"),
    ("put", "/rules/unknown/status", {"status": "active"}, 404, "IOTDA.014101"),
    ("put", "/rules/unknown/status", {"status": "maybe"}, 400, "IOTDA.000006"),
    ("post", "/rules", {"name": "r", "rule_type": "DEVICE_LINKAGE"}, 400, "IOTDA.000006"),
    ("post", "/rules", {"name": "r", "rule_type": "DEVICE_SIDE", "condition_group": {"conditions": [
        {"type": "DEVICE_DATA", "device_property_condition": {"device_id": "d1", "filters": [
            {"path": "s/p", "operator": "between", "value": "oops"}]}}]},
        "actions": [{"type": "DEVICE_CMD", "device_command": {"cmd": {"command_name": "c"}}}]}, 400, "IOTDA.000006"),
    ("post", "/rules", {"name": "r", "rule_type": "DEVICE_SIDE", "condition_group": {"conditions": [
        {"type": "DEVICE_DATA", "device_property_condition": {"device_id": "ghost_device", "filters": [
            {"path": "s/p", "operator": ">", "value": "1"}]}}]},
        "actions": [{"type": "DEVICE_CMD", "device_command": {"cmd": {"command_name": "c"}}}]}, 404, "IOTDA.014000"),
])
def test_bad_requests_get_iotda_errors(base_url, method, path, body, status, code):
    kwargs = {"timeout": 10}
    if isinstance(body, bytes):
        kwargs["data"] = body
        kwargs["headers"] = {"Content-Type": "application/json"}
    elif body is not None:
        kwargs["json"] = body
    resp = getattr(requests, method)(f"{base_url}/v5/iot/proj{path}", **kwargs)
    assert resp.status_code == status, resp.text
    assert resp.json()["error_code"] == code and resp.json()["error_msg"]


def test_bad_uploads_are_refused(base_url):
    resp = requests.post(f"{base_url}/emulator/ota/packages", headers=OCTETS, data=b"x",
                         params={"package_type": "firmwarePackage"},
                         timeout=10)
    assert resp.status_code == 400 and "version" in resp.json()["error_msg"]
    resp = requests.post(f"{base_url}/emulator/ota/packages", headers=OCTETS, data=b"", params={"version": "1"},
                         timeout=10)
    assert resp.status_code == 400
    resp = requests.post(f"{base_url}/emulator/ota/packages", headers=OCTETS, data=b"x", timeout=10,
                         params={"version": "1", "package_type": "modulePackage"})
    assert resp.status_code == 400
    resp = requests.post(f"{base_url}/emulator/ota/packages", headers=OCTETS, data=b"x", timeout=10,
                         params={"version": "1", "file_name": "../evil"})
    assert resp.status_code == 400
