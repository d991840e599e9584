"""The emulator's object store over real HTTPS: signatures, expiry, tokens, ranges, size and hash checks."""
from __future__ import annotations

import hashlib

import pytest
import requests

BUCKET = "iotda-files"


@pytest.fixture
def store(emulator):
    return emulator.service("$file_manager").store


def test_presigned_get_range_and_forgery(emulator, store):
    data = bytes(range(256)) * 40
    store.put_object(BUCKET, "unit/range.bin", data)
    url = store.presign("GET", BUCKET, "unit/range.bin", 60)
    r = requests.get(url, headers={"Range": "bytes=100-199"}, verify=emulator.ca_file, timeout=10)
    assert r.status_code == 206 and r.content == data[100:200]
    assert r.headers["Content-Range"] == f"bytes 100-199/{len(data)}"
    r = requests.get(url, headers={"Range": f"bytes={len(data)}-"}, verify=emulator.ca_file, timeout=10)
    assert r.status_code == 416
    forged = url.replace("X-Expires=", "X-Expires=9")          # longer validity, same signature
    assert requests.get(forged, verify=emulator.ca_file, timeout=10).status_code == 403
    other = store.presign("GET", BUCKET, "unit/other.bin", 60).split("?", 1)[1]
    r = requests.get(url.split("?", 1)[0] + "?" + other, verify=emulator.ca_file, timeout=10)
    assert r.status_code == 403                                 # a signature for another object


def test_presigned_put_checks_declared_hash_and_size(emulator, store):
    body = b"payload-bytes"
    good = store.presign("PUT", BUCKET, "unit/put.bin", 60, size=len(body), sha256=hashlib.sha256(body).hexdigest())
    bad_hash = store.presign("PUT", BUCKET, "unit/put2.bin", 60, size=len(body), sha256="0" * 64)
    assert requests.put(bad_hash, data=body, verify=emulator.ca_file, timeout=10).status_code == 400
    assert store.stat(BUCKET, "unit/put2.bin") is None
    assert requests.put(good, data=body + b"x", verify=emulator.ca_file, timeout=10).status_code == 400
    assert requests.put(good, data=body, verify=emulator.ca_file, timeout=10).status_code == 200
    assert store.get_object(BUCKET, "unit/put.bin") == body
    # a GET URL does not allow a PUT
    get_url = store.presign("GET", BUCKET, "unit/put.bin", 60)
    assert requests.put(get_url, data=b"evil", verify=emulator.ca_file, timeout=10).status_code == 403


def test_size_limit(emulator, store):
    old = store.max_object_size
    store.max_object_size = 1000
    try:
        url = store.presign("PUT", BUCKET, "unit/big.bin", 60)
        assert requests.put(url, data=b"x" * 5000, verify=emulator.ca_file, timeout=10).status_code == 413
    finally:
        store.max_object_size = old
    assert store.stat(BUCKET, "unit/big.bin") is None


def test_bearer_token_download(emulator):
    ota = emulator.service("$ota")
    package_id = ota.upload_package(b"firmware", "9.9", file_name="fw.bin")
    key = ota.package(package_id)["key"]
    url = ota.store.token_url(key)
    token = ota.store.issue_token("ota-packages", key, 60)
    ok = requests.get(url, headers={"Authorization": f"Bearer {token}"}, verify=emulator.ca_file, timeout=10)
    assert ok.status_code == 200 and ok.content == b"firmware"
    assert requests.get(url, verify=emulator.ca_file, timeout=10).status_code == 401
    other = ota.store.token_url(ota.package(ota.upload_package(b"other", "9.8"))["key"])
    assert requests.get(other, headers={"Authorization": f"Bearer {token}"}, verify=emulator.ca_file,
                        timeout=10).status_code == 401     # a token is bound to its package
    expired = ota.store.issue_token("ota-packages", key, 0)
    assert requests.get(url, headers={"Authorization": f"Bearer {expired}"}, verify=emulator.ca_file,
                        timeout=10).status_code == 401
