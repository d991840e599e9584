"""Receives every downlink message as bytes (upstream ``client.listener.raw_device_message_listener``)."""
from __future__ import annotations

from abc import ABCMeta, abstractmethod
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from iot_device_sdk_python.client.request.raw_device_message import RawDeviceMessage


class RawDeviceMessageListener(metaclass=ABCMeta):
    """Gets every ``messages/down`` payload: binary, non-object JSON and system format alike."""

    @abstractmethod
    def on_raw_device_message(self, message: "RawDeviceMessage") -> None:
        """One message (dispatcher thread)."""
