"""File upload and download through ``$file_manager`` URLs, really PUT and GET (doc/protocol.md §3.2).

IoTDA's application API has nothing for these files (they live in the customer's OBS bucket), so the
platform side is read from the emulator's object store and its ``$file_manager`` records.
"""
from __future__ import annotations

import hashlib
import os

import requests

from tests.conformance._device import new_id, only_event


def test_upload_url_put_and_result_report(emu, make_device):
    dev = make_device()
    data = os.urandom(20 * 1024)
    name = f"{new_id('log')}.bin"
    attrs = {"hash_code": hashlib.sha256(data).hexdigest(), "size": len(data)}
    dev.event_up("$file_manager", "get_upload_url", {"file_name": name, "file_attributes": attrs})
    msg = dev.expect_event("$file_manager", "get_upload_url_response")
    assert msg.qos == 0
    paras = only_event(msg)["paras"]
    assert paras["url"].startswith("https://")
    assert paras["object_name"] == name
    assert isinstance(paras.get("expire"), int) and paras["expire"] > 0
    assert paras.get("file_attributes") == attrs
    put = requests.put(paras["url"], data=data, verify=emu.ca_file, timeout=10)
    assert put.status_code in (200, 201, 204), put.text
    dev.event_up("$file_manager", "upload_result_report", {"object_name": paras["object_name"], "result_code": 0,
                                                           "status_code": put.status_code,
                                                           "status_description": "uploaded"})
    files = emu.service("$file_manager")
    result = files.wait_result(dev.id, "upload", paras["object_name"], timeout=5)
    assert result["result_code"] == 0 and result["status_code"] == put.status_code
    assert files.get_file(dev.id, name) == data


def test_upload_url_refuses_a_body_other_than_declared(emu, make_device):
    # the docs are silent; the emulator binds the URL to the declared size/hash so a corrupted upload shows
    dev = make_device()
    data = b"the declared content"
    dev.event_up("$file_manager", "get_upload_url", {"file_name": "declared.txt", "file_attributes": {
        "hash_code": hashlib.sha256(data).hexdigest(), "size": len(data)}})
    paras = only_event(dev.expect_event("$file_manager", "get_upload_url_response"))["paras"]
    put = requests.put(paras["url"], data=b"something else entirely", verify=emu.ca_file, timeout=10)
    assert put.status_code >= 400


def test_download_url_get_and_result_report(emu, make_device):
    dev = make_device()
    data = os.urandom(10 * 1024)
    name = f"{new_id('cfg')}.bin"
    emu.service("$file_manager").put_file(dev.id, name, data)   # placed by the user in "OBS"
    dev.event_up("$file_manager", "get_download_url", {"file_name": name})
    paras = only_event(dev.expect_event("$file_manager", "get_download_url_response"))["paras"]
    assert paras["object_name"] == name and paras["url"].startswith("https://")
    got = requests.get(paras["url"], verify=emu.ca_file, timeout=10)
    assert got.status_code == 200 and got.content == data
    attrs = paras.get("file_attributes")
    if attrs is not None:   # optional in the docs
        assert attrs.get("hash_code") == hashlib.sha256(data).hexdigest()
    dev.event_up("$file_manager", "download_result_report", {"object_name": name, "result_code": 0,
                                                             "status_code": 200})
    assert emu.service("$file_manager").wait_result(dev.id, "download", name, timeout=5)["result_code"] == 0


def test_presigned_url_is_bound_to_its_method(emu, make_device):
    dev = make_device()
    dev.event_up("$file_manager", "get_upload_url", {"file_name": "only-put.txt"})
    url = only_event(dev.expect_event("$file_manager", "get_upload_url_response"))["paras"]["url"]
    assert requests.get(url, verify=emu.ca_file, timeout=10).status_code >= 400
