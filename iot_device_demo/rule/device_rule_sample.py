"""On-device rules: the rule engine (``enable_rule_manage=True``) evaluates platform-defined rules on the device.

Commands fired by a rule go to the CommandListener (no ActionHandler is installed here). The device reports a
temperature every few seconds; the rule "temperature > 5 -> ringAlarm" fires on each report.
Local mode: the emulator creates that rule; in the cloud create a device-side rule in the console.
"""
from __future__ import annotations

from typing import List, Optional

from iot_device_demo.common import Demo, main_guard, say
from iot_device_demo.rule import _rules
from iot_device_sdk_python.client.listener.command_listener import CommandListener


class RuleCommandListener(CommandListener):
    def on_command(self, request_id: str, service_id: str, command_name: str, paras: dict) -> None:
        say(f"[device] rule command: service={service_id} name={command_name} paras={paras}")


def _add_arguments(parser) -> None:
    parser.add_argument("--interval", type=float, default=5.0, help="seconds between temperature reports (default 5)")


def main(argv: Optional[List[str]] = None) -> int:
    with Demo("On-device rules: rule-triggered commands reach the CommandListener.", argv,
              name="device_rule_sample", add_arguments=_add_arguments) as demo:
        # the rule engine is off by default: enable it before constructing the device
        device = demo.create_device(enable_rule_manage=True)
        device.get_client().set_command_listener(RuleCommandListener())
        demo.connect(device)
        if demo.emulator is not None:
            _rules.create(demo, [_rules.temperature_rule(demo.device_id, threshold=5)])

        demo.device_every(demo.args.interval, lambda: _rules.report_temperature(device), first_delay=1.0)
        demo.run()
    return 0


if __name__ == "__main__":
    main_guard(main)
