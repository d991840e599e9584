"""Properties: report properties, and answer the platform's property set and get with a PropertyListener.

Local mode: the emulator sets a property (alarm) and then reads the properties back every few seconds.
"""
from __future__ import annotations

import threading
from typing import List, Optional

from iot_device_sdk_python.client import iot_result
from iot_device_sdk_python.client.listener.property_listener import PropertyListener
from iot_device_sdk_python.client.request.service_property import ServiceProperty

from iot_device_demo.common import Demo, PLATFORM_TIMEOUT, main_guard, print_json, say

SERVICE_ID = "smokeDetector"


class SmokeDetectorState:
    """The device's property values (thread-safe: the listener and the reporter both touch them)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._props = {"alarm": 1, "smokeConcentration": 0.0, "temperature": 23.5, "humidity": 56.0}

    def snapshot(self) -> dict:
        with self._lock:
            return dict(self._props)

    def write(self, props: dict) -> None:
        with self._lock:
            self._props.update(props)


class PropertySampleListener(PropertyListener):
    def __init__(self, iot_device, state: SmokeDetectorState) -> None:
        self.device = iot_device
        self.state = state

    def on_property_set(self, request_id: str, services: List[ServiceProperty]) -> None:
        for sp in services:
            say(f"[device] property set: service={sp.service_id} properties={sp.properties}")
            if sp.service_id == SERVICE_ID:
                self.state.write(sp.properties or {})
        self.device.get_client().respond_properties_set(request_id, iot_result.SUCCESS)

    def on_property_get(self, request_id: str, service_id: str) -> None:
        say(f"[device] property get: service={service_id or '(all)'}")
        services = [ServiceProperty(service_id=SERVICE_ID, properties=self.state.snapshot())]
        self.device.get_client().respond_properties_get(request_id, services)


def _add_arguments(parser) -> None:
    parser.add_argument("--interval", type=float, default=3.0, help="seconds between reports (default 3)")


def main(argv: Optional[List[str]] = None) -> int:
    with Demo("Properties: report, and answer property set/get.", argv, name="properties_sample",
              add_arguments=_add_arguments) as demo:
        state = SmokeDetectorState()
        device = demo.create_device()
        device.get_client().set_properties_listener(PropertySampleListener(device, state))
        demo.connect(device)

        def report() -> None:
            props = state.snapshot()
            device.get_client().report_properties([ServiceProperty(service_id=SERVICE_ID, properties=props)])
            say(f"[device] reported properties {props}")

        demo.device_every(demo.args.interval, report)

        counter = {"n": 0}

        def platform_side() -> None:
            counter["n"] += 1
            services = [{"service_id": SERVICE_ID, "properties": {"alarm": counter["n"] % 2}}]
            print_json("[platform] set properties", services)
            print_json("[platform] set result", demo.emulator.set_properties(
                demo.device_id, services, timeout=PLATFORM_TIMEOUT))
            print_json("[platform] get properties ->", demo.emulator.get_properties(
                demo.device_id, SERVICE_ID, timeout=PLATFORM_TIMEOUT))

        demo.every(demo.args.interval, platform_side, first_delay=1.0)
        demo.run()
    return 0


if __name__ == "__main__":
    main_guard(main)
