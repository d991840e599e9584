"""An upstream-style program (run as ``python -m tests.sdk._lifetime_proc``): main() connects, sets a command
listener and returns. Prints ``CONNECTED``; with ``--opt-out`` it sets ``keep_process_alive = False``."""
from __future__ import annotations

import argparse

from iot_device_sdk_python.client.client_conf import ClientConf
from iot_device_sdk_python.client.connect_auth_info import ConnectAuthInfo
from iot_device_sdk_python.client.listener.command_listener import CommandListener
from iot_device_sdk_python.client.mqtt_connect_conf import MqttConnectConf
from iot_device_sdk_python.client.request.command_response import CommandRsp
from iot_device_sdk_python.iot_device import IotDevice


class Answer(CommandListener):
    def __init__(self, device: IotDevice):
        self.device = device

    def on_command(self, request_id, service_id, command_name, paras):
        self.device.get_client().respond_command(request_id, CommandRsp(0, "pong", {"echo": paras}))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--host")
    ap.add_argument("--port", type=int)
    ap.add_argument("--device-id")
    ap.add_argument("--secret")
    ap.add_argument("--opt-out", action="store_true")
    args = ap.parse_args()
    info = ConnectAuthInfo()
    info.id, info.secret, info.server_uri, info.port, info.tls = args.device_id, args.secret, args.host, args.port, False
    if args.opt_out:
        info.keep_process_alive = False
    device = IotDevice(ClientConf(info, MqttConnectConf()))
    device.get_client().set_command_listener(Answer(device))
    assert device.connect() == 0
    print("CONNECTED", flush=True)


if __name__ == "__main__":
    main()
