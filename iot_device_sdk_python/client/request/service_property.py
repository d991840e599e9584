"""Properties of one service (upstream ``client.request.service_property``)."""
from __future__ import annotations

from typing import Any, Dict, Optional

from iot_device_sdk_python.client.request._util import as_dict, get_dict, get_str
from iot_device_sdk_python.utils._props import Field, rw


class ServiceProperty:
    """``service_id``, ``properties`` (dict) and ``event_time`` (UTC ``yyyyMMdd'T'HHmmss'Z'`` or None)."""

    def __init__(self, service_id: str = "", properties: Optional[Dict[str, Any]] = None, event_time: Optional[str] = None) -> None:
        self._service_id = service_id
        self._properties = properties if properties is not None else {}
        self._event_time = event_time

    service_id: Field[str] = rw("_service_id")
    properties: Field[Dict[str, Any]] = rw("_properties")
    event_time: Field[Optional[str]] = rw("_event_time")

    def to_dict(self) -> Dict[str, Any]:
        return {"service_id": self._service_id, "properties": self._properties, "event_time": self._event_time}

    def convert_from_dict(self, json_dict: Dict[str, Any]) -> None:
        d = as_dict(json_dict)
        self._service_id = get_str(d, "service_id", self._service_id)
        self._properties = get_dict(d, "properties", self._properties)
        self._event_time = get_str(d, "event_time", self._event_time)

    def __repr__(self) -> str:
        return f"ServiceProperty({self._service_id!r}, {self._properties!r}, {self._event_time!r})"
