"""Receiver of raw inbound MQTT messages (upstream ``transport.raw_message_listener``)."""
from __future__ import annotations

from abc import ABCMeta, abstractmethod
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from iot_device_sdk_python.transport.raw_message import RawMessage


class RawMessageListener(metaclass=ABCMeta):
    """Anything that takes a :class:`RawMessage`: the DeviceClient router, custom-topic listeners."""

    @abstractmethod
    def on_message_received(self, message: "RawMessage") -> None:
        """Handle one inbound message (called on the device's dispatcher thread)."""
