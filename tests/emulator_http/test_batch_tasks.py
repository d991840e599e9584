"""Batch tasks beyond creating upgrades, through the official application SDK's models: device batch types
(freeze → the device gets CONNACK 5; unfreeze from an uploaded CSV file; delete from an .xlsx file; create from a
CSV file), batch task files (multipart upload), need_confirm / confirm / stop / retry of an upgrade task seen by
connected devices, and OTA modules."""
from __future__ import annotations

import io
import json
import uuid
import zipfile

import pytest
from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException
from huaweicloudsdkcore.http.formdata import FormFile
from huaweicloudsdkiotda.v5 import (BatchTargets, ConfirmBatchTaskRequest, CreateBatchTask, CreateBatchTaskRequest,
                                    CreateOtaModule, CreateOtaModuleRequest, DeleteBatchTaskFileRequest,
                                    DeleteBatchTaskRequest, DeleteOtaModuleRequest, ListBatchTaskFilesRequest,
                                    ListOtaModulesRequest, RetryBatchTaskRequest, ShowBatchTaskRequest,
                                    ShowDeviceRequest, ShowOtaModuleRequest, StopBatchTaskRequest, UpdateOtaModule,
                                    UpdateOtaModuleRequest, UploadBatchTaskFileRequest,
                                    UploadBatchTaskFileRequestBody)

from tests.emulator.helpers import RawDevice
from tests.emulator_http.conftest import make_app_client
from tests.waiting import wait_until

PRODUCT = "batch_prod"


@pytest.fixture(autouse=True)
def product(emulator):
    if emulator.get_product(PRODUCT) is None:
        emulator.create_product(PRODUCT, "batch tests")


@pytest.fixture
def signed_client(emulator, base_url):
    """An SDK client whose requests are checked against app keys (file uploads are signed UNSIGNED-PAYLOAD)."""
    before = dict(emulator.app_keys)
    emulator.app_keys["batch-ak"] = "batch-sk"
    yield make_app_client(base_url, ak="batch-ak", sk="batch-sk")
    emulator.app_keys.clear()
    emulator.app_keys.update(before)


