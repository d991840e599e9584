"""Strict parsing of the platform's ``rulesInfos`` entries into :class:`RuleInfo` (beyond upstream).

Rules come from the network: every field is checked and a bad rule raises :class:`RuleParseError`
with a one-line reason, so the caller can reject that rule and keep the others.

Condition checks (doc/protocol.md §3.8; the emulator's ``protocol/rules.py`` checks the same shape):
``between`` takes ``"min,max"`` with min <= max; ``>``/``>=``/``<``/``<=`` a number; ``inValues`` is a list
of strings or numbers (not booleans), non-empty for ``in``; times of day are ``HH:MM`` with two digits each;
``daysOfWeek`` lists 1-7 without empty items; ``startTime`` is exactly ``YYYY-MM-DD HH:MM:SS``;
``repeatInterval``/``repeatCount`` are integers >= 0 (decimal strings accepted) whose last firing falls
before the year 10000 (our bound: later dates cannot be scheduled).
"""
from __future__ import annotations

import datetime as _dt
import json
import re
from typing import Any, Dict, Optional

from iot_device_sdk_python.errors import IotDeviceError

from iot_device_sdk_python.protocol import codec
from iot_device_sdk_python.rule.model.actions import Action
from iot_device_sdk_python.rule.model.condition_execute import (
    DEVICE_DATA, OPERATORS, parse_between, split_path, to_number)
from iot_device_sdk_python.rule.model.connditions import Condition
from iot_device_sdk_python.rule.model.device_info import DeviceInfo
from iot_device_sdk_python.rule.model.rule_info import RuleInfo
from iot_device_sdk_python.rule.model.time_range import TimeRange
from iot_device_sdk_python.rule.util import time_util

DAILY_TIMER = "DAILY_TIMER"
SIMPLE_TIMER = "SIMPLE_TIMER"
TIMER_TYPES = (DAILY_TIMER, SIMPLE_TIMER)
STATUS_ACTIVE = "active"
STATUS_INACTIVE = "inactive"
NUMERIC_OPERATORS = (">", ">=", "<", "<=")

_START_TIME_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}")


class RuleParseError(IotDeviceError, ValueError):
    """A rule from the platform cannot be used; ``str()`` is a one-line reason."""


def parse_simple_timer_start(text: Any) -> _dt.datetime:
    """SIMPLE_TIMER ``startTime``: exactly ``"YYYY-MM-DD HH:MM:SS"`` (UTC, doc/protocol.md §3.8) -> aware UTC."""
    if not isinstance(text, str):
        raise RuleParseError("startTime must be a string 'YYYY-MM-DD HH:MM:SS'")
    if _START_TIME_RE.fullmatch(text):
        try:
            return _dt.datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=_dt.timezone.utc)
        except ValueError:  # month 13, February 30, ...
            pass
    raise RuleParseError(f"startTime is not 'YYYY-MM-DD HH:MM:SS': {text!r}"[:120])


def _int_field(obj: Dict[str, Any], key: str, default: int, minimum: int) -> int:
    raw = obj.get(key, default)
    if raw is None or raw == "":
        raw = default
    value = codec.as_int(raw)
    if value is None:
        raise RuleParseError(f"{key} must be an integer, got {raw!r}"[:120])
    if value < minimum:
        raise RuleParseError(f"{key} must be >= {minimum}, got {value}")
    return value


def _str_field(obj: Dict[str, Any], key: str, default: str = "") -> str:
    raw = obj.get(key, default)
    if raw is None:
        return default
    if not isinstance(raw, str):
        raise RuleParseError(f"{key} must be a string")
    return raw


def parse_version(raw: Any) -> Optional[int]:
    """A rule version as int (``"3"`` accepted), or None when absent/unreadable."""
    return codec.as_int(raw)


def parse_condition(obj: Any, index: int) -> Condition:
    if not isinstance(obj, dict):
        raise RuleParseError(f"conditions[{index}] is not an object")
    cond = Condition()
    cond.type = _str_field(obj, "type")
    if cond.type == DEVICE_DATA:
        info = obj.get("deviceInfo")
        if not isinstance(info, dict):
            raise RuleParseError(f"conditions[{index}].deviceInfo missing")
        cond.device_info = DeviceInfo()
        cond.device_info.device_id = _str_field(info, "deviceId")
        cond.device_info.path = _str_field(info, "path")
        try:
            split_path(cond.device_info.path)
        except ValueError as exc:
            raise RuleParseError(f"conditions[{index}]: {exc}") from None
        cond.operator = _str_field(obj, "operator")
        if cond.operator not in OPERATORS:
            raise RuleParseError(f"conditions[{index}].operator unknown: {cond.operator!r}")
        value = obj.get("value", "")
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = str(value)
        if value is None:
            value = ""
        if not isinstance(value, str):
            raise RuleParseError(f"conditions[{index}].value must be a string")
        cond.value = value
        in_values = obj.get("inValues")
        if in_values is None:
            in_values = []
        if not isinstance(in_values, list) or not all(
                isinstance(v, (str, int, float)) and not isinstance(v, bool) for v in in_values):
            raise RuleParseError(f"conditions[{index}].inValues must be a list of strings or numbers")
        cond.in_values = [str(v) if not isinstance(v, str) else v for v in in_values]
        if cond.operator == "between":
            if parse_between(cond.value) is None:
                raise RuleParseError(f"conditions[{index}].value for 'between' must be 'min,max': {cond.value!r}")
            low, high = (to_number(part.strip()) for part in cond.value.split(","))
            if low is None or high is None or low > high:  # parse_between itself would swap them
                raise RuleParseError(f"conditions[{index}].value for 'between' needs min <= max: {cond.value!r}")
        if cond.operator in NUMERIC_OPERATORS and to_number(cond.value) is None:
            raise RuleParseError(f"conditions[{index}].value must be a number for {cond.operator!r}")
        if cond.operator == "in" and not cond.in_values:
            raise RuleParseError(f"conditions[{index}].inValues empty for 'in'")
    elif cond.type == DAILY_TIMER:
        cond.time = _str_field(obj, "time")
        cond.days_of_week = _str_field(obj, "daysOfWeek") if not isinstance(obj.get("daysOfWeek"), int) \
            else str(obj["daysOfWeek"])
        try:
            time_util.parse_hh_mm(cond.time)
            time_util.parse_days_of_week(cond.days_of_week)
        except ValueError as exc:
            raise RuleParseError(f"conditions[{index}]: {exc}") from None
    elif cond.type == SIMPLE_TIMER:
        cond.start_time = _str_field(obj, "startTime")
        start = parse_simple_timer_start(cond.start_time)
        cond.repeat_interval = _int_field(obj, "repeatInterval", 0, 0)
        cond.repeat_count = _int_field(obj, "repeatCount", 1, 0)
        if cond.repeat_count > 1 and cond.repeat_interval <= 0:
            raise RuleParseError(f"conditions[{index}]: repeatCount > 1 needs repeatInterval > 0")
        try:  # the last firing must be a date the scheduler can hold
            start + _dt.timedelta(seconds=cond.repeat_interval * max(cond.repeat_count - 1, 0))
        except OverflowError:
            raise RuleParseError(f"conditions[{index}]: repeatInterval x repeatCount ends after year 9999") from None
    else:
        raise RuleParseError(f"conditions[{index}].type unknown: {cond.type!r}")
    return cond


