"""Device information: report firmware and software versions ($sdk_info).

``auto_report_device_info=True`` makes the SDK report the SDK version after connecting; the demo then reports
fw_version / sw_version explicitly with report_device_info.
"""
from __future__ import annotations

from typing import List, Optional

from iot_device_sdk_python.client.request.device_base_info import DeviceBaseInfo

from iot_device_demo.common import Demo, main_guard, say


def _add_arguments(parser) -> None:
    parser.add_argument("--fw-version", default="v1.0", help="firmware version to report (default v1.0)")
    parser.add_argument("--sw-version", default="v1.0", help="software version to report (default v1.0)")


def main(argv: Optional[List[str]] = None) -> int:
    with Demo("Device information: report firmware/software versions.", argv, name="report_device_info_sample",
              add_arguments=_add_arguments) as demo:
        device = demo.create_device(auto_report_device_info=True)
        demo.connect(device)

        info = DeviceBaseInfo()
        info.fw_version = demo.args.fw_version
        info.sw_version = demo.args.sw_version
        handle = device.get_client().report_device_info(info)
        if handle is not None:
            handle.result(timeout=10)   # wait for the PUBACK
        say(f"[device] reported device info fw={info.fw_version} sw={info.sw_version}")

        if demo.emulator is not None:
            def show() -> None:
                for report in demo.emulator.service("$sdk_info").history(demo.device_id):
                    shown = {k: v for k, v in report.items() if k in ("device_sdk_version", "fw_version", "sw_version")}
                    say(f"[platform] <- device info {shown}")
            demo.later(1.0, show)
        demo.run()
    return 0


if __name__ == "__main__":
    main_guard(main)
