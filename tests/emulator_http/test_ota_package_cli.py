"""``iotda-emulator ota-package``: one command uploads a file to the object store and creates the OTA package
through the v5 API (signed when the emulator requires app keys); the package is then seen through the official
application SDK and its file is what was uploaded, larger than the API's 1 MB body limit."""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys

import pytest
from huaweicloudsdkiotda.v5 import DeleteOtaPackageRequest, ShowOtaPackageRequest

from tests.emulator_http._cli import ROOT
from tests.emulator_http.conftest import make_app_client


@pytest.fixture
def app_key(emulator):
    """Require signatures by one app key while the test runs."""
    before = dict(emulator.app_keys)
    emulator.app_keys["cli-ak"] = "cli-sk"
    yield "cli-ak:cli-sk"
    emulator.app_keys.clear()
    emulator.app_keys.update(before)


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "iotda_emulator", "ota-package", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


def test_ota_package_uploads_and_creates_in_one_step(emulator, base_url, app_key, tmp_path):
    app_client = make_app_client(base_url, ak="cli-ak", sk="cli-sk")
    firmware = os.urandom(2 * 1024 * 1024 + 17)      # more than the REST body limit: it goes to the object store
    path = tmp_path / "fw-2.0.bin"
    path.write_bytes(firmware)
    done = _run("--file", str(path), "--version", "2.0", "--type", "firmwarePackage", "--url", base_url,
                "--app-key", app_key, "--description", "from the command line", "--source-version", "1.0")
    assert done.returncode == 0, done.stderr
    created = json.loads(done.stdout)
    assert created["version"] == "2.0" and created["package_type"] == "firmwarePackage"
    shown = app_client.show_ota_package(ShowOtaPackageRequest(package_id=created["package_id"]))
    assert shown.version == "2.0" and shown.description == "from the command line"
    assert shown.support_source_versions == ["1.0"]
    assert shown.file_location.obs_location.object_key == "2.0/fw-2.0.bin"
    assert shown.file_location.obs_location.sign == hashlib.sha256(firmware).hexdigest()
    package = emulator.service("$ota").package(created["package_id"])
    assert package["file_size"] == len(firmware)
    app_client.delete_ota_package(DeleteOtaPackageRequest(package_id=created["package_id"]))


def test_ota_package_reports_a_refusal_without_leaking_urls(base_url, app_key, tmp_path):
    path = tmp_path / "fw.bin"
    path.write_bytes(b"firmware")
    done = _run("--file", str(path), "--version", "3.0", "--url", base_url, "--app-key", "cli-ak:wrong-sk")
    assert done.returncode == 1
    assert "401" in done.stderr and "X-Signature" not in done.stderr
    missing = _run("--file", str(tmp_path / "nope.bin"), "--version", "3.0", "--url", base_url)
    assert missing.returncode == 1 and "nope.bin" in missing.stderr
