"""Receives property set/get requests (upstream ``client.listener.property_listener``)."""
from __future__ import annotations

from abc import ABCMeta, abstractmethod
from typing import List, TYPE_CHECKING

if TYPE_CHECKING:
    from iot_device_sdk_python.client.request.service_property import ServiceProperty


class PropertyListener(metaclass=ABCMeta):
    """Answer with ``respond_properties_set`` / ``respond_properties_get``."""

    @abstractmethod
    def on_property_set(self, request_id: str, services: List["ServiceProperty"]) -> None:
        """The platform writes properties of this device."""

    @abstractmethod
    def on_property_get(self, request_id: str, service_id: str) -> None:
        """The platform reads properties of this device ("" = all services)."""
