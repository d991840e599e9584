"""On-device rules with a custom ActionHandler: the handler receives every action list a rule fires.

Two rules: a DEVICE_DATA rule (temperature > 5) checked on each property report, and a SIMPLE_TIMER rule that
fires every 2 s on the device's scheduler. Local mode: the emulator creates both rules.
"""
from __future__ import annotations

from typing import List, Optional

from iot_device_demo.common import Demo, main_guard, say
from iot_device_demo.rule import _rules
from iot_device_sdk_python.rule.model.action_handler import ActionHandler
from iot_device_sdk_python.rule.model.actions import Action


class PrintingActionHandler(ActionHandler):
    def handle_rule_action(self, action: List[Action]) -> None:
        described = []
        for a in action:
            cmd = a.command
            described.append(f"{a.type} -> {a.device_id}: {cmd.command_name if cmd else None} "
                             f"{cmd.paras if cmd else None}")
        say("[device] rule actions: " + "; ".join(described))


def _add_arguments(parser) -> None:
    parser.add_argument("--interval", type=float, default=5.0, help="seconds between temperature reports (default 5)")


def main(argv: Optional[List[str]] = None) -> int:
    with Demo("On-device rules with a custom ActionHandler.", argv, name="custom_device_rule_sample",
              add_arguments=_add_arguments) as demo:
        device = demo.create_device(enable_rule_manage=True)
        device.get_client().set_rule_action_handler(PrintingActionHandler())
        demo.connect(device)
        if demo.emulator is not None:
            _rules.create(demo, [_rules.temperature_rule(demo.device_id, threshold=5),
                                 _rules.simple_timer_rule(demo.device_id, interval_s=2, count=10)])

        demo.device_every(demo.args.interval, lambda: _rules.report_temperature(device), first_delay=1.0)
        demo.run()
    return 0


if __name__ == "__main__":
    main_guard(main)
