"""One event of a ``services`` array (upstream ``client.request.device_event``)."""
from __future__ import annotations

from typing import Any, Dict

from iot_device_sdk_python.client.request._util import as_dict, get_dict, get_str
from iot_device_sdk_python.utils._props import Field, rw


class DeviceEvent:
    """``service_id``, ``event_type``, ``event_time`` (UTC ``yyyyMMdd'T'HHmmss'Z'``), ``event_id``, ``paras``."""

    def __init__(self) -> None:
        self._service_id = ""
        self._event_type = ""
        self._event_time = ""
        self._event_id = ""
        self._paras: Dict[str, Any] = {}

    service_id: Field[str] = rw("_service_id")
    event_type: Field[str] = rw("_event_type")
    event_time: Field[str] = rw("_event_time")
    event_id: Field[str] = rw("_event_id")
    paras: Field[Dict[str, Any]] = rw("_paras")

    def to_dict(self) -> Dict[str, Any]:
        return {"service_id": self._service_id, "event_type": self._event_type, "event_time": self._event_time,
                "event_id": self._event_id, "paras": self._paras}

    def convert_from_dict(self, json_dict: Dict[str, Any]) -> None:
        d = as_dict(json_dict)
        self._service_id = get_str(d, "service_id", self._service_id)
        self._event_type = get_str(d, "event_type", self._event_type)
        self._event_time = get_str(d, "event_time", self._event_time)
        self._event_id = get_str(d, "event_id", self._event_id)
        self._paras = get_dict(d, "paras", self._paras)

    def __repr__(self) -> str:
        return f"DeviceEvent(service_id={self._service_id!r}, event_type={self._event_type!r}, event_id={self._event_id!r})"