def parse_action(obj: Any, index: int) -> Action:
    from iot_device_sdk_python.client.request.command import Command  # SDK core; imported late

    if not isinstance(obj, dict):
        raise RuleParseError(f"actions[{index}] is not an object")
    action = Action()
    action.type = _str_field(obj, "type")
    action.status = _str_field(obj, "status")
    action.device_id = _str_field(obj, "deviceId")
    raw_cmd = obj.get("command")
    if raw_cmd is not None:
        if not isinstance(raw_cmd, dict):
            raise RuleParseError(f"actions[{index}].command is not an object")
        body = raw_cmd.get("commandBody")
        if isinstance(body, str):
            # some rule editors store the body as a JSON text
            try:
                body = json.loads(body) if body.strip() else {}
            except json.JSONDecodeError:
                raise RuleParseError(f"actions[{index}].command.commandBody is not JSON") from None
        if body is None:
            body = {}
        if not isinstance(body, dict):
            raise RuleParseError(f"actions[{index}].command.commandBody must be an object")
        command = Command()
        command.service_id = _str_field(raw_cmd, "serviceId")
        command.command_name = _str_field(raw_cmd, "commandName")
        command.paras = body
        command.device_id = action.device_id
        if not command.command_name:
            raise RuleParseError(f"actions[{index}].command.commandName missing")
        action.command = command
    return action


def parse_rule(obj: Any) -> RuleInfo:
    """One ``rulesInfos`` entry -> :class:`RuleInfo`; raises :class:`RuleParseError` (one-line reason)."""
    if not isinstance(obj, dict):
        raise RuleParseError("rule is not an object")
    rule = RuleInfo()
    rule.rule_id = _str_field(obj, "ruleId")
    if not rule.rule_id:
        raise RuleParseError("ruleId missing")
    rule.rule_name = _str_field(obj, "ruleName")
    rule.status = _str_field(obj, "status", STATUS_ACTIVE) or STATUS_ACTIVE
    if rule.status not in (STATUS_ACTIVE, STATUS_INACTIVE):
        raise RuleParseError(f"status unknown: {rule.status!r}")
    version = obj.get("ruleVersionInShadow")
    parsed_version = parse_version(version)
    if version is not None and parsed_version is None:
        raise RuleParseError(f"ruleVersionInShadow is not an integer: {version!r}")
    rule.rule_version_in_shadow = parsed_version if parsed_version is not None else 0
    if rule.status == STATUS_INACTIVE:
        return rule  # nothing else is needed to stop it
    rule.logic = (_str_field(obj, "logic", "and") or "and").lower()
    if rule.logic not in ("and", "or"):
        raise RuleParseError(f"logic must be 'and' or 'or': {rule.logic!r}")
    raw_range = obj.get("timeRange")
    if raw_range is not None:
        if not isinstance(raw_range, dict):
            raise RuleParseError("timeRange is not an object")
        if raw_range:
            tr = TimeRange()
            tr.start_time = _str_field(raw_range, "startTime")
            tr.end_time = _str_field(raw_range, "endTime")
            days = raw_range.get("daysOfWeek", "")
            tr.days_of_week = str(days) if isinstance(days, int) else _str_field(raw_range, "daysOfWeek")
            try:
                time_util.validate_time_range(tr)
            except ValueError as exc:
                raise RuleParseError(f"timeRange: {exc}") from None
            rule.time_range = tr
    conditions = obj.get("conditions")
    if not isinstance(conditions, list) or not conditions:
        raise RuleParseError("conditions missing or empty")
    rule.conditions = [parse_condition(c, i) for i, c in enumerate(conditions)]
    timers = [c for c in rule.conditions if c.type in TIMER_TYPES]
    if timers and rule.logic == "and" and len(rule.conditions) > 1:
        # a timer fires at an instant: "and" with another condition has no meaning
        raise RuleParseError("a timer condition can only be combined with others under logic 'or'")
    actions = obj.get("actions")
    if not isinstance(actions, list) or not actions:
        raise RuleParseError("actions missing or empty")
    rule.actions = [parse_action(a, i) for i, a in enumerate(actions)]
    return rule
