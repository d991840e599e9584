"""File upload and download through the platform's object store (OBS on IoTDA).

The device uploads ``filemanage/download/upload_test.txt`` as ``upload_test.txt`` and downloads it back to
``./download/download.txt``. The SDK's managed transfers do the whole job on a worker thread: ask the platform
for a URL, HTTP PUT/GET with TLS verified, check size and SHA-256, report the result to the platform.
(The upstream style — ``upload_file`` + a ``FileManagerListener`` doing the HTTP transfer and calling
``report_upload_result`` — still works.)

Local mode: the emulator's object store plays OBS; the platform side prints what it stored.
"""
from __future__ import annotations

import os
from typing import List, Optional

from iot_device_demo.common import DEMO_DIR, Demo, DemoError, main_guard, say

FILE_NAME = "upload_test.txt"
SAMPLE_FILE = os.path.join(DEMO_DIR, "filemanage", "download", FILE_NAME)


def _add_arguments(parser) -> None:
    parser.add_argument("--file", default=SAMPLE_FILE, help="file to upload (default: the bundled upload_test.txt)")
    parser.add_argument("--download-to", default=os.path.join("download", "download.txt"),
                        help="where the downloaded copy is written (default ./download/download.txt)")


def main(argv: Optional[List[str]] = None) -> int:
    with Demo("File upload and download with verified HTTPS transfers.", argv, name="file_sample",
              add_arguments=_add_arguments) as demo:
        device = demo.create_device()
        demo.connect(device)
        fm = device.get_file_manager_service()
        # local: the emulator's CA; cloud: --http-ca-file, else the system trust store (OBS has a public certificate)
        ca_file = demo.http_ca_file

        source = os.path.abspath(demo.args.file)
        say(f"[device] uploading {source} as {FILE_NAME}")
        try:
            up = fm.transfer_upload(FILE_NAME, source, ca_file=ca_file).result(timeout=60)
        except Exception as exc:
            raise DemoError(f"upload failed: {exc}") from None
        say(f"[device] uploaded: object {up.object_name}, HTTP {up.status_code}, {up.size} bytes, "
              f"sha256 {up.sha256[:16]}...")
        if demo.emulator is not None:
            show_store(demo, "upload")

        target = os.path.abspath(demo.args.download_to)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        say(f"[device] downloading {FILE_NAME} to {target}")
        try:
            down = fm.transfer_download(FILE_NAME, target, ca_file=ca_file).result(timeout=60)
        except Exception as exc:
            raise DemoError(f"download failed: {exc}") from None
        with open(source, "rb") as a, open(target, "rb") as b:
            same = a.read() == b.read()
        say(f"[device] downloaded: HTTP {down.status_code}, {down.size} bytes, identical to the upload: {same}")
        if demo.emulator is not None:
            show_store(demo, "download")
        demo.run()
    return 0


def show_store(demo: Demo, kind: str) -> None:
    """Local mode: print the result report the platform recorded and, after an upload, what it stored."""
    service = demo.emulator.service("$file_manager")
    report = service.wait_result(demo.device_id, kind, FILE_NAME, timeout=10)
    say(f"[platform] <- {kind} result report: object {report['object_name']}, "
          f"result_code {report['result_code']}, HTTP {report.get('status_code')}")
    if kind == "upload":
        stored = service.get_file(demo.device_id, FILE_NAME) or b""
        first_line = stored.decode("utf-8", "replace").splitlines()[0] if stored else ""
        say(f"[platform] object store holds {FILE_NAME}: {len(stored)} bytes, first line {first_line!r}")


if __name__ == "__main__":
    main_guard(main)
