"""Desired/reported section of a shadow (upstream ``client.request.properties_data``)."""
from __future__ import annotations

from typing import Any, Dict

from iot_device_sdk_python.client.request._util import as_dict, get_dict, get_str
from iot_device_sdk_python.utils._props import Field, rw


class PropertiesData:
    """``properties`` (dict) and ``event_time``."""

    def __init__(self) -> None:
        self._properties: Dict[str, Any] = {}
        self._event_time = ""

    properties: Field[Dict[str, Any]] = rw("_properties")
    event_time: Field[str] = rw("_event_time")

    def convert_from_dict(self, json_dict: Dict[str, Any]) -> None:
        d = as_dict(json_dict)
        self._properties = get_dict(d, "properties", self._properties)
        self._event_time = get_str(d, "event_time", self._event_time)

    def to_dict(self) -> Dict[str, Any]:
        return {"properties": self._properties, "event_time": self._event_time}
