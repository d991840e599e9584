"""Evaluation of DEVICE_DATA conditions against reported properties (upstream ``rule.model.condition_execute``)."""
from __future__ import annotations

import logging
import math
from typing import Any, Callable, List, Optional, Tuple

from iot_device_sdk_python.rule.model.connditions import Condition

_logger = logging.getLogger(__name__)

_MISSING = object()

DEVICE_DATA = "DEVICE_DATA"
OPERATORS = (">", ">=", "<", "<=", "=", "between", "in")


def split_path(path: Any) -> Tuple[str, List[str]]:
    """``"service/property"`` (or ``"service/a/b"`` for a nested value) -> ``(service_id, [segments])``.
    Raises ``ValueError`` when the path has no service or no property part."""
    if not isinstance(path, str):
        raise ValueError("path must be a string 'service_id/property'")
    parts = path.strip("/").split("/")
    if len(parts) < 2 or not all(parts):
        raise ValueError(f"path must be 'service_id/property': {path!r}")
    return parts[0], parts[1:]


def to_number(value: Any) -> Optional[float]:
    """A finite float for numbers and numeric strings; None otherwise (booleans are not numbers here)."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


class ConditionExecute:
    """Decides whether one DEVICE_DATA condition holds for a list of ``ServiceProperty``.

    ``device_id`` is the own device id: a condition naming another device is never satisfied by this
    device's reports. Every ``operation_*`` returns False (never raises) when the property is missing
    or not comparable.
    """

    def __init__(self, device_id: Optional[str] = None) -> None:
        self.device_id = device_id

    def is_condition_satisfied(self, condition: Condition, properties: List[Any]) -> bool:
        """True when ``condition`` (type DEVICE_DATA) holds for the reported ``properties``."""
        if condition is None or condition.type != DEVICE_DATA or condition.device_info is None:
            return False
        target = condition.device_info.device_id
        if target and self.device_id and target != self.device_id:
            return False
        try:
            service_id, _ = split_path(condition.device_info.path)
        except ValueError:
            return False
        path = condition.device_info.path
        op = condition.operator
        if op == "<=":
            return self.operation_less_equal(condition.value, service_id, path, properties)
        if op == "<":
            return self.operation_less_than(condition.value, service_id, path, properties)
        if op == "=":
            return self.operation_equal(condition.value, service_id, path, properties)
        if op == ">=":
            return self.operation_more_equal(condition.value, service_id, path, properties)
        if op == ">":
            return self.operation_more_than(condition.value, service_id, path, properties)
        if op == "between":
            return self.operation_between(condition.value, service_id, path, properties)
        if op == "in":
            return self.operation_in(condition.in_values, service_id, path, properties)
        return False

    # ---- operators (upstream names) ------------------------------------------------------------

    def operation_less_equal(self, value: str, service_id: str, property_path: str, properties: List[Any]) -> bool:
        return self._compare(value, service_id, property_path, properties, lambda a, b: a <= b)

    def operation_less_than(self, value: str, service_id: str, property_path: str, properties: List[Any]) -> bool:
        return self._compare(value, service_id, property_path, properties, lambda a, b: a < b)

    def operation_more_equal(self, value: str, service_id: str, property_path: str, properties: List[Any]) -> bool:
        return self._compare(value, service_id, property_path, properties, lambda a, b: a >= b)

    def operation_more_than(self, value: str, service_id: str, property_path: str, properties: List[Any]) -> bool:
        return self._compare(value, service_id, property_path, properties, lambda a, b: a > b)

    def operation_equal(self, value: str, service_id: str, property_path: str, properties: List[Any]) -> bool:
        actual = self._lookup(service_id, property_path, properties)
        if actual is _MISSING:
            return False
        a, b = to_number(actual), to_number(value)
        if a is not None and b is not None:
            return a == b
        # not both numeric: compare as text (booleans as the JSON words)
        return _as_text(actual) == _as_text(value)

    def operation_between(self, value: str, service_id: str, property_path: str, properties: List[Any]) -> bool:
        bounds = parse_between(value)
        if bounds is None:
            return False
        actual = to_number(self._lookup(service_id, property_path, properties))
        return actual is not None and bounds[0] <= actual <= bounds[1]

    def operation_in(self, value: List[str], service_id: str, property_path: str, properties: List[Any]) -> bool:
        actual = self._lookup(service_id, property_path, properties)
        if actual is _MISSING or not isinstance(value, (list, tuple)):
            return False
        number = to_number(actual)
        for candidate in value:
            c = to_number(candidate)
            if number is not None and c is not None:
                if number == c:
                    return True
            elif _as_text(actual) == _as_text(candidate):
                return True
        return False

    # ---- helpers -------------------------------------------------------------------------------

    def _compare(self, value: Any, service_id: str, property_path: str, properties: Any,
                 op: Callable[[float, float], bool]) -> bool:
        actual = to_number(self._lookup(service_id, property_path, properties))
        expected = to_number(value)
        if actual is None or expected is None:
            return False
        return op(actual, expected)

    @staticmethod
    def _lookup(service_id: str, property_path: str, properties: List[Any]) -> Any:
        """The reported value at ``property_path`` (``service/prop`` or ``service/a/b``), or ``_MISSING``."""
        try:
            _, segments = split_path(property_path)
        except ValueError:
            return _MISSING
        for sp in properties or ():
            sid = sp.get("service_id") if isinstance(sp, dict) else getattr(sp, "service_id", None)
            props = sp.get("properties") if isinstance(sp, dict) else getattr(sp, "properties", None)
            if sid != service_id or not isinstance(props, dict):
                continue
            current: Any = props
            for seg in segments:
                if isinstance(current, dict) and seg in current:
                    current = current[seg]
                else:
                    current = _MISSING
                    break
            if current is not _MISSING:
                return current
            # upstream compatibility: the last segment names the property
            if segments[-1] in props:
                return props[segments[-1]]
        return _MISSING


def parse_between(value: Any) -> Optional[Tuple[float, float]]:
    """``"a,b"`` -> ``(min, max)`` as floats, or None when unreadable."""
    if not isinstance(value, str):
        return None
    parts = value.split(",")
    if len(parts) != 2:
        return None
    low, high = to_number(parts[0].strip()), to_number(parts[1].strip())
    if low is None or high is None:
        return None
    return (low, high) if low <= high else (high, low)


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
