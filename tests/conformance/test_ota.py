"""OTA upgrades, v1 and v2, with real HTTPS downloads (doc/protocol.md §3.1).

The application side uses IoTDA's batch-task API (CreateBatchTask / ShowBatchTask); packages come from the
emulator's upload endpoint (v1, hosted on "IoTDA") or from an object in its store (v2, an "OBS" package).
"""
from __future__ import annotations

import hashlib
import os
import time

import pytest
import requests

from tests.conformance._device import only_event
from tests.conformance.conftest import PRODUCT_ID


def _upload_v1(api, version, data, kind="firmwarePackage"):
    rsp = api.post(f"/emulator/ota/packages?version={version}&package_type={kind}&file_name=pkg-{version}.bin",
                   data=data, headers={"Content-Type": "application/octet-stream"})
    assert rsp.status_code == 201, rsp.text
    return rsp.json()["package_id"]


def _task(api, device_id, package_id, task_type="firmwareUpgrade"):
    rsp = api.post("/batchtasks", {"task_name": f"conformance-{package_id}", "task_type": task_type,
                                   "targets": [device_id], "document": {"package_id": package_id}})
    assert rsp.status_code == 201, rsp.text
    return rsp.json()["task_id"]


def _detail(api, task_id, want=None, timeout=5.0):
    deadline = time.monotonic() + timeout
    while True:
        rsp = api.get(f"/batchtasks/{task_id}")
        assert rsp.status_code == 200, rsp.text
        [detail] = rsp.json()["task_details"]
        if want is None or detail["status"] == want or time.monotonic() > deadline:
            return detail
        time.sleep(0.05)


def _query_and_report(dev, *, fw=None, sw=None):
    query = only_event(dev.expect_event("$ota", "version_query"))
    paras = {}
    if fw is not None:
        paras["fw_version"] = fw
    if sw is not None:
        paras["sw_version"] = sw
    dev.event_up("$ota", "version_report", paras)
    return query


def _progress(dev, result_code, progress, version, description="ok"):
    dev.event_up("$ota", "upgrade_progress_report", {"result_code": result_code, "progress": progress,
                                                     "version": version, "description": description})


def test_firmware_upgrade_v1_with_bearer_download(emu, api, make_device):
    dev = make_device()
    data = os.urandom(64 * 1024 + 17)
    package_id = _upload_v1(api, "2.0.0", data)
    task_id = _task(api, dev.id, package_id)
    query = _query_and_report(dev, fw="1.0.0")
    assert isinstance(query["paras"], dict)
    upgrade = only_event(dev.expect_event("$ota", "firmware_upgrade"))
    paras = upgrade["paras"]
    assert paras["version"] == "2.0.0"
    assert paras["file_size"] == len(data)
    assert paras["sign"] == hashlib.sha256(data).hexdigest()
    assert paras["url"].startswith("https://")
    assert paras["access_token"] and isinstance(paras.get("expires"), int)
    # the download: HTTPS verified with the emulator's CA, Authorization: Bearer {access_token}
    got = requests.get(paras["url"], headers={"Authorization": f"Bearer {paras['access_token']}"},
                       verify=emu.ca_file, timeout=10)
    assert got.status_code == 200
    assert len(got.content) == paras["file_size"]
    assert hashlib.sha256(got.content).hexdigest() == paras["sign"]
    assert requests.get(paras["url"], verify=emu.ca_file, timeout=10).status_code == 401
    wrong = requests.get(paras["url"], headers={"Authorization": "Bearer not-the-token"}, verify=emu.ca_file,
                         timeout=10)
    assert wrong.status_code in (401, 403)
    _progress(dev, 0, 50, "1.0.0")
    assert _detail(api, task_id)["status"] == "Processing"
    _progress(dev, 0, 100, "2.0.0")
    assert _detail(api, task_id, "Success")["status"] == "Success"


def test_v1_download_names_the_file_in_content_disposition(emu, api, make_device):
    dev = make_device()
    package_id = _upload_v1(api, "2.1.0", b"firmware bytes")
    _task(api, dev.id, package_id)
    _query_and_report(dev, fw="1.0.0")
    paras = only_event(dev.expect_event("$ota", "firmware_upgrade"))["paras"]
    got = requests.get(paras["url"], headers={"Authorization": f"Bearer {paras['access_token']}"},
                       verify=emu.ca_file, timeout=10)
    assert got.status_code == 200
    disposition = got.headers.get("Content-Disposition", "")
    assert disposition.startswith("attachment") and "filename=" in disposition


