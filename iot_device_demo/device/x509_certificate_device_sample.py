"""X.509 certificate authentication: connect with a client certificate and report messages periodically.

Local mode: the emulator's CA issues a certificate for the device and registers its fingerprint.
Cloud mode: ``--cert device.crt --key device.key [--key-password ...] --ca-file root.pem`` (or IOTDA_CERT_FILE, ...).
"""
from __future__ import annotations

from typing import List, Optional

from iot_device_sdk_python.client.listener.default_publish_action_listener import DefaultPublishActionListener
from iot_device_sdk_python.client.request.device_message import DeviceMessage

from iot_device_demo.common import Demo, main_guard, say


def _add_arguments(parser) -> None:
    parser.add_argument("--interval", type=float, default=5.0, help="seconds between messages (default 5)")


def main(argv: Optional[List[str]] = None) -> int:
    with Demo("X.509 certificate authentication: report a message periodically.", argv, x509=True,
              name="x509_certificate_device_sample", add_arguments=_add_arguments) as demo:
        # the auth type is X509_AUTH; the certificate, key and CA come from the settings (see common.py)
        device = demo.create_device()
        demo.connect(device)

        def report() -> None:
            msg = DeviceMessage()
            msg.content = "Hello Huawei, authenticated by an X.509 certificate"
            device.get_client().report_device_message(msg, DefaultPublishActionListener())
            say("[device] reported message")

        demo.device_every(demo.args.interval, report)
        demo.run()
    return 0


if __name__ == "__main__":
    main_guard(main)
