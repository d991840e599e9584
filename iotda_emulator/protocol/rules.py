"""Validation of ``$device_rule`` rule objects (the ``rulesInfos`` entries a device receives).

Source: ``doc/protocol.md`` §3.8. IoTDA publishes no device-side page for device rules; the shape there
is what Huawei's device SDKs read. The emulator validates a rule before storing it, so that it never
serves a device a rule that IoTDA would not send. It checks the shape only - it does not run rules.

Choices where §3.8 is silent:

* ``ruleId``, ``status`` (``active``/``inactive``), ``conditions`` (1+) and ``actions`` (1+) are required;
  ``ruleName``, ``logic`` (``and``/``or``, default ``and``), ``timeRange`` and ``ruleVersionInShadow``
  (a non-negative integer) are optional. An inactive rule is checked as fully as an active one: it can be
  activated later without being sent again.
* A timer condition fires at an instant, so it is combined with other conditions only under ``or``.
* ``between`` takes ``"min,max"`` with min <= max; ``>``/``>=``/``<``/``<=`` take a number; ``in`` takes
  a non-empty ``inValues``.
* ``daysOfWeek`` is a comma list of 1 (Sunday) to 7 (Saturday); times of day are ``HH:MM`` (UTC).
* Action ``type`` must be ``DEVICE_CMD`` (the only type §3.8 names) with ``status`` ``enable``/``disable``
  and a ``command`` whose ``commandName`` is set and whose ``commandBody`` (optional) is an object.
"""
from __future__ import annotations

import math
import re
from typing import Any, List, Optional

from iotda_emulator.protocol import codec

DEVICE_DATA = "DEVICE_DATA"
DAILY_TIMER = "DAILY_TIMER"
SIMPLE_TIMER = "SIMPLE_TIMER"
CONDITION_TYPES = (DEVICE_DATA, DAILY_TIMER, SIMPLE_TIMER)
TIMER_TYPES = (DAILY_TIMER, SIMPLE_TIMER)
OPERATORS = (">", ">=", "<", "<=", "=", "between", "in")
NUMERIC_OPERATORS = (">", ">=", "<", "<=")
LOGICS = ("and", "or")
RULE_STATUSES = ("active", "inactive")          # the rule's own status
ACTION_STATUSES = ("enable", "disable")         # an action's status (§3.8: the C SDK runs only "enable")
ACTION_TYPES = ("DEVICE_CMD",)

_HH_MM_RE = re.compile(r"([01][0-9]|2[0-3]):[0-5][0-9]")
_DAYS_RE = re.compile(r"[1-7](,[1-7])*")


