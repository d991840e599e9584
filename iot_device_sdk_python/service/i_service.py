"""The interface every device service implements (upstream ``service.i_service``)."""
from __future__ import annotations

from abc import ABCMeta, abstractmethod
from typing import Any, Dict, List, TYPE_CHECKING

if TYPE_CHECKING:
    from iot_device_sdk_python.client.iot_result import IotResult
    from iot_device_sdk_python.client.request.command import Command
    from iot_device_sdk_python.client.request.command_response import CommandRsp
    from iot_device_sdk_python.client.request.device_event import DeviceEvent


class IService(metaclass=ABCMeta):
    """A service of the device's product model, or a system service (``$ota``, ``$time_sync``...)."""

    @abstractmethod
    def on_read(self, properties: List[str]) -> Dict[str, Any]:
        """Return ``{property_name: value}`` for the named readable properties (all when empty)."""

    @abstractmethod
    def on_write(self, properties: Dict[str, Any]) -> "IotResult":
        """Apply ``{property_name: value}`` and return the result sent to the platform."""

    @abstractmethod
    def on_command(self, command: "Command") -> "CommandRsp":
        """Run a command of this service and return its response."""

    @abstractmethod
    def on_event(self, device_event: "DeviceEvent") -> None:
        """Handle one platform event addressed to this service."""
