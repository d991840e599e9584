"""OTA end to end: emulator $ota tasks + object store, real SDK OTAService and its download helper."""
from __future__ import annotations

import logging
import os
import threading

import pytest

from iot_device_sdk_python.ota.ota_listener import OTAListener
from iot_device_sdk_python.ota.ota_package_info import OTAPackageInfo
from iot_device_sdk_python.ota.ota_package_info_v2 import OTAPackageInfoV2
from iot_device_sdk_python.ota.ota_service import OTADownloadError, OTAService

PACKAGE = os.urandom(256 * 1024 + 123)   # several progress steps, not a multiple of the chunk size


class AutoUpgrader(OTAListener):
    """Answers version queries with ``current`` and downloads + "installs" every package it gets."""

    def __init__(self, device, target_dir, ca_file, current="1.0", **download_kwargs):
        self.ota: OTAService = device.get_ota_service()
        self.target_dir = target_dir
        self.ca_file = ca_file
        self.current = current
        self.kwargs = download_kwargs
        self.queries, self.packages, self.futures = [], [], []
        self.threads = set()
        self.installed = None
        self.done = threading.Event()

    def on_query_version(self, queryInfo):
        self.threads.add(threading.current_thread().name)
        self.queries.append(queryInfo)
        self.ota.report_version(fw_version=self.current, sw_version=self.current)

    def on_receive_package_info(self, pkg):
        self.threads.add(threading.current_thread().name)
        self.packages.append(pkg)
        fut = self.ota.download_package(pkg, self.target_dir, self.ca_file, timeout=10, **self.kwargs)
        self.futures.append(fut)

        def finished(f):
            if f.exception() is None:
                with open(f.result(), "rb") as fh:
                    self.installed = fh.read()
                self.current = pkg.version
                self.ota.report_ota_status(OTAService.OTA_CODE_SUCCESS, pkg.version, 100, "upgrade success")
            self.done.set()

        fut.add_done_callback(finished)


@pytest.fixture
def ota_env(emulator, make_device, tmp_path):
    device = make_device(emulator)
    listener = AutoUpgrader(device, str(tmp_path / "pkgs"), emulator.ca_file)
    device.get_ota_service().set_ota_listener(listener)
    svc = emulator.service("$ota")
    return device, listener, svc, tmp_path / "pkgs"


def _dir_files(path):
    return sorted(os.listdir(path)) if os.path.isdir(path) else []


@pytest.mark.parametrize("v2", [False, True], ids=["v1-token", "v2-presigned"])
def test_full_upgrade_flow(ota_env, emulator, v2, caplog):
    device, listener, svc, pkg_dir = ota_env
    caplog.set_level(logging.DEBUG)
    package_id = svc.upload_package(PACKAGE, "2.0", file_name="fw-2.0.bin")
    task_id = svc.start_task(device.get_device_id(), package_id, "firmware", v2=v2)
    task = svc.wait_task(task_id, timeout=30)
    assert task["status"] == "success", task
    assert listener.installed == PACKAGE
    assert _dir_files(pkg_dir) == ["fw-2.0.bin"]
    # the device answered the query with its version and the query carried the task id
    assert listener.queries[0].task_id == task_id
    assert task["versions"][0]["fw_version"] == "1.0"
    pkg = listener.packages[0]
    assert isinstance(pkg, OTAPackageInfoV2 if v2 else OTAPackageInfo)
    # every field parsed, v2 included (upstream dropped sign/file_size/... for v2)
    assert (pkg.version, pkg.file_size, pkg.file_name, pkg.task_id) == ("2.0", len(PACKAGE), "fw-2.0.bin", task_id)
    assert pkg.sign == svc.package(package_id)["sign"]
    # progress reported while downloading: 0 first, increasing, intermediate values, then 100 success
    progress = [p["progress"] for p in task["progress"]]
    assert progress[0] == 0 and progress[-1] == 100
    assert progress == sorted(progress)
    assert any(0 < p < 100 for p in progress)
    assert all(p["result_code"] == 0 for p in task["progress"])
    # callbacks ran on the device's dispatcher, not on paho's network thread
    assert not any("paho" in name.lower() or name == "MqttThread" for name in listener.threads)
    # no token and no presigned query in any log record
    secret_bits = [pkg.access_token] if not v2 else [pkg.url.split("?", 1)[1]]
    for rec in caplog.records:
        text = rec.getMessage()
        for bit in secret_bits:
            assert bit not in text, f"secret leaked in log: {rec.name}"


