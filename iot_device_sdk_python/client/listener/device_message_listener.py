"""Receives system-format messages (upstream ``client.listener.device_message_listener``)."""
from __future__ import annotations

from abc import ABCMeta, abstractmethod
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from iot_device_sdk_python.client.request.device_message import DeviceMessage


class DeviceMessageListener(metaclass=ABCMeta):
    """Gets ``messages/down`` payloads that are in the system format and meant for this device."""

    @abstractmethod
    def on_device_message(self, message: "DeviceMessage") -> None:
        """One message (dispatcher thread)."""
