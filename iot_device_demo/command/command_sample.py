"""Commands: a CommandListener answers each platform command with respond_command.

Local mode: the emulator (the platform side) sends a command every few seconds and prints the device's response.
"""
from __future__ import annotations

from typing import List, Optional

from iot_device_sdk_python.client.listener.command_listener import CommandListener
from iot_device_sdk_python.client.request.command_response import CommandRsp

from iot_device_demo.common import Demo, PLATFORM_TIMEOUT, main_guard, print_json, say


class CommandSampleListener(CommandListener):
    """Answers every command: success, echoing what it received."""

    def __init__(self, iot_device) -> None:
        self.device = iot_device

    def on_command(self, request_id: str, service_id: str, command_name: str, paras: dict) -> None:
        say(f"[device] command received: service={service_id} name={command_name} paras={paras}")
        rsp = CommandRsp()
        rsp.result_code = CommandRsp.success_code()
        rsp.response_name = command_name
        rsp.paras = {"result": "success", "echo": paras}
        self.device.get_client().respond_command(request_id, rsp)


def _add_arguments(parser) -> None:
    parser.add_argument("--interval", type=float, default=3.0,
                        help="local mode: seconds between platform commands (default 3)")


def main(argv: Optional[List[str]] = None) -> int:
    with Demo("Commands: answer platform commands with respond_command.", argv, name="command_sample",
              add_arguments=_add_arguments) as demo:
        device = demo.create_device()
        device.get_client().set_command_listener(CommandSampleListener(device))
        demo.connect(device)

        counter = {"n": 0}

        def send_command() -> None:   # the platform side (local mode only)
            counter["n"] += 1
            paras = {"value": counter["n"]}
            print_json("[platform] send command smokeDetector/ringAlarm", paras)
            response = demo.emulator.send_command(demo.device_id, "smokeDetector", "ringAlarm", paras,
                                                  timeout=PLATFORM_TIMEOUT)
            print_json("[platform] command response", response)

        demo.every(demo.args.interval, send_command, first_delay=0.5)
        demo.run()
    return 0


if __name__ == "__main__":
    main_guard(main)
