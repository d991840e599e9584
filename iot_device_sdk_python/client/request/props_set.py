"""A property write from the platform (upstream ``client.request.props_set``; class name ``PropSet``)."""
from __future__ import annotations

from typing import Any, Dict, List

from iot_device_sdk_python.client.request.service_property import ServiceProperty
from iot_device_sdk_python.utils._props import Field, rw


class PropSet:
    """``device_id`` (the target: the gateway child for sub-device writes) and ``services``."""

    def __init__(self) -> None:
        self._device_id = ""
        self._services: List[ServiceProperty] = []

    device_id: Field[str] = rw("_device_id")
    services: Field[List[ServiceProperty]] = rw("_services")

    def to_dict(self) -> Dict[str, Any]:
        return {"object_device_id": self._device_id, "services": [s.to_dict() for s in self._services]}
