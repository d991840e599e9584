"""Rules the rule demos create on the local emulator (the platform side).

In the cloud you create device-side rules in the IoTDA console instead.
"""
from __future__ import annotations

import datetime as _dt
import random
from typing import Any, Dict, List

from iot_device_demo.common import say
from iot_device_sdk_python.client.request.service_property import ServiceProperty

SERVICE_ID = "smokeDetector"


def command_action(device_id: str, command_name: str, body: Dict[str, Any]) -> Dict[str, Any]:
    return {"type": "DEVICE_CMD", "status": "enable", "deviceId": device_id,
            "command": {"serviceId": SERVICE_ID, "commandName": command_name, "commandBody": body}}


def temperature_rule(device_id: str, threshold: float = 5.0) -> Dict[str, Any]:
    """DEVICE_DATA rule: when smokeDetector/temperature > threshold, send ringAlarm to the device itself."""
    return {
        "ruleName": "temperature above threshold",
        "logic": "or",
        "status": "active",
        "conditions": [{"type": "DEVICE_DATA", "operator": ">", "value": str(threshold),
                        "deviceInfo": {"deviceId": device_id, "path": f"{SERVICE_ID}/temperature"}}],
        "actions": [command_action(device_id, "ringAlarm", {"duration": 10, "reason": "temperature"})],
    }


def simple_timer_rule(device_id: str, interval_s: int = 2, count: int = 10) -> Dict[str, Any]:
    """SIMPLE_TIMER rule: starting in a second, every ``interval_s`` seconds, ``count`` times."""
    start = _dt.datetime.now(_dt.timezone.utc) + _dt.timedelta(seconds=1)
    return {
        "ruleName": "periodic self-test",
        "logic": "or",
        "status": "active",
        "conditions": [{"type": "SIMPLE_TIMER", "startTime": start.strftime("%Y-%m-%d %H:%M:%S"),
                        "repeatInterval": interval_s, "repeatCount": count}],
        "actions": [command_action(device_id, "selfTest", {"level": 1})],
    }


def create(demo: Any, rules: List[Dict[str, Any]]) -> None:
    """Create ``rules`` for the demo's device in the emulator's ``$device_rule`` service and say so."""
    service = demo.emulator.service("$device_rule")
    for rule in rules:
        rule_id = service.create_rule(demo.device_id, rule)
        say(f"[platform] created rule {rule_id}: {rule['ruleName']}")


def report_temperature(device: Any) -> None:
    """Report a random temperature of 10-30 (always above the demo rules' threshold) on SERVICE_ID."""
    temperature = round(random.uniform(10.0, 30.0), 1)
    device.get_client().report_properties(
        [ServiceProperty(service_id=SERVICE_ID, properties={"temperature": temperature})])
    say(f"[device] reported temperature {temperature}")
