"""Process A of the durable-queue crash test (run as ``python -m tests.reliability._queue_proc``).

Connects, waits until the test took the link down (device frozen + link cut: reconnects are refused),
queues N reports, prints ``QUEUED <n>`` and then waits to be SIGKILLed.
"""
from __future__ import annotations

import sys
import time

from iot_device_sdk_python.client.client_conf import ClientConf
from iot_device_sdk_python.client.mqtt_connect_conf import MqttConnectConf
from iot_device_sdk_python.client.request.service_property import ServiceProperty
from iot_device_sdk_python.iot_device import IotDevice
from tests._device_proc import auth_info, device_args


def main() -> None:
    ap = device_args()
    ap.add_argument("--queue")
    ap.add_argument("-n", type=int)
    args = ap.parse_args()
    info = auth_info(args)
    info.offline_queue_path = args.queue
    info.min_backoff, info.max_backoff = 100, 500
    device = IotDevice(ClientConf(info, MqttConnectConf()))
    assert device.connect() == 0
    client = device.get_client()
    print("CONNECTED", flush=True)
    sys.stdin.readline()  # the test froze the device and cut the link
    deadline = time.monotonic() + 10
    while client.is_connected() and time.monotonic() < deadline:
        time.sleep(0.02)
    for seq in range(args.n):
        client.report_properties([ServiceProperty("rel", {"seq": seq})])
    print("QUEUED", client.get_buffer_metrics().size, flush=True)
    time.sleep(60)  # killed long before


if __name__ == "__main__":
    main()
