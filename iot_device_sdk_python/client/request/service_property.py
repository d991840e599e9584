"""Properties of one service (upstream ``client.request.service_property``)."""
from __future__ import annotations

from typing import Optional

from iot_device_sdk_python.client.request._util import as_dict, get_dict, get_str
from iot_device_sdk_python.utils._props import rw


class ServiceProperty:
    """``service_id``, ``properties`` (dict) and ``event_time`` (UTC ``yyyyMMdd'T'HHmmss'Z'`` or None)."""

    def __init__(self, service_id: str = "", properties: Optional[dict] = None, event_time: Optional[str] = None):
        self._service_id = service_id
        self._properties = properties if properties is not None else {}
        self._event_time = event_time

    service_id = rw("_service_id")
    properties = rw("_properties")
    event_time = rw("_event_time")

    def to_dict(self) -> dict:
        return {"service_id": self._service_id, "properties": self._properties, "event_time": self._event_time}

    def convert_from_dict(self, json_dict: dict):
        d = as_dict(json_dict)
        self._service_id = get_str(d, "service_id", self._service_id)
        self._properties = get_dict(d, "properties", self._properties)
        self._event_time = get_str(d, "event_time", self._event_time)

    def __repr__(self) -> str:
        return f"ServiceProperty({self._service_id!r}, {self._properties!r}, {self._event_time!r})"
