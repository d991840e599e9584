"""Receives shadow query responses (upstream ``client.listener.device_shadow_listener``)."""
from __future__ import annotations

from abc import ABCMeta, abstractmethod
from typing import List, TYPE_CHECKING

if TYPE_CHECKING:
    from iot_device_sdk_python.client.request.shadow_data import ShadowData


class DeviceShadowListener(metaclass=ABCMeta):
    """Answer to ``DeviceClient.get_device_shadow``."""

    @abstractmethod
    def on_shadow_get(self, request_id: str, object_device_id: str, shadow: List["ShadowData"]) -> None:
        """The shadow of ``object_device_id`` for the query ``request_id``."""