@pytest.mark.parametrize("kind", ["firmware", "software"])
def test_upgrade_v2_with_presigned_download(emu, api, make_device, kind):
    dev = make_device()
    data = os.urandom(32 * 1024)
    key = f"apps/{kind}-3.0.0.bin"
    # the customer's OBS object (put straight into the emulator's object store, as an upload to OBS would)
    emu.service("$ota").store.put_object("customer-bucket", key, data)
    rsp = api.post("/ota-upgrades/packages", {
        "package_type": f"{kind}Package", "version": "3.0.0", "product_id": PRODUCT_ID,
        "file_location": {"obs_location": {"region_name": "emulator", "bucket_name": "customer-bucket",
                                           "object_key": key}}})
    assert rsp.status_code == 201, rsp.text
    task_id = _task(api, dev.id, rsp.json()["package_id"], f"{kind}Upgrade")
    _query_and_report(dev, **{"fw" if kind == "firmware" else "sw": "2.9.9"})
    paras = only_event(dev.expect_event("$ota", f"{kind}_upgrade_v2"))["paras"]
    assert paras["version"] == "3.0.0" and paras["file_size"] == len(data)
    assert paras["sign"] == hashlib.sha256(data).hexdigest()
    assert "access_token" not in paras
    got = requests.get(paras["url"], verify=emu.ca_file, timeout=10)   # presigned: no token needed
    assert got.status_code == 200 and hashlib.sha256(got.content).hexdigest() == paras["sign"]
    _progress(dev, 0, 100, "3.0.0")
    assert _detail(api, task_id, "Success")["status"] == "Success"


def test_software_upgrade_v1(emu, api, make_device):
    dev = make_device()
    package_id = _upload_v1(api, "5.0.0", b"software bytes", kind="softwarePackage")
    _task(api, dev.id, package_id, "softwareUpgrade")
    _query_and_report(dev, sw="4.0.0")
    paras = only_event(dev.expect_event("$ota", "software_upgrade"))["paras"]
    got = requests.get(paras["url"], headers={"Authorization": f"Bearer {paras['access_token']}"},
                       verify=emu.ca_file, timeout=10)
    assert got.content == b"software bytes"


def test_failed_upgrade_is_reported_to_the_application(api, make_device):
    dev = make_device()
    task_id = _task(api, dev.id, _upload_v1(api, "6.0.0", b"pkg"))
    _query_and_report(dev, fw="1.0.0")
    dev.expect_event("$ota", "firmware_upgrade")
    _progress(dev, 7, 0, "1.0.0", "package verification failed")
    detail = _detail(api, task_id, "Fail")
    assert detail["status"] == "Fail" and detail["error"]["error_code"] == "7"


def test_device_already_on_the_target_version_gets_no_upgrade(api, make_device):
    dev = make_device()
    task_id = _task(api, dev.id, _upload_v1(api, "7.0.0", b"pkg"))
    _query_and_report(dev, fw="7.0.0")
    assert _detail(api, task_id, "Success")["status"] == "Success"
    with pytest.raises(TimeoutError):
        dev.expect_event("$ota", "firmware_upgrade", timeout=0.6)


def test_task_for_an_offline_device_starts_when_it_connects(api, make_device):
    dev = make_device(connect=False)
    task_id = _task(api, dev.id, _upload_v1(api, "8.0.0", b"pkg"))
    assert _detail(api, task_id)["status"] == "Waitting"   # IoTDA's spelling
    assert dev.connect() == 0
    _query_and_report(dev, fw="1.0.0")
    dev.expect_event("$ota", "firmware_upgrade")


def test_upgrade_of_a_sub_device_goes_through_its_gateway(emu, api, make_device):
    gw = make_device()
    child = api.add_device(gateway_id=gw.id)["device_id"]
    _task(api, child, _upload_v1(api, "9.0.0", b"child firmware"))
    # the child is offline until its gateway says otherwise: the task starts then
    gw.event_up("$sub_device_manager", "sub_device_update_status",
                {"device_statuses": [{"device_id": child, "status": "ONLINE"}]})
    down = f"$oc/devices/{gw.id}/sys/events/down"
    query = gw.expect(lambda m: m.topic == down and m.json()["services"][0]["event_type"] == "version_query").json()
    assert query["object_device_id"] == child
    gw.event_up("$ota", "version_report", {"fw_version": "1.0.0"}, object_device_id=child)
    upgrade = gw.expect(lambda m: m.topic == down
                        and m.json()["services"][0]["event_type"] == "firmware_upgrade").json()
    assert upgrade["object_device_id"] == child and upgrade["services"][0]["paras"]["version"] == "9.0.0"
