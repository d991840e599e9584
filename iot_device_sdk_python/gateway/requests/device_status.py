"""``DeviceStatus``: one entry of a ``sub_device_update_status`` event."""
from __future__ import annotations

from typing import Any, Dict, Optional

from iot_device_sdk_python.gateway.requests._model import as_text, rw
from iot_device_sdk_python.utils._props import Field

ONLINE = "ONLINE"
OFFLINE = "OFFLINE"


class DeviceStatus:
    """``device_id`` and its ``status`` (``"ONLINE"`` or ``"OFFLINE"``)."""

    device_id: Field[str] = rw("device_id")
    status: Field[str] = rw("status", "ONLINE or OFFLINE")

    def __init__(self, device_id: str = "", status: str = "") -> None:
        self._device_id = device_id
        self._status = status

    def to_dict(self) -> Dict[str, Any]:
        return {"device_id": self._device_id, "status": self._status}

    def convert_from_dict(self, json_dict: Optional[Dict[str, Any]]) -> "DeviceStatus":
        """Copy ``device_id`` and ``status``; returns ``self``."""
        if isinstance(json_dict, dict):
            if "device_id" in json_dict:
                self._device_id = as_text(json_dict["device_id"], self._device_id)
            if "status" in json_dict:
                self._status = as_text(json_dict["status"], self._status)
        return self

    def __repr__(self) -> str:
        return f"DeviceStatus({self._device_id!r}, {self._status!r})"
