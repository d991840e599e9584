"""Remote configuration (``$device_config``): apply the configuration the platform pushes and report the result.

Local mode: the emulator creates a remote-configuration task for the device every few seconds (the second
one carries a value the device refuses, so both results show up); the task results are printed.
Cloud mode: create a remote-configuration task for the device in the IoTDA console.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional

from iot_device_sdk_python import DeviceConfigListener, IotResult

from iot_device_demo.common import Demo, main_guard, say


class ConfigApplier(DeviceConfigListener):
    """Accepts a ``report_interval`` of 1..3600 seconds; refuses anything else."""

    def __init__(self) -> None:
        self.config: Dict[str, Any] = {"report_interval": 60}

    def on_config_update(self, config_content: Dict[str, Any]) -> IotResult:
        interval = config_content.get("report_interval")
        if not isinstance(interval, int) or not 1 <= interval <= 3600:
            say(f"[device] configuration refused: {config_content}")
            return IotResult(1, "report_interval must be 1..3600 seconds")
        self.config.update(config_content)
        say(f"[device] configuration applied: {self.config}")
        return IotResult(0, "applied")


def main(argv: Optional[List[str]] = None) -> int:
    with Demo("Remote configuration: apply pushed configurations and report the result.", argv,
              name="device_config_sample") as demo:
        device = demo.create_device()
        device.get_device_config_service().set_listener(ConfigApplier())
        demo.connect(device)
        values = iter([30, 0, 120, 90000])
        last: List[str] = []

        def platform_side() -> None:
            svc = demo.emulator.service("$device_config")
            if last:
                view = svc.task(last[-1])
                if view is not None:
                    details = view["task_details"][0]
                    say(f"[platform] task {view['task_id'][:8]}: {view['status']} "
                        f"(result_code {details['result_code']}, {details['description']!r})")
            value = next(values, None)
            if value is None:
                return
            view = svc.create_task({"report_interval": value}, [demo.device_id], timeout_days=1)
            last.append(view["task_id"])
            say(f"[platform] remote configuration task {view['task_id'][:8]}: report_interval={value}")

        demo.every(2.0, platform_side)
        demo.run()
    return 0


if __name__ == "__main__":
    main_guard(main)
