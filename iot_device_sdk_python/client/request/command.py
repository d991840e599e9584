"""A command sent by the platform (upstream ``client.request.command``)."""
from __future__ import annotations

from typing import Any, Dict

from iot_device_sdk_python.client.request._util import as_dict, get_dict, get_str
from iot_device_sdk_python.utils._props import Field, rw


class Command:
    """``service_id``, ``command_name``, ``device_id`` (JSON ``object_device_id``: the target device,
    filled for gateway children) and ``paras``."""

    def __init__(self) -> None:
        self._service_id = ""
        self._command_name = ""
        self._device_id = ""
        self._paras: Dict[str, Any] = {}

    service_id: Field[str] = rw("_service_id")
    command_name: Field[str] = rw("_command_name")
    device_id: Field[str] = rw("_device_id", "Target device (JSON ``object_device_id``).")
    paras: Field[Dict[str, Any]] = rw("_paras")

    def to_dict(self) -> Dict[str, Any]:
        return {"service_id": self._service_id, "command_name": self._command_name,
                "object_device_id": self._device_id, "paras": self._paras}

    def convert_from_dict(self, json_dict: Dict[str, Any]) -> None:
        """Copy known keys from a parsed command payload; bad or missing values are left unchanged."""
        d = as_dict(json_dict)
        self._service_id = get_str(d, "service_id", self._service_id)
        self._command_name = get_str(d, "command_name", self._command_name)
        self._device_id = get_str(d, "object_device_id", self._device_id)
        self._paras = get_dict(d, "paras", self._paras)

    def __repr__(self) -> str:
        return f"Command(service_id={self._service_id!r}, command_name={self._command_name!r}, device_id={self._device_id!r})"
