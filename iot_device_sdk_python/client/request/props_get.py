"""A property query from the platform (upstream ``client.request.props_get``)."""
from __future__ import annotations

from typing import Any, Dict

from iot_device_sdk_python.client.request._util import as_dict, get_str
from iot_device_sdk_python.utils._props import Field, rw


class PropsGet:
    """``device_id`` (JSON ``object_device_id``) and ``service_id`` ("" = all services)."""

    def __init__(self) -> None:
        self._device_id = ""
        self._service_id = ""

    device_id: Field[str] = rw("_device_id")
    service_id: Field[str] = rw("_service_id")

    def convert_from_dict(self, json_dict: Dict[str, Any]) -> None:
        d = as_dict(json_dict)
        self._device_id = get_str(d, "object_device_id", self._device_id)
        self._service_id = get_str(d, "service_id", self._service_id)

    def to_dict(self) -> Dict[str, Any]:
        return {"object_device_id": self._device_id, "service_id": self._service_id}
