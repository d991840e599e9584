"""Shared helpers of the rule tests: a controllable UTC clock and rule builders (platform JSON shape)."""
from __future__ import annotations

import datetime as _dt
import threading
from typing import List, Optional

UTC = _dt.timezone.utc


class FakeClock:
    """A settable aware-UTC clock for ``RuleManageService.set_clock``."""

    def __init__(self, start: _dt.datetime) -> None:
        self._now = start
        self._lock = threading.Lock()

    def __call__(self) -> _dt.datetime:
        with self._lock:
            return self._now

    def set(self, when: _dt.datetime) -> None:
        with self._lock:
            self._now = when

    def advance(self, **delta) -> _dt.datetime:
        with self._lock:
            self._now = self._now + _dt.timedelta(**delta)
            return self._now


def at(y, mo, d, h=0, mi=0, s=0) -> _dt.datetime:
    return _dt.datetime(y, mo, d, h, mi, s, tzinfo=UTC)


def cmd_action(command_name: str = "ring", service_id: str = "alarm", body: Optional[dict] = None,
               device_id: str = "") -> dict:
    return {"type": "DEVICE_CMD", "status": "enable", "deviceId": device_id,
            "command": {"serviceId": service_id, "commandName": command_name, "commandBody": body or {"on": True}}}


def data_cond(path: str, operator: str, value: str = "", in_values: Optional[List[str]] = None,
              device_id: str = "") -> dict:
    cond = {"type": "DEVICE_DATA", "operator": operator, "deviceInfo": {"deviceId": device_id, "path": path},
            "value": value}
    if in_values is not None:
        cond["inValues"] = in_values
    return cond


def daily_cond(time: str, days: str = "1,2,3,4,5,6,7") -> dict:
    return {"type": "DAILY_TIMER", "time": time, "daysOfWeek": days}


def simple_cond(start: str, interval: int = 0, count: int = 1) -> dict:
    return {"type": "SIMPLE_TIMER", "startTime": start, "repeatInterval": interval, "repeatCount": count}


def rule(rule_id: str, conditions: list, actions: Optional[list] = None, logic: str = "and",
         time_range: Optional[dict] = None, status: str = "active", version: Optional[int] = 1) -> dict:
    r = {"ruleId": rule_id, "ruleName": f"name-{rule_id}", "logic": logic, "status": status,
         "conditions": conditions, "actions": actions if actions is not None else [cmd_action()]}
    if version is not None:
        r["ruleVersionInShadow"] = version
    if time_range is not None:
        r["timeRange"] = time_range
    return r
