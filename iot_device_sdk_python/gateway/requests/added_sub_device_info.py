"""``AddedSubDeviceInfo``: one entry of a gateway's ``add_sub_device_request``."""
from __future__ import annotations

from typing import Any, Dict, Optional

from iot_device_sdk_python.gateway.requests._model import as_dict, as_text, rw
from iot_device_sdk_python.utils._props import Field

_TEXT_FIELDS = ("parent_device_id", "node_id", "device_id", "name", "description", "product_id")


class AddedSubDeviceInfo:
    """A sub-device the gateway asks the platform to create.

    ``node_id`` and ``product_id`` are mandatory for the platform; ``extension_info`` is an optional
    dict (≤ 1 KB on IoTDA).
    """

    parent_device_id: Field[str] = rw("parent_device_id")
    node_id: Field[str] = rw("node_id")
    device_id: Field[str] = rw("device_id")
    name: Field[str] = rw("name")
    description: Field[str] = rw("description")
    product_id: Field[str] = rw("product_id")
    extension_info: Field[Optional[Dict[str, Any]]] = rw("extension_info")

    def __init__(self, parent_device_id: str = "", node_id: str = "", device_id: str = "", name: str = "",
                 description: str = "", product_id: str = "", extension_info: Optional[Dict[str, Any]] = None) -> None:
        self._parent_device_id = parent_device_id
        self._node_id = node_id
        self._device_id = device_id
        self._name = name
        self._description = description
        self._product_id = product_id
        self._extension_info = extension_info

    def to_dict(self) -> Dict[str, Any]:
        """All 7 fields (``extension_info`` may be ``None``)."""
        d = {f: getattr(self, f) for f in _TEXT_FIELDS}
        d["extension_info"] = self._extension_info
        return d

    def convert_from_dict(self, json_dict: Optional[Dict[str, Any]]) -> "AddedSubDeviceInfo":
        """Copy the known keys of ``json_dict``; returns ``self``."""
        if not isinstance(json_dict, dict):
            return self
        for f in _TEXT_FIELDS:
            if f in json_dict:
                value = as_text(json_dict[f], None)
                if value is not None:
                    setattr(self, f, value)
        if "extension_info" in json_dict:
            self._extension_info = as_dict(json_dict["extension_info"])
        return self

    @classmethod
    def from_dict(cls, json_dict: Optional[Dict[str, Any]]) -> "AddedSubDeviceInfo":
        return cls().convert_from_dict(json_dict)

    def __repr__(self) -> str:
        return f"AddedSubDeviceInfo(node_id={self._node_id!r}, product_id={self._product_id!r})"
