"""OTA upgrade: answer the platform's version query, download the package with the SDK's verified download
helper (TLS verified, bearer token for v1 / presigned URL for v2, resume, SHA-256 check against ``sign``,
progress reports), "install" it and report success with the new version.

Local mode: the emulator stores a package (version ``--target-version``) and starts an upgrade task for the
device; its progress is printed from the platform side.
"""
from __future__ import annotations

import os
import threading
from typing import List, Optional

from iot_device_sdk_python.ota.ota_listener import OTAListener
from iot_device_sdk_python.ota.ota_service import OTAService

from iot_device_demo.common import Demo, main_guard, say


class OtaSampleListener(OTAListener):
    """Reports the current version and upgrades to any package the platform offers."""

    def __init__(self, ota_service: OTAService, version: str, download_dir: str, ca_file: Optional[str]) -> None:
        self.ota = ota_service
        self.version = version
        self.download_dir = download_dir
        self.ca_file = ca_file
        self.upgraded = threading.Event()

    def on_query_version(self, queryInfo) -> None:
        say(f"[device] version query (task {getattr(queryInfo, 'task_id', None)}): reporting fw {self.version}")
        self.ota.report_version(fw_version=self.version)

    def on_receive_package_info(self, pkg) -> None:
        say(f"[device] package offered: version {pkg.version}, {pkg.file_size} bytes; downloading")
        if pkg.version == self.version:
            self.ota.report_ota_status(OTAService.OTA_CODE_NO_NEED, self.version, description="already up to date")
            return
        # the download runs on a worker thread; the SDK reports progress and failures itself
        self.ota.download_package(pkg, self.download_dir, ca_file=self.ca_file,
                                  callback=lambda future: self._install(future, pkg))

    def _install(self, future, pkg) -> None:
        try:
            path = future.result()
        except Exception as exc:   # OTADownloadError: the SDK already reported the matching OTA code
            say(f"[device] download failed: {exc}")
            return
        say(f"[device] downloaded and verified {path} ({os.path.getsize(path)} bytes); installing")
        self.version = pkg.version
        self.ota.report_ota_status(OTAService.OTA_CODE_SUCCESS, pkg.version, 100, "upgrade success")
        self.ota.report_version(fw_version=pkg.version)
        say(f"[device] upgraded to {pkg.version}")
        self.upgraded.set()


def _add_arguments(parser) -> None:
    parser.add_argument("--current-version", default="v1.0", help="version the device runs (default v1.0)")
    parser.add_argument("--target-version", default="v2.0", help="local mode: package version (default v2.0)")
    parser.add_argument("--v2", action="store_true",
                        help="local mode: offer the package as firmware_upgrade_v2 (presigned URL, no token)")
    parser.add_argument("--download-dir", default="download", help="where packages are saved (default ./download)")


def start_platform_task(demo: Demo, version: str) -> None:
    """Local mode: upload a package to the emulator, start an upgrade task and follow it until it ends."""
    ota = demo.emulator.service("$ota")
    content = (f"firmware image {version}\n".encode("utf-8")) * 64
    package_id = ota.upload_package(content, version, kind="firmware", file_name=f"firmware-{version}.bin")
    task_id = ota.start_task(demo.device_id, package_id, v2=demo.args.v2)
    say(f"[platform] package {version} ({len(content)} bytes) uploaded; upgrade task {task_id[:8]} started"
        + (" (v2: presigned URL)" if demo.args.v2 else " (v1: bearer token)"))
    seen = {"status": None, "progress": 0}
    while not demo.stop_event.is_set():
        try:
            task = ota.wait_for(lambda t: t["status"] != seen["status"] or len(t["progress"]) != seen["progress"],
                                task_id, timeout=1.0)
        except TimeoutError:
            continue
        for report in task["progress"][seen["progress"]:]:
            say(f"[platform] <- upgrade progress {report}")
        seen["progress"] = len(task["progress"])
        if task["status"] != seen["status"]:
            seen["status"] = task["status"]
            say(f"[platform] task {task_id[:8]} is {task['status']}")
        if task["status"] in ("success", "failed", "no_need"):
            return


def main(argv: Optional[List[str]] = None) -> int:
    with Demo("OTA upgrade with the SDK's verified download helper.", argv, name="ota_sample",
              add_arguments=_add_arguments) as demo:
        device = demo.create_device()
        ota = device.get_ota_service()
        download_dir = os.path.abspath(demo.args.download_dir)
        # local: the emulator's CA; cloud: --http-ca-file, else the system trust store
        listener = OtaSampleListener(ota, demo.args.current_version, download_dir, demo.http_ca_file)
        ota.set_ota_listener(listener)
        demo.connect(device)
        ota.report_version(fw_version=demo.args.current_version)   # the platform learns the version at start-up
        if demo.emulator is not None:
            demo.later(0.5, lambda: start_platform_task(demo, demo.args.target_version), name="platform-ota")
        demo.run()
    return 0


if __name__ == "__main__":
    main_guard(main)
