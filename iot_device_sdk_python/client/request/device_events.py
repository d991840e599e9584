"""An events envelope (upstream ``client.request.device_events``)."""
from __future__ import annotations

from typing import Any, Dict, List

from iot_device_sdk_python.client.request._util import as_dict, get_list, get_str
from iot_device_sdk_python.client.request.device_event import DeviceEvent
from iot_device_sdk_python.utils._props import Field, rw


class DeviceEvents:
    """``device_id`` (JSON ``object_device_id``) and ``services`` (list of :class:`DeviceEvent`)."""

    def __init__(self) -> None:
        self._device_id = ""
        self._services: List[DeviceEvent] = []

    device_id: Field[str] = rw("_device_id", "Device the events are about (JSON ``object_device_id``).")
    services: Field[List[DeviceEvent]] = rw("_services")

    def to_dict(self) -> Dict[str, Any]:
        return {"object_device_id": self._device_id, "services": [s.to_dict() for s in self._services]}

    def convert_from_dict(self, json_dict: Dict[str, Any]) -> None:
        """Read ``object_device_id`` and ``services``; entries that are not objects are skipped."""
        d = as_dict(json_dict)
        self._device_id = get_str(d, "object_device_id", self._device_id)
        if "services" in d:
            events = []
            for item in get_list(d, "services"):
                if isinstance(item, dict):
                    ev = DeviceEvent()
                    ev.convert_from_dict(item)
                    events.append(ev)
            self._services = events
