"""A parsed device rule (upstream ``rule.model.rule_info``)."""
from __future__ import annotations

from typing import List, Optional

from iot_device_sdk_python.rule.model.actions import Action
from iot_device_sdk_python.rule.model.connditions import Condition
from iot_device_sdk_python.rule.model.time_range import TimeRange


class RuleInfo:
    """One rule: id, name, ``logic`` (``"and"``/``"or"``), optional ``time_range``, ``status``
    (``"active"``/``"inactive"``), conditions, actions and the version the platform gave it."""

    def __init__(self) -> None:
        self.rule_id: str = ""
        self.rule_name: str = ""
        self.logic: str = ""
        self.time_range: Optional[TimeRange] = None
        self.status: str = ""
        self.conditions: List[Condition] = []
        self.actions: List[Action] = []
        self.rule_version_in_shadow: int = 0

    def __repr__(self) -> str:
        return (f"RuleInfo(rule_id={self.rule_id!r}, name={self.rule_name!r}, status={self.status!r}, "
                f"version={self.rule_version_in_shadow!r}, logic={self.logic!r}, conditions={len(self.conditions)}, "
                f"actions={len(self.actions)})")
