"""The user hook for rule actions (upstream ``rule.model.action_handler``)."""
from __future__ import annotations

from abc import ABCMeta, abstractmethod
from typing import TYPE_CHECKING, List

if TYPE_CHECKING:
    from iot_device_sdk_python.rule.model.actions import Action


class ActionHandler(metaclass=ABCMeta):
    """Install with ``DeviceClient.set_rule_action_handler`` to receive the actions of every fired rule
    instead of having them run as commands."""

    @abstractmethod
    def handle_rule_action(self, action: List["Action"]) -> None:
        """Called with the whole action list of one fired rule."""