def _upload(client, tmp_path, name: str, data: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(data)
    with open(path, "rb") as fh:
        rsp = client.upload_batch_task_file(UploadBatchTaskFileRequest(
            body=UploadBatchTaskFileRequestBody(file=FormFile(fh))))
    assert rsp.file_name == name and rsp.upload_time
    return rsp.file_id


def _xlsx(rows) -> bytes:
    """A minimal Office Open XML workbook (inline strings), as a spreadsheet program would save it."""
    def cell(ref, text):
        return f'<c r="{ref}" t="inlineStr"><is><t>{text}</t></is></c>'
    sheet_rows = "".join(f'<row r="{i + 1}">' + "".join(cell(f"{chr(65 + j)}{i + 1}", v) for j, v in enumerate(r))
                         + "</row>" for i, r in enumerate(rows))
    ns = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as book:
        book.writestr("[Content_Types].xml", '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/'
                                             'package/2006/content-types"/>')
        book.writestr("xl/workbook.xml", f'<?xml version="1.0"?><workbook xmlns="{ns}"/>')
        book.writestr("xl/worksheets/sheet1.xml",
                      f'<?xml version="1.0"?><worksheet xmlns="{ns}"><sheetData>{sheet_rows}</sheetData></worksheet>')
    return out.getvalue()


def _details(client, task_id):
    rsp = client.show_batch_task(ShowBatchTaskRequest(task_id=task_id, limit=50))
    return rsp.batchtask, {d.target: d for d in rsp.task_details}


def test_freeze_unfreeze_and_delete_batches_act_on_devices(emulator, signed_client, tmp_path):
    client = signed_client
    rec = emulator.create_device(product_id=PRODUCT)
    device_id = rec["device_id"]
    dev = RawDevice(emulator, device_id, rec["secret"])
    assert dev.connect() == 0
    assert emulator.wait_online(device_id, timeout=10)

    task = client.create_batch_task(CreateBatchTaskRequest(body=CreateBatchTask(
        task_name="freeze_them", task_type="freezeDevices", targets=[device_id, "no_such_device"])))
    assert task.task_type == "freezeDevices" and task.status == "PartialSuccess"
    _, details = _details(client, task.task_id)
    assert details[device_id].status == "Success"
    assert details["no_such_device"].status == "Fail" and details["no_such_device"].error.error_code == "IOTDA.014000"
    assert dev.disconnected.wait(10)
    dev.close()
    assert RawDevice(emulator, device_id, rec["secret"]).connect() == "Not authorized"     # CONNACK 5
    assert client.show_device(ShowDeviceRequest(device_id=device_id)).status == "FROZEN"

    # unfreeze from an uploaded CSV file (first row: column names)
    file_id = _upload(client, tmp_path, "unfreeze.csv", f"device_id\n{device_id}\n".encode())
    assert file_id in [f.file_id for f in client.list_batch_task_files(ListBatchTaskFilesRequest()).files]
    task = client.create_batch_task(CreateBatchTaskRequest(body=CreateBatchTask(
        task_name="unfreeze_them", task_type="unfreezeDevices", document_source=file_id)))
    assert task.status == "Success" and task.targets == [device_id]
    again = RawDevice(emulator, device_id, rec["secret"])
    assert again.connect() == 0
    again.close()
    # unfreezing a device that is not frozen fails that target with IoTDA's code
    task = client.create_batch_task(CreateBatchTaskRequest(body=CreateBatchTask(
        task_name="unfreeze_again", task_type="unfreezeDevices", targets=[device_id])))
    assert task.status == "Fail"
    assert _details(client, task.task_id)[1][device_id].error.error_code == "IOTDA.014040"
    # StopBatchTask applies to upgrade tasks only
    with pytest.raises(ClientRequestException) as err:
        client.stop_batch_task(StopBatchTaskRequest(task_id=task.task_id, body=BatchTargets()))
    assert err.value.status_code == 400

    # delete from an .xlsx file
    xlsx_id = _upload(client, tmp_path, "delete.xlsx", _xlsx([["device_id"], [device_id]]))
    task = client.create_batch_task(CreateBatchTaskRequest(body=CreateBatchTask(
        task_name="delete_them", task_type="deleteDevices", document_source=xlsx_id)))
    assert task.status == "Success"
    assert emulator.get_device(device_id) is None
    client.delete_batch_task_file(DeleteBatchTaskFileRequest(file_id=xlsx_id))
    client.delete_batch_task_file(DeleteBatchTaskFileRequest(file_id=file_id))
    assert client.list_batch_task_files(ListBatchTaskFilesRequest()).files in ([], None) or all(
        f.file_id not in (xlsx_id, file_id) for f in client.list_batch_task_files(ListBatchTaskFilesRequest()).files)
    with pytest.raises(ClientRequestException) as err:
        client.delete_batch_task_file(DeleteBatchTaskFileRequest(file_id=xlsx_id))
    assert err.value.status_code == 404


def test_create_devices_from_a_csv_file(emulator, app_client, tmp_path):
    node = "n" + uuid.uuid4().hex[:8]
    csv_text = (f"node_id,product_id,device_name,secret\n{node},{PRODUCT},first,s3cret-one\n"
                f"{node},{PRODUCT},duplicate,s3cret-two\n{node}x,no_such_product,,\n")
    file_id = _upload(app_client, tmp_path, "create.csv", csv_text.encode())
    task = app_client.create_batch_task(CreateBatchTaskRequest(body=CreateBatchTask(
        task_name="create_them", task_type="createDevices", document_source=file_id)))
    device_id = f"{PRODUCT}_{node}"
    assert task.status == "PartialSuccess"
    rsp = app_client.show_batch_task(ShowBatchTaskRequest(task_id=task.task_id))
    assert [d.status for d in rsp.task_details] == ["Success", "Fail", "Fail"]
    assert json.loads(rsp.task_details[0].output)["device_id"] == device_id
    assert rsp.task_details[1].error.error_code == "IOTDA.014001"       # the same device twice
    assert rsp.task_details[2].error.error_code == "IOTDA.013000"       # unknown product
    dev = RawDevice(emulator, device_id, "s3cret-one")
    assert dev.connect() == 0
    dev.close()
    assert app_client.show_device(ShowDeviceRequest(device_id=device_id)).device_name == "first"
    emulator.delete_device(device_id)
    with pytest.raises(ClientRequestException) as err:
        _upload(app_client, tmp_path, "notes.txt", b"device_id\nx\n")
    assert err.value.status_code == 400


def _events(dev: RawDevice, event_type: str):
    """The ``$ota`` events of ``event_type`` the device has received so far (drains its queue into a list)."""
    while not dev.messages.empty():
        msg = dev.messages.get_nowait()
        dev.seen.append(msg)
    found = []
    for msg in dev.seen:
        if msg.topic.endswith("/sys/events/down"):
            for svc in json.loads(msg.payload).get("services", []):
                if svc.get("event_type") == event_type:
                    found.append(svc["paras"])
    return found


def _event_up(dev: RawDevice, service_id: str, event_type: str, paras: dict) -> None:
    dev.publish(f"$oc/devices/{dev.device_id}/sys/events/up",
                {"services": [{"service_id": service_id, "event_type": event_type, "paras": paras}]})


def test_need_confirm_confirm_stop_and_retry(emulator, app_client):
    ota = emulator.service("$ota")
    package_id = ota.upload_package(b"firmware 2.0", "2.0", kind="firmware")
    devices = {}
    for name in ("a", "b"):
        rec = emulator.create_device(product_id=PRODUCT)
        dev = RawDevice(emulator, rec["device_id"], rec["secret"])
        assert dev.connect() == 0
        dev.subscribe()
        dev.seen = []
        devices[name] = (rec["device_id"], dev)
    (a, dev_a), (b, dev_b) = devices["a"], devices["b"]
    try:
        task = app_client.create_batch_task(CreateBatchTaskRequest(body=CreateBatchTask(
            task_name="confirm_me", task_type="firmwareUpgrade", need_confirm=True, targets=[a, b],
            document={"package_ids": [package_id]})))
        assert task.need_confirm is True and task.status == "Waitting"
        assert ota.list_tasks(a) == [] and ota.list_tasks(b) == []      # nothing sent before the confirmation

        rsp = app_client.confirm_batch_task(ConfirmBatchTaskRequest(task_id=task.task_id,
                                                                    body=BatchTargets(targets=[a, "nobody"])))
        assert [(r.target, r.status) for r in rsp.targets] == [(a, "success"), ("nobody", "failure")]
        wait_until(lambda: _events(dev_a, "version_query"), timeout=10)
        view, details = _details(app_client, task.task_id)
        assert view.status == "Processing" and details[a].status == "Processing" and details[b].status == "Waitting"

        # stop the waiting one; a's upgrade goes on and fails
        rsp = app_client.stop_batch_task(StopBatchTaskRequest(task_id=task.task_id, body=BatchTargets(targets=[b])))
        assert [(r.target, r.status) for r in rsp.targets] == [(b, "success")]
        _event_up(dev_a, "$ota", "version_report", {"fw_version": "1.0"})
        wait_until(lambda: _events(dev_a, "firmware_upgrade"), timeout=10)
        _event_up(dev_a, "$ota", "upgrade_progress_report", {"result_code": 1, "progress": 0,
                                                                "version": "1.0", "description": "no space"})
        wait_until(lambda: _details(app_client, task.task_id)[1][a].status == "Fail", timeout=10)
        view, details = _details(app_client, task.task_id)
        assert details[b].status == "Stopped" and view.status == "Fail"
        assert view.task_progress.stopped == 1 and view.task_progress.fail == 1

        # retry {}: every Fail and Stopped sub task starts again
        rsp = app_client.retry_batch_task(RetryBatchTaskRequest(task_id=task.task_id, body=BatchTargets()))
        assert sorted((r.target, r.status) for r in rsp.targets) == sorted([(a, "success"), (b, "success")])
        wait_until(lambda: len(_events(dev_a, "version_query")) == 2 and _events(dev_b, "version_query"), timeout=10)
        assert _details(app_client, task.task_id)[0].status == "Processing"
        with pytest.raises(ClientRequestException) as err:     # only a finished task can be deleted
            app_client.delete_batch_task(DeleteBatchTaskRequest(task_id=task.task_id))
        assert err.value.status_code == 400

        # stop {}: a Processing sub task stops and ignores the device's later reports
        app_client.stop_batch_task(StopBatchTaskRequest(task_id=task.task_id, body=BatchTargets()))
        _event_up(dev_b, "$ota", "version_report", {"fw_version": "1.0"})
        wait_until(lambda: len(ota.versions(b)) == 1, timeout=10)
        view, details = _details(app_client, task.task_id)
        assert view.status == "Stopped" and {d.status for d in details.values()} == {"Stopped"}
        assert not _events(dev_b, "firmware_upgrade")
        for call, req in ((app_client.stop_batch_task, StopBatchTaskRequest),
                          (app_client.retry_batch_task, RetryBatchTaskRequest),
                          (app_client.confirm_batch_task, ConfirmBatchTaskRequest)):
            with pytest.raises(ClientRequestException) as err:
                call(req(task_id=task.task_id, body=BatchTargets()))
            assert err.value.status_code == 400
        app_client.delete_batch_task(DeleteBatchTaskRequest(task_id=task.task_id))
    finally:
        for device_id, dev in devices.values():
            dev.close()
            emulator.delete_device(device_id)
        ota.delete_package(package_id)


def test_ota_modules(emulator, app_client):
    created = app_client.create_ota_module(CreateOtaModuleRequest(body=CreateOtaModule(
        product_id=PRODUCT, module_name="mcu.main", alias_name="main-mcu", description="the main controller")))
    assert created.module_name == "mcu.main" and created.product_id == PRODUCT and created.create_time
    with pytest.raises(ClientRequestException) as err:
        app_client.create_ota_module(CreateOtaModuleRequest(body=CreateOtaModule(product_id=PRODUCT,
                                                                                 module_name="mcu.main")))
    assert err.value.status_code == 409
    with pytest.raises(ClientRequestException) as err:
        app_client.create_ota_module(CreateOtaModuleRequest(body=CreateOtaModule(product_id="no_such_product",
                                                                                 module_name="x")))
    assert err.value.status_code == 404
    listed = app_client.list_ota_modules(ListOtaModulesRequest(product_id=PRODUCT))
    assert [m.module_id for m in listed.modules] == [created.module_id] and listed.page.count == 1
    updated = app_client.update_ota_module(UpdateOtaModuleRequest(
        module_id=created.module_id, body=UpdateOtaModule(alias_name="renamed")))
    assert updated.alias_name == "renamed" and updated.description == "the main controller"
    assert app_client.show_ota_module(ShowOtaModuleRequest(module_id=created.module_id)).alias_name == "renamed"
    app_client.delete_ota_module(DeleteOtaModuleRequest(module_id=created.module_id))
    with pytest.raises(ClientRequestException) as err:
        app_client.show_ota_module(ShowOtaModuleRequest(module_id=created.module_id))
    assert err.value.status_code == 404
