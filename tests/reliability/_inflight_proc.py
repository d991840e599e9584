"""A device process for the in-flight crash test (``python -m tests.reliability._inflight_proc``).

Connects with a durable queue and prints ``CONNECTED``; on a line from stdin it makes ``-n`` numbered QoS 1
reports (service ``rel``, property ``seq``) and prints ``REPORTED <still connected>``; then it just lives
until it is killed (the test SIGKILLs it). With ``-n 0`` it only connects: the restarted process.
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
    ap.add_argument("-n", type=int, default=0)
    args = ap.parse_args()
    info = auth_info(args)
    info.offline_queue_path = args.queue
    info.min_backoff, info.max_backoff = 100, 500
    device = IotDevice(ClientConf(info, MqttConnectConf()))
    assert device.connect() == 0
    client = device.get_client()
    print("CONNECTED", client.get_buffer_metrics().restored, flush=True)
    if args.n:
        sys.stdin.readline()  # the test has paused the link (half-open): the SDK still believes it is online
        for seq in range(args.n):
            client.report_properties([ServiceProperty("rel", {"seq": seq})])
        print("REPORTED", client.is_connected(), flush=True)
    while True:
        time.sleep(1)


if __name__ == "__main__":
    main()
