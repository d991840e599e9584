"""An upstream-style program (run as ``python -m tests.sdk._lifetime_proc``): main() connects, sets a command
listener and returns. Prints ``CONNECTED``; with ``--opt-out`` it sets ``keep_process_alive = False``."""
from __future__ import annotations


from iot_device_sdk_python.client.client_conf import ClientConf
from iot_device_sdk_python.client.listener.command_listener import CommandListener
from iot_device_sdk_python.client.mqtt_connect_conf import MqttConnectConf
from iot_device_sdk_python.client.request.command_response import CommandRsp
from iot_device_sdk_python.iot_device import IotDevice
from tests._device_proc import auth_info, device_args


class Answer(CommandListener):
    def __init__(self, device: IotDevice):
        self.device = device

    def on_command(self, request_id, service_id, command_name, paras):
        self.device.get_client().respond_command(request_id, CommandRsp(0, "pong", {"echo": paras}))


def main() -> None:
    ap = device_args()
    ap.add_argument("--opt-out", action="store_true")
    args = ap.parse_args()
    info = auth_info(args)
    if args.opt_out:
        info.keep_process_alive = False
    device = IotDevice(ClientConf(info, MqttConnectConf()))
    device.get_client().set_command_listener(Answer(device))
    assert device.connect() == 0
    print("CONNECTED", flush=True)


if __name__ == "__main__":
    main()
