"""A device message in the system format (upstream ``client.request.device_message``)."""
from __future__ import annotations

from typing import Any, Dict

from iot_device_sdk_python.client.request._util import as_dict, get_str
from iot_device_sdk_python.utils._props import Field, rw


class DeviceMessage:
    """``device_id`` (JSON ``object_device_id``), ``id``, ``name``, ``content``."""

    def __init__(self) -> None:
        self._device_id = ""
        self._id = ""
        self._name = ""
        self._content = ""

    device_id: Field[str] = rw("_device_id", "Target/source device (JSON ``object_device_id``).")
    id: Field[str] = rw("_id")
    name: Field[str] = rw("_name")
    content: Field[str] = rw("_content", "Message body (str, or any JSON value when reported).")

    def to_dict(self) -> Dict[str, Any]:
        return {"object_device_id": self._device_id, "id": self._id, "name": self._name, "content": self._content}

    def convert_from_dict(self, json_dict: Dict[str, Any]) -> None:
        d = as_dict(json_dict)
        self._device_id = get_str(d, "object_device_id", self._device_id)
        self._id = get_str(d, "id", self._id)
        self._name = get_str(d, "name", self._name)
        if "content" in d and d["content"] is not None:
            self._content = d["content"]

    def __repr__(self) -> str:
        return f"DeviceMessage(device_id={self._device_id!r}, id={self._id!r}, name={self._name!r})"
