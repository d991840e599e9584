"""Secret authentication: connect with a device secret and report a "Hello Huawei" message every few seconds.

    python -m iot_device_demo.device.secret_device_sample                 # local emulator
    IOTDA_SERVER_URI=... IOTDA_DEVICE_ID=... IOTDA_SECRET=... IOTDA_CA_FILE=root.pem \
        python -m iot_device_demo.device.secret_device_sample             # real IoTDA
"""
from __future__ import annotations

from typing import List, Optional

from iot_device_sdk_python.client.listener.default_publish_action_listener import DefaultPublishActionListener
from iot_device_sdk_python.client.request.device_message import DeviceMessage

from iot_device_demo.common import Demo, main_guard, say


def _add_arguments(parser) -> None:
    parser.add_argument("--interval", type=float, default=5.0, help="seconds between messages (default 5)")


def main(argv: Optional[List[str]] = None) -> int:
    with Demo("Secret authentication: report a message periodically.", argv, name="secret_device_sample",
              add_arguments=_add_arguments) as demo:
        device = demo.create_device()
        demo.connect(device)

        def report() -> None:
            msg = DeviceMessage()
            msg.content = "Hello Huawei"
            # the default listener prints the outcome; the returned handle could be waited on instead
            device.get_client().report_device_message(msg, DefaultPublishActionListener())
            say("[device] reported message: Hello Huawei")

        demo.device_every(demo.args.interval, report)
        demo.run()
    return 0


if __name__ == "__main__":
    main_guard(main)