def test_corrupted_package_reports_check_fail(ota_env):
    device, listener, svc, pkg_dir = ota_env
    package_id = svc.upload_package(PACKAGE, "2.1")
    task_id = svc.start_task(device.get_device_id(), package_id, sign="0" * 64)
    task = svc.wait_task(task_id, timeout=30)
    assert task["status"] == "failed"
    assert task["result"]["result_code"] == OTAService.OTA_CODE_CHECK_FAIL
    assert listener.done.wait(10)
    with pytest.raises(OTADownloadError) as info:
        listener.futures[0].result(5)
    assert info.value.result_code == 7
    assert listener.installed is None
    assert _dir_files(pkg_dir) == []       # neither the file nor a .part is left


def test_cut_download_is_resumed_with_range(ota_env):
    device, listener, svc, pkg_dir = ota_env
    package_id = svc.upload_package(PACKAGE, "2.2", file_name="fw-2.2.bin")
    svc.store.cut_next_download(after_bytes=100_000, key_contains=package_id)
    task_id = svc.start_task(device.get_device_id(), package_id, v2=True)
    task = svc.wait_task(task_id, timeout=30)
    assert task["status"] == "success", task
    assert listener.installed == PACKAGE
    statuses = [r["status"] for r in svc.store.requests if package_id in r["key"]]
    assert statuses == [200, 206]          # one cut full GET, then one ranged GET for the rest


@pytest.mark.parametrize("v2", [False, True], ids=["v1-token", "v2-presigned"])
def test_expired_token_or_url_reports_failure(ota_env, v2):
    device, listener, svc, pkg_dir = ota_env
    package_id = svc.upload_package(PACKAGE, "2.3")
    task_id = svc.start_task(device.get_device_id(), package_id, v2=v2, expires=0)
    task = svc.wait_task(task_id, timeout=30)
    assert task["status"] == "failed"
    assert task["result"]["result_code"] == OTAService.OTA_CODE_DOWNLOAD_TIMEOUT
    refused = [r["status"] for r in svc.store.requests if package_id in r["key"]]
    assert refused and set(refused) == {401 if not v2 else 403}
    assert _dir_files(pkg_dir) == []


def test_low_space_reports_code_5(ota_env):
    device, listener, svc, pkg_dir = ota_env
    package_id = svc.upload_package(PACKAGE, "2.4")
    # the platform announces a package far larger than any disk: refused before a byte is fetched
    task_id = svc.start_task(device.get_device_id(), package_id, file_size=1 << 60)
    task = svc.wait_task(task_id, timeout=30)
    assert task["result"]["result_code"] == OTAService.OTA_CODE_LOW_SPACE
    assert not [r for r in svc.store.requests if package_id in r["key"]]
    assert _dir_files(pkg_dir) == []


def test_low_space_by_reserve(emulator, make_device, tmp_path):
    device = make_device(emulator)
    listener = AutoUpgrader(device, str(tmp_path), emulator.ca_file, reserve_bytes=1 << 62)
    device.get_ota_service().set_ota_listener(listener)
    svc = emulator.service("$ota")
    task_id = svc.start_task(device.get_device_id(), svc.upload_package(PACKAGE, "2.5"))
    assert svc.wait_task(task_id, timeout=30)["result"]["result_code"] == 5


def test_path_traversal_file_name_refused(ota_env, tmp_path):
    device, listener, svc, pkg_dir = ota_env
    package_id = svc.upload_package(PACKAGE, "2.6")
    task_id = svc.start_task(device.get_device_id(), package_id, file_name="../escaped.bin")
    task = svc.wait_task(task_id, timeout=30)
    assert task["status"] == "failed" and task["result"]["result_code"] == OTAService.OTA_CODE_CHECK_FAIL
    assert not (tmp_path / "escaped.bin").exists()


def test_same_version_needs_no_upgrade(ota_env):
    device, listener, svc, pkg_dir = ota_env
    listener.current = "3.0"
    task_id = svc.start_task(device.get_device_id(), svc.upload_package(b"x", "3.0"))
    task = svc.wait_task(task_id, timeout=20)
    assert task["status"] == "no_need" and listener.packages == []


def test_repeated_cuts_exhaust_retries_and_report_code_6(ota_env):
    device, listener, svc, pkg_dir = ota_env
    package_id = svc.upload_package(PACKAGE, "2.7")
    for _ in range(4):                     # the first GET and all 3 resumptions are cut
        svc.store.cut_next_download(after_bytes=100_000, key_contains=package_id)
    task_id = svc.start_task(device.get_device_id(), package_id)
    task = svc.wait_task(task_id, timeout=30)
    assert task["result"]["result_code"] == OTAService.OTA_CODE_DOWNLOAD_TIMEOUT
    assert [r["status"] for r in svc.store.requests if package_id in r["key"]] == [200, 206, 206, 206]
    assert _dir_files(pkg_dir) == []
