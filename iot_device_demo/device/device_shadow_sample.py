"""Device shadow: read the shadow the platform keeps for the device (desired and reported properties).

Local mode: the emulator first sets a desired value; the device reports its properties and then asks for its shadow.
"""
from __future__ import annotations

import uuid
from typing import List, Optional

from iot_device_sdk_python.client.listener.device_shadow_listener import DeviceShadowListener
from iot_device_sdk_python.client.request.service_property import ServiceProperty

from iot_device_demo.common import Demo, main_guard, say

SERVICE_ID = "smokeDetector"


class ShadowSampleListener(DeviceShadowListener):
    def on_shadow_get(self, request_id: str, object_device_id: str, shadow) -> None:
        say(f"[device] shadow received (request {request_id}):")
        for s in shadow or []:
            desired = s.desired.properties if s.desired else None
            reported = s.reported.properties if s.reported else None
            say(f"[device]   service={s.service_id} desired={desired} reported={reported} version={s.version}")


def _add_arguments(parser) -> None:
    parser.add_argument("--interval", type=float, default=4.0, help="seconds between shadow requests (default 4)")


def main(argv: Optional[List[str]] = None) -> int:
    with Demo("Device shadow: get the shadow of one service.", argv, name="device_shadow_sample",
              add_arguments=_add_arguments) as demo:
        if demo.emulator is not None:
            version = demo.emulator.set_desired(demo.device_id, SERVICE_ID, {"alarm": 1})
            say(f"[platform] desired alarm=1 set on the shadow (version {version})")
        device = demo.create_device()
        client = device.get_client()
        client.set_device_shadow_listener(ShadowSampleListener())
        demo.connect(device)

        client.report_properties([ServiceProperty(service_id=SERVICE_ID,
                                                  properties={"alarm": 0, "temperature": 21.5})])
        say("[device] reported alarm=0 temperature=21.5")

        def get_shadow() -> None:
            request_id = str(uuid.uuid4())
            client.get_device_shadow(request_id, service_id=SERVICE_ID)
            say(f"[device] shadow requested (request {request_id})")

        demo.device_every(demo.args.interval, get_shadow, first_delay=0.5)
        demo.run()
    return 0


if __name__ == "__main__":
    main_guard(main)
