"""Unit tests of the services' data classes and the transfer helpers (no network)."""
from __future__ import annotations

import os

import pytest

from iot_device_sdk_python.filemanager.url_info import UrlInfo
from iot_device_sdk_python.ota.ota_package_info import OTAPackageInfo
from iot_device_sdk_python.ota.ota_package_info_v2 import OTAPackageInfoV2
from iot_device_sdk_python.ota.ota_query_version import OTAQueryVersion
from iot_device_sdk_python.timesync.time_sync_service import TimeSyncService
from iot_device_sdk_python.transfer.http_transfer import redact_url, safe_join, scrub

V2 = {"url": "https://obs/x?sig=1", "version": "2.0", "file_size": 10, "file_name": "fw.bin", "expires": 60,
      "sign": "ab" * 32, "custom_info": "c", "task_id": "t1", "sub_device_count": 2, "task_ext_info": {"k": 1}}


def test_package_info_v2_parses_every_field():
    pkg = OTAPackageInfoV2()
    pkg.convert_from_dict(V2)
    assert pkg.to_dict() == V2
    assert (pkg.sign, pkg.file_size, pkg.file_name, pkg.task_id) == ("ab" * 32, 10, "fw.bin", "t1")


def test_package_info_v1_round_trip_and_repr_hides_secrets():
    src = dict(V2, access_token="SECRET-TOKEN")
    pkg = OTAPackageInfo()
    pkg.convert_from_dict(src)
    assert pkg.to_dict() == src
    assert "SECRET-TOKEN" not in repr(pkg) and "sig=1" not in repr(pkg)


def test_query_version_omits_none():
    q = OTAQueryVersion()
    q.convert_from_dict({"task_id": "t"})
    assert q.to_dict() == {"task_id": "t"}


def test_url_info_parses_file_attributes():
    info = UrlInfo()
    info.convert_from_dict({"url": "u", "bucket_name": "b", "object_name": "o", "expire": 5,
                            "file_attributes": {"hash_code": "h", "size": 3}})
    assert info.file_attributes == {"hash_code": "h", "size": 3}
    assert info.to_dict()["expire"] == 5


def test_time_sync_formula():
    # device clock 1000 ms behind, 40 ms each way: now is server_send + 40
    assert TimeSyncService.compute_time(9_000, 10_040, 10_050, 9_090) == 10_090


def test_redaction():
    assert redact_url("https://u:p@h:1/a/b?X-Signature=abc#f") == "https://h:1/a/b?<redacted>"
    text = scrub("GET https://h/a?X-Signature=abc failed, Authorization: Bearer tok123")
    assert "abc" not in text and "tok123" not in text


@pytest.mark.parametrize("name", ["", ".", "..", "../x", "a/b", "a\\b", "x\x00", "n" * 256])
def test_safe_join_rejects(tmp_path, name):
    with pytest.raises(ValueError):
        safe_join(str(tmp_path), name)


def test_safe_join_accepts(tmp_path):
    assert safe_join(str(tmp_path), "fw-1.0.bin") == os.path.join(os.path.realpath(tmp_path), "fw-1.0.bin")
