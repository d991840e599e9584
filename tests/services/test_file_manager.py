"""File manager end to end: emulator $file_manager + object store, real SDK FileManagerService."""
from __future__ import annotations

import hashlib
import os
import threading

import pytest

from iot_device_sdk_python.filemanager.file_manager_listener import FileManagerListener
from iot_device_sdk_python.filemanager.file_manager_service import FileTransferError
from iot_device_sdk_python.transfer import http_transfer


@pytest.fixture
def fm_env(emulator, make_device):
    device = make_device(emulator)
    return device, device.get_file_manager_service(), emulator.service("$file_manager")


def test_managed_upload_then_download(fm_env, emulator, tmp_path):
    device, fms, emu_fm = fm_env
    dev_id = device.get_device_id()
    src = tmp_path / "report.log"
    content = os.urandom(150_000)
    src.write_bytes(content)
    res = fms.transfer_upload("report.log", str(src), ca_file=emulator.ca_file).result(30)
    assert res.status_code == 200 and res.object_name == "report.log"
    assert emu_fm.get_file(dev_id, "report.log") == content
    req = emu_fm.url_requests(dev_id)[0]
    assert req["file_attributes"] == {"hash_code": hashlib.sha256(content).hexdigest(), "size": len(content)}
    rep = emu_fm.wait_result(dev_id, "upload", "report.log")
    assert (rep["result_code"], rep["status_code"]) == (0, 200)

    dst = tmp_path / "down" / "copy.log"
    res = fms.transfer_download("report.log", str(dst), ca_file=emulator.ca_file).result(30)
    assert dst.read_bytes() == content and res.sha256 == hashlib.sha256(content).hexdigest()
    rep = emu_fm.wait_result(dev_id, "download", "report.log")
    assert rep["result_code"] == 0

    # the same name can be uploaded again (upstream ignored a known name forever)
    src.write_bytes(b"second version")
    fms.transfer_upload("report.log", str(src), ca_file=emulator.ca_file).result(30)
    assert emu_fm.get_file(dev_id, "report.log") == b"second version"


def test_upload_with_wrong_declared_size_is_refused_and_reported(fm_env, emulator, tmp_path):
    device, fms, emu_fm = fm_env
    dev_id = device.get_device_id()
    src = tmp_path / "a.bin"
    src.write_bytes(b"0123456789")
    attrs = {"hash_code": hashlib.sha256(b"0123456789").hexdigest(), "size": 11}
    fut = fms.transfer_upload("a.bin", str(src), attrs, ca_file=emulator.ca_file)
    with pytest.raises(FileTransferError) as info:
        fut.result(30)
    assert info.value.status_code == 400
    # the caller's attributes were sent exactly as given
    assert emu_fm.url_requests(dev_id)[0]["file_attributes"] == attrs
    rep = emu_fm.wait_result(dev_id, "upload", "a.bin")
    assert (rep["result_code"], rep["status_code"]) == (1, 400)
    assert emu_fm.get_file(dev_id, "a.bin") is None


def test_download_hash_mismatch_removes_file_and_reports(fm_env, emulator, tmp_path):
    device, fms, emu_fm = fm_env
    dev_id = device.get_device_id()
    emu_fm.put_file(dev_id, "cfg.json", b'{"a":1}')
    dst = tmp_path / "cfg.json"
    fut = fms.transfer_download("cfg.json", str(dst), {"hash_code": "0" * 64, "size": 7}, ca_file=emulator.ca_file)
    with pytest.raises(FileTransferError) as info:
        fut.result(30)
    assert info.value.kind == http_transfer.TransferError.CHECK
    assert not dst.exists() and os.listdir(tmp_path) == []
    assert emu_fm.wait_result(dev_id, "download", "cfg.json")["result_code"] == 1


def test_expired_url_reports_failure(fm_env, emulator, tmp_path):
    device, fms, emu_fm = fm_env
    dev_id = device.get_device_id()
    emu_fm.put_file(dev_id, "old.txt", b"data")
    emu_fm.expire = 0
    try:
        fut = fms.transfer_download("old.txt", str(tmp_path / "old.txt"), ca_file=emulator.ca_file)
        with pytest.raises(FileTransferError) as info:
            fut.result(30)
    finally:
        emu_fm.expire = 3600
    assert info.value.status_code == 403
    rep = emu_fm.wait_result(dev_id, "download", "old.txt")
    assert (rep["result_code"], rep["status_code"]) == (1, 403)


class ManualListener(FileManagerListener):
    """Upstream style: the application transfers and reports itself."""

    def __init__(self, fms, paths, ca_file):
        self.fms, self.paths, self.ca_file = fms, paths, ca_file
        self.infos = []
        self.done = threading.Event()

    def on_upload_url(self, url_info):
        self.infos.append(url_info)
        status = http_transfer.upload(url_info.url, self.paths[url_info.object_name], ca_file=self.ca_file)
        self.fms.report_upload_result(url_info.object_name, 0, status)
        self.done.set()

    def on_download_url(self, url_info):
        self.infos.append(url_info)
        self.done.set()


def test_upstream_listener_api(fm_env, emulator, tmp_path):
    device, fms, emu_fm = fm_env
    dev_id = device.get_device_id()
    src = tmp_path / "up.txt"
    src.write_bytes(b"hello iotda")
    listener = ManualListener(fms, {"up.txt": str(src)}, emulator.ca_file)
    fms.set_listener(listener)
    fms.upload_file("up.txt", str(src))
    assert listener.done.wait(15)
    info = listener.infos[0]
    assert info.object_name == "up.txt" and info.expire == 3600 and info.bucket_name
    assert info.file_attributes == {"hash_code": hashlib.sha256(b"hello iotda").hexdigest(), "size": 11}
    assert emu_fm.wait_result(dev_id, "upload", "up.txt")["result_code"] == 0
    assert emu_fm.get_file(dev_id, "up.txt") == b"hello iotda"
    assert fms.upload_file_dict == {"up.txt": str(src)}