class RuleError(ValueError):
    """A rule object is not one a device can be given. ``str()`` names the field and the reason;
    ``field`` holds the field's path, e.g. ``conditions[0].operator``."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}" if field else reason)
        self.field = field
        self.reason = reason


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _require_str(obj: dict, key: str, where: str, *, required: bool = True, non_empty: bool = False) -> Optional[str]:
    field = f"{where}.{key}" if where else key
    if key not in obj or obj[key] is None:
        if required:
            raise RuleError(field, "missing")
        return None
    value = obj[key]
    if not isinstance(value, str):
        raise RuleError(field, f"must be a string, got {_short(value)}")
    if non_empty and not value:
        raise RuleError(field, "must not be empty")
    return value


def _require_int(obj: dict, key: str, where: str, minimum: int, default: Optional[int] = None) -> int:
    field = f"{where}.{key}" if where else key
    value = obj.get(key)
    if value is None:
        if default is None:
            raise RuleError(field, "missing")
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise RuleError(field, f"must be an integer, got {_short(value)}")
    if value < minimum:
        raise RuleError(field, f"must be >= {minimum}, got {value}")
    return value


def _number(text: Any) -> Optional[float]:
    if isinstance(text, bool):
        return None
    if isinstance(text, (int, float)):
        value = float(text)
    elif isinstance(text, str):
        try:
            value = float(text.strip())
        except ValueError:
            return None
    else:
        return None
    return value if math.isfinite(value) else None


def _check_hh_mm(obj: dict, key: str, where: str) -> None:
    value = _require_str(obj, key, where)
    if not _HH_MM_RE.fullmatch(value or ""):
        raise RuleError(f"{where}.{key}", f"must be HH:MM (00:00-23:59), got {_short(value)}")


def _check_days(obj: dict, key: str, where: str) -> None:
    value = obj.get(key)
    if value is None or value == "":
        return   # every day
    if not isinstance(value, str) or not _DAYS_RE.fullmatch(value):
        raise RuleError(f"{where}.{key}", f"must list days 1 (Sunday) to 7 as '1,2,...', got {_short(value)}")


def _check_condition(cond: Any, where: str) -> str:
    if not isinstance(cond, dict):
        raise RuleError(where, "must be an object")
    ctype = cond.get("type")
    if ctype not in CONDITION_TYPES:
        raise RuleError(f"{where}.type", f"must be one of {', '.join(CONDITION_TYPES)}, got {_short(ctype)}")
    if ctype == DEVICE_DATA:
        info = cond.get("deviceInfo")
        if not isinstance(info, dict):
            raise RuleError(f"{where}.deviceInfo", "must be an object with deviceId and path")
        _require_str(info, "deviceId", f"{where}.deviceInfo")
        path = _require_str(info, "path", f"{where}.deviceInfo") or ""
        service, sep, prop = path.partition("/")
        if not sep or not service or not prop or "/" in prop:
            raise RuleError(f"{where}.deviceInfo.path", f"must be 'service_id/property', got {_short(path)}")
        operator = cond.get("operator")
        if operator not in OPERATORS:
            raise RuleError(f"{where}.operator", f"must be one of {' '.join(OPERATORS)}, got {_short(operator)}")
        value = cond.get("value")
        if value is not None and (isinstance(value, bool) or not isinstance(value, (str, int, float))):
            raise RuleError(f"{where}.value", f"must be a string or a number, got {_short(value)}")
        if operator in NUMERIC_OPERATORS and _number(value) is None:
            raise RuleError(f"{where}.value", f"must be a number for {operator!r}, got {_short(value)}")
        if operator == "between":
            parts = value.split(",") if isinstance(value, str) else []
            bounds = [_number(p) for p in parts]
            if len(bounds) != 2 or None in bounds:
                raise RuleError(f"{where}.value", f"must be 'min,max' for 'between', got {_short(value)}")
            if bounds[0] > bounds[1]:
                raise RuleError(f"{where}.value", f"'between' needs min <= max, got {_short(value)}")
        in_values = cond.get("inValues")
        if in_values is not None and (not isinstance(in_values, list) or not all(
                isinstance(v, (str, int, float)) and not isinstance(v, bool) for v in in_values)):
            raise RuleError(f"{where}.inValues", "must be a list of strings or numbers")
        if operator == "in" and not in_values:
            raise RuleError(f"{where}.inValues", "must not be empty for 'in'")
    elif ctype == DAILY_TIMER:
        _check_hh_mm(cond, "time", where)
        _check_days(cond, "daysOfWeek", where)
    else:  # SIMPLE_TIMER
        try:
            codec.parse_rule_start_time(cond.get("startTime"))
        except ValueError:
            raise RuleError(f"{where}.startTime",
                            f"must be UTC 'YYYY-MM-DD HH:MM:SS', got {_short(cond.get('startTime'))}") from None
        interval = _require_int(cond, "repeatInterval", where, 0, default=0)
        count = _require_int(cond, "repeatCount", where, 0, default=1)
        if count > 1 and interval == 0:
            raise RuleError(f"{where}.repeatInterval", "must be > 0 when repeatCount > 1")
    return ctype


def _check_action(action: Any, where: str) -> None:
    if not isinstance(action, dict):
        raise RuleError(where, "must be an object")
    atype = action.get("type")
    if atype not in ACTION_TYPES:
        raise RuleError(f"{where}.type", f"must be one of {', '.join(ACTION_TYPES)}, got {_short(atype)}")
    status = action.get("status")
    if status not in ACTION_STATUSES:
        raise RuleError(f"{where}.status", f"must be 'enable' or 'disable', got {_short(status)}")
    _require_str(action, "deviceId", where)
    command = action.get("command")
    if not isinstance(command, dict):
        raise RuleError(f"{where}.command", "must be an object with commandName")
    _require_str(command, "serviceId", f"{where}.command", required=False)
    _require_str(command, "commandName", f"{where}.command", non_empty=True)
    body = command.get("commandBody")
    if body is not None and not isinstance(body, dict):
        raise RuleError(f"{where}.command.commandBody", f"must be an object, got {_short(body)}")


def validate_rule(rule: Any) -> dict:
    """Check one rule object (a ``rulesInfos`` entry, §3.8); returns it unchanged.

    Raises :class:`RuleError` naming the first field that is wrong.
    """
    if not isinstance(rule, dict):
        raise RuleError("", f"a rule must be a JSON object, got {_short(rule)}")
    _require_str(rule, "ruleId", "", non_empty=True)
    _require_str(rule, "ruleName", "", required=False)
    status = rule.get("status")
    if status not in RULE_STATUSES:
        raise RuleError("status", f"must be 'active' or 'inactive', got {_short(status)}")
    if rule.get("ruleVersionInShadow") is not None:
        _require_int(rule, "ruleVersionInShadow", "", 0)
    logic = rule.get("logic", "and")
    if logic not in LOGICS:
        raise RuleError("logic", f"must be 'and' or 'or', got {_short(logic)}")
    time_range = rule.get("timeRange")
    if time_range is not None:
        if not isinstance(time_range, dict):
            raise RuleError("timeRange", "must be an object")
        if time_range:
            _check_hh_mm(time_range, "startTime", "timeRange")
            _check_hh_mm(time_range, "endTime", "timeRange")
            _check_days(time_range, "daysOfWeek", "timeRange")
    conditions = rule.get("conditions")
    if not isinstance(conditions, list) or not conditions:
        raise RuleError("conditions", "must be a non-empty list")
    types: List[str] = [_check_condition(c, f"conditions[{i}]") for i, c in enumerate(conditions)]
    if logic == "and" and len(types) > 1 and any(t in TIMER_TYPES for t in types):
        raise RuleError("logic", "a timer condition can be combined with other conditions only under 'or'")
    actions = rule.get("actions")
    if not isinstance(actions, list) or not actions:
        raise RuleError("actions", "must be a non-empty list")
    for i, action in enumerate(actions):
        _check_action(action, f"actions[{i}]")
    return rule
